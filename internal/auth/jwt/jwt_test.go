package jwt

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/mizuchi-uploadr/mizuchi/internal/auth"
	"github.com/mizuchi-uploadr/mizuchi/internal/config"
	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

const testSecret = "0123456789abcdef0123456789abcdef-secret"

func TestEachAlgorithmVerifiesWithItsStaticKey(t *testing.T) {
	k := getKeys(t)
	pkcs1 := pemBlock("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey))
	tests := []struct {
		name     string
		alg      string
		secret   string
		pubPEM   []byte
		signKey  any
		wrongKey any
	}{
		{name: "HS256", alg: "HS256", secret: testSecret, signKey: []byte(testSecret), wrongKey: []byte(testSecret + "x")},
		{name: "HS384", alg: "HS384", secret: testSecret, signKey: []byte(testSecret), wrongKey: []byte("other-secret-other-secret-other-secret")},
		{name: "HS512", alg: "HS512", secret: testSecret, signKey: []byte(testSecret), wrongKey: []byte("other-secret-other-secret-other-secret")},
		{name: "RS256 PKIX", alg: "RS256", pubPEM: pkixPEM(t, &k.rsa.PublicKey), signKey: k.rsa, wrongKey: k.rsa2},
		{name: "RS384 PKCS1", alg: "RS384", pubPEM: pkcs1, signKey: k.rsa, wrongKey: k.rsa2},
		{name: "RS512 certificate", alg: "RS512", pubPEM: certPEM(t, k.rsa), signKey: k.rsa, wrongKey: k.rsa2},
		{name: "PS256", alg: "PS256", pubPEM: pkixPEM(t, &k.rsa.PublicKey), signKey: k.rsa, wrongKey: k.rsa2},
		{name: "ES256", alg: "ES256", pubPEM: pkixPEM(t, &k.p256.PublicKey), signKey: k.p256, wrongKey: mustP256(t)},
		{name: "ES384 certificate", alg: "ES384", pubPEM: certPEM(t, k.p384), signKey: k.p384, wrongKey: mustP384(t)},
		{name: "EdDSA", alg: "EdDSA", pubPEM: pkixPEM(t, k.ed.Public()), signKey: k.ed, wrongKey: mustEd(t)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.JWT{Algorithm: tc.alg, Secret: tc.secret}
			if tc.pubPEM != nil {
				cfg.PublicKeyFile = writeFile(t, tc.pubPEM)
			}
			a := newAuth(t, cfg, Options{})
			method := algorithms[tc.alg].method

			p, err := a.Authenticate(context.Background(), bearerRequest(sign(t, method, tc.signKey, validClaims(), "")))
			if err != nil {
				t.Fatalf("valid token refused: %v", err)
			}
			if p.Subject != "alice" || p.Method != auth.MethodJWT || p.Claims["sub"] != "alice" {
				t.Fatalf("principal = %+v", p)
			}

			_, err = a.Authenticate(context.Background(), bearerRequest(sign(t, method, tc.wrongKey, validClaims(), "")))
			wantInvalid(t, err, reasonSignature)
		})
	}
}

func mustP256(t testing.TB) any {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustP384(t testing.TB) any {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustEd(t testing.TB) any {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// wantInvalid asserts a 401 InvalidToken with the Bearer challenge.
func wantInvalid(t testing.TB, err error, reason string) {
	t.Helper()
	var e *s3err.Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v, want *s3err.Error", err)
	}
	if e.Status != http.StatusUnauthorized || e.Code != "InvalidToken" {
		t.Fatalf("error = %d %s, want 401 InvalidToken", e.Status, e.Code)
	}
	want := `Bearer realm="mizuchi", error="invalid_token", error_description="` + reason + `"`
	if got := e.Header.Get("WWW-Authenticate"); got != want {
		t.Fatalf("WWW-Authenticate = %q, want %q", got, want)
	}
	if !strings.HasSuffix(e.Message, reason) {
		t.Fatalf("message = %q, want reason %q", e.Message, reason)
	}
}

func TestClaimRules(t *testing.T) {
	at := func(d time.Duration) int64 { return fixedNow.Add(d).Unix() }
	tests := []struct {
		name     string
		issuer   string
		audience string
		leeway   int
		edit     func(gojwt.MapClaims)
		reason   string // "" means accepted
	}{
		{name: "valid", edit: func(gojwt.MapClaims) {}},
		{name: "expired", edit: func(c gojwt.MapClaims) { c["exp"] = at(-time.Minute) }, reason: reasonExpired},
		{name: "expired within leeway", leeway: 120, edit: func(c gojwt.MapClaims) { c["exp"] = at(-time.Minute) }},
		{name: "expired beyond leeway", leeway: 30, edit: func(c gojwt.MapClaims) { c["exp"] = at(-time.Minute) }, reason: reasonExpired},
		{name: "exp missing", edit: func(c gojwt.MapClaims) { delete(c, "exp") }, reason: reasonMissingExp},
		{name: "exp not a number", edit: func(c gojwt.MapClaims) { c["exp"] = "tomorrow" }, reason: reasonClaimType},
		{name: "not yet valid", edit: func(c gojwt.MapClaims) { c["nbf"] = at(time.Minute) }, reason: reasonNotYetValid},
		{name: "not yet valid within leeway", leeway: 120, edit: func(c gojwt.MapClaims) { c["nbf"] = at(time.Minute) }},
		{name: "not yet valid beyond leeway", leeway: 30, edit: func(c gojwt.MapClaims) { c["nbf"] = at(time.Minute) }, reason: reasonNotYetValid},
		{name: "issued in the future", edit: func(c gojwt.MapClaims) { c["iat"] = at(time.Minute) }, reason: reasonIssuedFuture},
		{name: "issued in the future within leeway", leeway: 120, edit: func(c gojwt.MapClaims) { c["iat"] = at(time.Minute) }},
		{name: "sub missing", edit: func(c gojwt.MapClaims) { delete(c, "sub") }, reason: reasonNoSubject},
		{name: "sub empty", edit: func(c gojwt.MapClaims) { c["sub"] = "" }, reason: reasonNoSubject},
		{name: "sub not a string", edit: func(c gojwt.MapClaims) { c["sub"] = 42 }, reason: reasonNoSubject},
		{name: "issuer matches", issuer: "https://idp", edit: func(c gojwt.MapClaims) { c["iss"] = "https://idp" }},
		{name: "issuer wrong", issuer: "https://idp", edit: func(c gojwt.MapClaims) { c["iss"] = "https://evil" }, reason: reasonIssuer},
		{name: "issuer missing", issuer: "https://idp", edit: func(gojwt.MapClaims) {}, reason: reasonMissingIss},
		{name: "issuer not configured", edit: func(c gojwt.MapClaims) { c["iss"] = "anyone" }},
		{name: "audience string", audience: "mizuchi", edit: func(c gojwt.MapClaims) { c["aud"] = "mizuchi" }},
		{name: "audience array", audience: "mizuchi", edit: func(c gojwt.MapClaims) { c["aud"] = []string{"other", "mizuchi"} }},
		{name: "audience string wrong", audience: "mizuchi", edit: func(c gojwt.MapClaims) { c["aud"] = "other" }, reason: reasonAudience},
		{name: "audience array wrong", audience: "mizuchi", edit: func(c gojwt.MapClaims) { c["aud"] = []string{"a", "b"} }, reason: reasonAudience},
		{name: "audience missing", audience: "mizuchi", edit: func(gojwt.MapClaims) {}, reason: reasonMissingAud},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newAuth(t, config.JWT{Algorithm: "HS256", Secret: testSecret, Issuer: tc.issuer, Audience: tc.audience, LeewaySeconds: tc.leeway}, Options{})
			c := validClaims()
			tc.edit(c)
			_, err := a.Authenticate(context.Background(), bearerRequest(sign(t, gojwt.SigningMethodHS256, []byte(testSecret), c, "")))
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			wantInvalid(t, err, tc.reason)
		})
	}
}

func TestAlgNoneIsAlwaysRefused(t *testing.T) {
	enc := base64.RawURLEncoding.EncodeToString
	payload := enc([]byte(`{"sub":"alice","exp":` + strconv.FormatInt(fixedNow.Add(time.Hour).Unix(), 10) + `}`))
	for _, alg := range []string{"none", "None", "NONE"} {
		for _, cfgAlg := range []string{"HS256", "EdDSA"} {
			t.Run(alg+" on "+cfgAlg, func(t *testing.T) {
				cfg := config.JWT{Algorithm: cfgAlg, Secret: testSecret}
				if cfgAlg == "EdDSA" {
					cfg = config.JWT{Algorithm: cfgAlg, PublicKeyFile: writeFile(t, pkixPEM(t, getKeys(t).ed.Public()))}
				}
				a := newAuth(t, cfg, Options{})
				token := enc([]byte(`{"alg":"`+alg+`","typ":"JWT"}`)) + "." + payload + "."
				_, err := a.Authenticate(context.Background(), bearerRequest(token))
				wantInvalid(t, err, reasonAlgorithm)
			})
		}
	}
}

func TestAlgorithmIsPinnedByConfig(t *testing.T) {
	k := getKeys(t)
	pubPEM := pkixPEM(t, &k.rsa.PublicKey)
	a := newAuth(t, config.JWT{Algorithm: "RS256", PublicKeyFile: writeFile(t, pubPEM)}, Options{})
	tests := []struct {
		name  string
		token string
	}{
		// The classic confusion attack: the public key PEM used as an HMAC secret.
		{name: "HS256 signed with the RSA public key PEM", token: sign(t, gojwt.SigningMethodHS256, pubPEM, validClaims(), "")},
		{name: "RS384 with the right key", token: sign(t, gojwt.SigningMethodRS384, k.rsa, validClaims(), "")},
		{name: "PS256 with the right key", token: sign(t, gojwt.SigningMethodPS256, k.rsa, validClaims(), "")},
		{name: "ES256", token: sign(t, gojwt.SigningMethodES256, k.p256, validClaims(), "")},
		{name: "unknown alg", token: base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"XX999"}`)) + ".e30.c2ln"},
		{name: "alg missing", token: base64.RawURLEncoding.EncodeToString([]byte(`{"typ":"JWT"}`)) + ".e30.c2ln"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := a.Authenticate(context.Background(), bearerRequest(tc.token))
			wantInvalid(t, err, reasonAlgorithm)
		})
	}
	if _, err := a.Authenticate(context.Background(), bearerRequest(sign(t, gojwt.SigningMethodRS256, k.rsa, validClaims(), ""))); err != nil {
		t.Fatalf("RS256 refused: %v", err)
	}
}

func TestMalformedTokens(t *testing.T) {
	a := newAuth(t, config.JWT{Algorithm: "HS256", Secret: testSecret}, Options{})
	good := sign(t, gojwt.SigningMethodHS256, []byte(testSecret), validClaims(), "")
	parts := strings.Split(good, ".")
	tests := []struct {
		name   string
		token  string
		reason string
	}{
		{name: "garbage", token: "not-a-token", reason: reasonMalformed},
		{name: "two segments", token: parts[0] + "." + parts[1], reason: reasonMalformed},
		{name: "bad base64 payload", token: parts[0] + ".!!!." + parts[2], reason: reasonMalformed},
		{name: "payload not JSON", token: parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte("[1,")) + "." + parts[2], reason: reasonMalformed},
		{name: "tampered payload", token: parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"root","exp":9999999999}`)) + "." + parts[2], reason: reasonSignature},
		{name: "oversized", token: strings.Repeat("a", maxTokenBytes+1), reason: reasonMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := a.Authenticate(context.Background(), bearerRequest(tc.token))
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			wantInvalid(t, err, tc.reason)
		})
	}
}

func TestErrorIsWrittenAsS3XMLWithBearerChallenge(t *testing.T) {
	a := newAuth(t, config.JWT{Algorithm: "HS256", Secret: testSecret}, Options{})
	c := validClaims()
	c["exp"] = fixedNow.Add(-time.Hour).Unix()
	r := bearerRequest(sign(t, gojwt.SigningMethodHS256, []byte(testSecret), c, ""))
	_, err := a.Authenticate(context.Background(), r)
	w := httptest.NewRecorder()
	s3err.Write(w, r, err, "/uploads/a.txt", "REQ1")
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("status = %d", w.Code)
	}
	if got := w.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, `Bearer realm="mizuchi", error="invalid_token"`) {
		t.Fatalf("WWW-Authenticate = %q", got)
	}
	body := w.Body.String()
	for _, want := range []string{"<Code>InvalidToken</Code>", "token expired", "<RequestId>REQ1</RequestId>"} {
		if !strings.Contains(body, want) {
			t.Fatalf("body %q lacks %q", body, want)
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	k := getKeys(t)
	rsaFile := writeFile(t, pkixPEM(t, &k.rsa.PublicKey))
	tests := []struct {
		name string
		cfg  config.JWT
	}{
		{name: "unknown algorithm", cfg: config.JWT{Algorithm: "HS1", Secret: testSecret}},
		{name: "none algorithm", cfg: config.JWT{Algorithm: "none", Secret: testSecret}},
		{name: "HS without secret", cfg: config.JWT{Algorithm: "HS256"}},
		{name: "RS without key", cfg: config.JWT{Algorithm: "RS256"}},
		{name: "RS with secret only", cfg: config.JWT{Algorithm: "RS256", Secret: testSecret}},
		{name: "HS with public key", cfg: config.JWT{Algorithm: "HS256", PublicKeyFile: rsaFile}},
		{name: "ES256 with RSA key", cfg: config.JWT{Algorithm: "ES256", PublicKeyFile: rsaFile}},
		{name: "ES384 with P-256 key", cfg: config.JWT{Algorithm: "ES384", PublicKeyFile: writeFile(t, pkixPEM(t, &k.p256.PublicKey))}},
		{name: "private key file", cfg: config.JWT{Algorithm: "EdDSA", PublicKeyFile: writeFile(t, pkcs8PEM(t, k.ed))}},
		{name: "missing key file", cfg: config.JWT{Algorithm: "RS256", PublicKeyFile: "/nonexistent/key.pem"}},
		{name: "not PEM", cfg: config.JWT{Algorithm: "RS256", PublicKeyFile: writeFile(t, []byte("hello"))}},
		{name: "two key sources", cfg: config.JWT{Algorithm: "RS256", PublicKeyFile: rsaFile, JWKSURL: "http://127.0.0.1:1/jwks"}},
		{name: "bad JWKS URL", cfg: config.JWT{Algorithm: "RS256", JWKSURL: "/relative"}},
		{name: "unknown token source", cfg: config.JWT{Algorithm: "HS256", Secret: testSecret, TokenSources: []config.TokenSource{{Type: "form"}}}},
		{name: "query source without name", cfg: config.JWT{Algorithm: "HS256", Secret: testSecret, TokenSources: []config.TokenSource{{Type: "query"}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := New(context.Background(), tc.cfg, Options{})
			if err == nil {
				a.Close()
				t.Fatal("New accepted the config")
			}
		})
	}
}

func TestShortRSAKeyIsRefused(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(context.Background(), config.JWT{Algorithm: "RS256", PublicKeyFile: writeFile(t, pkixPEM(t, &small.PublicKey))}, Options{})
	if err == nil || !strings.Contains(err.Error(), "shorter") {
		t.Fatalf("err = %v", err)
	}
}
