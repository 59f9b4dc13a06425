package jwt

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
)

// benchVerify measures Authenticate on one request carrying a valid token
// (token extraction, signature, claims).
func benchVerify(b *testing.B, cfg config.JWT, method gojwt.SigningMethod, key any) {
	b.Helper()
	a := newAuth(b, cfg, Options{})
	r := httptest.NewRequest(http.MethodPut, "/uploads/a.txt", nil)
	r.Header.Set("Authorization", "Bearer "+sign(b, method, key, validClaims(), ""))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Authenticate(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyHS256(b *testing.B) {
	benchVerify(b, config.JWT{Algorithm: "HS256", Secret: testSecret}, gojwt.SigningMethodHS256, []byte(testSecret))
}

func BenchmarkVerifyRS256(b *testing.B) {
	k := getKeys(b)
	benchVerify(b, config.JWT{Algorithm: "RS256", PublicKeyFile: writeFile(b, pkixPEM(b, &k.rsa.PublicKey))}, gojwt.SigningMethodRS256, k.rsa)
}

func BenchmarkVerifyES256(b *testing.B) {
	k := getKeys(b)
	benchVerify(b, config.JWT{Algorithm: "ES256", PublicKeyFile: writeFile(b, pkixPEM(b, &k.p256.PublicKey))}, gojwt.SigningMethodES256, k.p256)
}

func BenchmarkVerifyRS256JWKS(b *testing.B) {
	k := getKeys(b)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"keys":[` + mustJSON(jwkOf(&k.rsa.PublicKey, "k1", "RS256", "sig")) + `]}`))
	}))
	b.Cleanup(srv.Close)
	a := newAuth(b, config.JWT{Algorithm: "RS256", JWKSURL: srv.URL}, Options{})
	r := httptest.NewRequest(http.MethodPut, "/uploads/a.txt", nil)
	r.Header.Set("Authorization", "Bearer "+sign(b, gojwt.SigningMethodRS256, k.rsa, validClaims(), "k1"))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Authenticate(context.Background(), r); err != nil {
			b.Fatal(err)
		}
	}
}
