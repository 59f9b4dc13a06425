package jwt

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"slices"
	"testing"
	"time"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
)

// TestEveryConfigAlgorithmWorks walks the one algorithm table of the
// configuration: every algorithm Validate accepts is one New accepts, Mint
// signs and the authenticator verifies, from a PEM public key and from a
// JWKS, so `validate` and `serve` cannot disagree again.
func TestEveryConfigAlgorithmWorks(t *testing.T) {
	k := getKeys(t)
	p521, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	privFor := map[string]crypto.Signer{
		"RS": k.rsa, "PS": k.rsa, "EdDSA": k.ed,
		"P-256": k.p256, "P-384": k.p384, "P-521": p521,
	}
	if got, want := Algorithms(), config.JWTAlgorithmNames(); !slices.Equal(got, want) {
		t.Fatalf("Algorithms() = %v, want the configuration's %v", got, want)
	}
	for _, alg := range config.JWTAlgorithms() {
		t.Run(alg.Name, func(t *testing.T) {
			spec, err := lookupAlg(alg.Name)
			if err != nil {
				t.Fatalf("configuration accepts %s, runtime does not: %v", alg.Name, err)
			}
			if spec.method.Alg() != alg.Name {
				t.Fatalf("%s signs as %s", alg.Name, spec.method.Alg())
			}
			opts := MintOptions{Subject: "carol", Algorithm: alg.Name, TTL: time.Minute, Now: func() time.Time { return fixedNow }}
			cfg := config.JWT{Algorithm: alg.Name}
			var signer crypto.Signer
			if alg.Family == "HS" {
				opts.Secret = []byte(testSecret)
				cfg.Secret = testSecret
			} else {
				key := alg.Curve
				if key == "" {
					key = alg.Family
				}
				signer = privFor[key]
				if signer == nil {
					t.Fatalf("no test key for %s", alg.Name)
				}
				opts.PrivateKeyPEM = pkcs8PEM(t, signer)
				cfg.PublicKeyFile = writeFile(t, pkixPEM(t, signer.Public()))
			}
			tok, err := Mint(opts)
			if err != nil {
				t.Fatalf("Mint: %v", err)
			}
			a := newAuth(t, cfg, Options{})
			if p, err := a.Authenticate(context.Background(), bearerRequest(tok)); err != nil || p.Subject != "carol" {
				t.Fatalf("minted %s token: %+v, %v", alg.Name, p, err)
			}
			if signer == nil {
				return
			}
			srv := newJWKSServer(t, jwkOf(signer.Public(), "k1", alg.Name, "sig"))
			j := newAuth(t, config.JWT{Algorithm: alg.Name, JWKSURL: srv.url()}, Options{})
			if _, err := j.Authenticate(context.Background(), bearerRequest(tok)); err != nil {
				t.Fatalf("%s token against a JWKS: %v", alg.Name, err)
			}
		})
	}
}

// TestMintPicksES512ForP521 checks the natural algorithm of a P-521 key.
func TestMintPicksES512ForP521(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := Mint(MintOptions{Subject: "s", PrivateKeyPEM: pkcs8PEM(t, key)})
	if err != nil {
		t.Fatalf("Mint with a P-521 key: %v", err)
	}
	a := newAuth(t, config.JWT{Algorithm: "ES512", PublicKeyFile: writeFile(t, pkixPEM(t, &key.PublicKey))}, Options{Now: time.Now})
	if _, err := a.Authenticate(context.Background(), bearerRequest(tok)); err != nil {
		t.Fatal(err)
	}
}
