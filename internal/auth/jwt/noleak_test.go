package jwt

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/mizuchi-uploadr/mizuchi/internal/auth"
	"github.com/mizuchi-uploadr/mizuchi/internal/config"
	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

// TestNoTokenTextInErrorsOrLogs drives bad tokens through an
// Authenticator and a Chain with debug logging and checks that no part of
// any token shows up in an error, a response or a log line.
func TestNoTokenTextInErrorsOrLogs(t *testing.T) {
	k := getKeys(t)
	logs := &logBuffer{}
	// A JWKS endpoint that is down from the start: technical errors too.
	down := newJWKSServer(t)
	down.set(func(s *jwksServer) { s.status = http.StatusBadGateway })

	hs := newAuth(t, config.JWT{Algorithm: "HS256", Secret: testSecret, Issuer: "https://idp", Audience: "mizuchi"}, Options{Logger: logs.logger()})
	rs := newAuth(t, config.JWT{Algorithm: "RS256", JWKSURL: down.url()}, Options{Logger: logs.logger()})

	expired := validClaims()
	expired["exp"] = fixedNow.Add(-time.Hour).Unix()
	wrongIss := validClaims()
	wrongIss["iss"] = "https://evil-issuer-SECRETMARK"
	wrongIss["aud"] = "SECRETMARK-audience"
	enc := base64.RawURLEncoding.EncodeToString
	cases := []struct {
		name  string
		a     *Authenticator
		token string
	}{
		{"expired", hs, sign(t, gojwt.SigningMethodHS256, []byte(testSecret), expired, "SECRETMARK-kid")},
		{"bad signature", hs, sign(t, gojwt.SigningMethodHS256, []byte("wrong-secret-SECRETMARK-0123456789"), validClaims(), "")},
		{"wrong issuer and audience", hs, sign(t, gojwt.SigningMethodHS256, []byte(testSecret), wrongIss, "")},
		{"alg none", hs, enc([]byte(`{"alg":"none","kid":"SECRETMARK"}`)) + "." + enc([]byte(`{"sub":"SECRETMARK-sub"}`)) + "."},
		{"malformed JSON", hs, enc([]byte(`{"alg":"HS256","SECRETMARK`)) + "." + enc([]byte(`SECRETMARK`)) + ".SECRETMARKsig"},
		{"garbage", hs, "SECRETMARK-garbage-token"},
		{"jwks down", rs, sign(t, gojwt.SigningMethodRS256, k.rsa, validClaims(), "SECRETMARK-kid")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			chain := auth.NewChain(auth.ChainOptions{Bucket: "uploads", Methods: []auth.Authenticator{tc.a}, JWT: true, Logger: logs.logger()})
			r := httptest.NewRequest(http.MethodPut, "/uploads/a.txt", nil)
			r.Header.Set("Authorization", "Bearer "+tc.token)
			_, err := chain.Authenticate(context.Background(), r)
			if err == nil {
				t.Fatal("bad token accepted")
			}
			w := httptest.NewRecorder()
			e := s3err.Write(w, r, err, "/uploads/a.txt", "R")
			var out strings.Builder
			out.WriteString(err.Error())
			out.WriteString(w.Body.String())
			for _, v := range w.Header().Values("WWW-Authenticate") {
				out.WriteString(v)
			}
			if e.Err != nil {
				out.WriteString(e.Err.Error())
			}
			checkNoToken(t, "answer", out.String(), tc.token)
		})
	}
	if logs.String() == "" {
		t.Fatal("nothing was logged; the log check would be vacuous")
	}
	for _, tc := range cases {
		checkNoToken(t, "logs", logs.String(), tc.token)
	}
}

func checkNoToken(t *testing.T, where, text, token string) {
	t.Helper()
	if strings.Contains(text, "SECRETMARK") {
		t.Fatalf("%s quote token content: %s", where, text)
	}
	for _, part := range append(strings.Split(token, "."), token) {
		if len(part) >= 8 && strings.Contains(text, part) {
			t.Fatalf("%s contain a token segment %q", where, part)
		}
	}
}

func TestJWKSURLPasswordIsRedacted(t *testing.T) {
	srv := newJWKSServer(t)
	srv.set(func(s *jwksServer) { s.status = http.StatusInternalServerError })
	logs := &logBuffer{}
	u := strings.Replace(srv.url(), "http://", "http://user:hunter2-pw@", 1)
	a := newAuth(t, config.JWT{Algorithm: "RS256", JWKSURL: u}, Options{Logger: logs.logger()})
	_, err := a.Authenticate(context.Background(), bearerRequest(rsaToken(t, getKeys(t).rsa, "k")))
	var ku *KeysUnavailableError
	if !errors.As(err, &ku) {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "hunter2-pw") || strings.Contains(logs.String(), "hunter2-pw") {
		t.Fatalf("password leaked: %v / %s", err, logs.String())
	}
	if srv.hits.Load() == 0 {
		t.Fatal("JWKS never fetched")
	}
}
