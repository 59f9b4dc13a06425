package jwt

import (
	"context"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
)

func TestMintedTokensVerify(t *testing.T) {
	k := getKeys(t)
	sec1, err := x509.MarshalECPrivateKey(k.p256)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		opts    MintOptions
		cfg     config.JWT
		wantAlg string
	}{
		{name: "HS256 default", opts: MintOptions{Secret: []byte(testSecret)}, cfg: config.JWT{Algorithm: "HS256", Secret: testSecret}, wantAlg: "HS256"},
		{name: "HS512", opts: MintOptions{Secret: []byte(testSecret), Algorithm: "HS512"}, cfg: config.JWT{Algorithm: "HS512", Secret: testSecret}, wantAlg: "HS512"},
		{name: "RSA PKCS1 defaults to RS256", opts: MintOptions{PrivateKeyPEM: pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(k.rsa))}, cfg: config.JWT{Algorithm: "RS256", PublicKeyFile: writeFile(t, pkixPEM(t, &k.rsa.PublicKey))}, wantAlg: "RS256"},
		{name: "RSA PKCS8 PS256", opts: MintOptions{Algorithm: "PS256", PrivateKeyPEM: pkcs8PEM(t, k.rsa)}, cfg: config.JWT{Algorithm: "PS256", PublicKeyFile: writeFile(t, pkixPEM(t, &k.rsa.PublicKey))}, wantAlg: "PS256"},
		{name: "EC SEC1 defaults to ES256", opts: MintOptions{PrivateKeyPEM: pemBlock("EC PRIVATE KEY", sec1)}, cfg: config.JWT{Algorithm: "ES256", PublicKeyFile: writeFile(t, pkixPEM(t, &k.p256.PublicKey))}, wantAlg: "ES256"},
		{name: "EC P-384 PKCS8 defaults to ES384", opts: MintOptions{PrivateKeyPEM: pkcs8PEM(t, k.p384)}, cfg: config.JWT{Algorithm: "ES384", PublicKeyFile: writeFile(t, pkixPEM(t, &k.p384.PublicKey))}, wantAlg: "ES384"},
		{name: "Ed25519 PKCS8 defaults to EdDSA", opts: MintOptions{PrivateKeyPEM: pkcs8PEM(t, k.ed)}, cfg: config.JWT{Algorithm: "EdDSA", PublicKeyFile: writeFile(t, pkixPEM(t, k.ed.Public()))}, wantAlg: "EdDSA"},
		{name: "issuer and audience", opts: MintOptions{Secret: []byte(testSecret), Issuer: "https://idp", Audience: "mizuchi", KeyID: "k1"}, cfg: config.JWT{Algorithm: "HS256", Secret: testSecret, Issuer: "https://idp", Audience: "mizuchi"}, wantAlg: "HS256"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.opts
			o.Subject = "carol"
			o.Now = func() time.Time { return fixedNow }
			o.TTL = time.Minute
			tok, err := Mint(o)
			if err != nil {
				t.Fatalf("Mint: %v", err)
			}
			a := newAuth(t, tc.cfg, Options{})
			p, err := a.Authenticate(context.Background(), bearerRequest(tok))
			if err != nil {
				t.Fatalf("minted token refused: %v", err)
			}
			if p.Subject != "carol" {
				t.Fatalf("subject %q", p.Subject)
			}
			if exp := p.Claims["exp"].(float64); int64(exp) != fixedNow.Add(time.Minute).Unix() {
				t.Fatalf("exp = %v", exp)
			}
			// After its lifetime the token is refused.
			late := newAuth(t, tc.cfg, Options{Now: func() time.Time { return fixedNow.Add(2 * time.Minute) }})
			_, err = late.Authenticate(context.Background(), bearerRequest(tok))
			wantInvalid(t, err, reasonExpired)
		})
	}
}

func TestMintRefusesBadOptions(t *testing.T) {
	k := getKeys(t)
	tests := []struct {
		name string
		opts MintOptions
		want string
	}{
		{name: "no subject", opts: MintOptions{Secret: []byte(testSecret)}, want: "subject"},
		{name: "no key", opts: MintOptions{Subject: "s"}, want: "exactly one"},
		{name: "both keys", opts: MintOptions{Subject: "s", Secret: []byte("x"), PrivateKeyPEM: pkcs8PEM(t, k.ed)}, want: "exactly one"},
		{name: "secret with RS256", opts: MintOptions{Subject: "s", Secret: []byte("x"), Algorithm: "RS256"}, want: "private key"},
		{name: "RSA key with ES256", opts: MintOptions{Subject: "s", PrivateKeyPEM: pkcs8PEM(t, k.rsa), Algorithm: "ES256"}, want: "cannot sign"},
		{name: "P-256 key with ES384", opts: MintOptions{Subject: "s", PrivateKeyPEM: pkcs8PEM(t, k.p256), Algorithm: "ES384"}, want: "cannot sign"},
		{name: "alg none", opts: MintOptions{Subject: "s", Secret: []byte("x"), Algorithm: "none"}, want: "unsupported algorithm"},
		{name: "public key instead of private", opts: MintOptions{Subject: "s", PrivateKeyPEM: pkixPEM(t, k.ed.Public())}, want: "no PEM private key"},
		{name: "negative ttl", opts: MintOptions{Subject: "s", Secret: []byte("x"), TTL: -time.Second}, want: "positive"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Mint(tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}
