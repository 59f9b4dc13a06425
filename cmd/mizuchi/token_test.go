package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mizuchi-uploadr/mizuchi/internal/auth/jwt"
	"github.com/mizuchi-uploadr/mizuchi/internal/config"
)

const tokenTestSecret = "token-test-secret-0123456789abcdef"

func TestTokenCommand(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "ed.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	pubFile := filepath.Join(dir, "ed.pub.pem")
	if err := os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	hs := config.JWT{Algorithm: "HS256", Secret: tokenTestSecret}

	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		wantCode int
		verify   *config.JWT // the printed token must verify with this
		stderr   string      // substring of stderr
	}{
		{name: "secret flag", args: []string{"--sub", "alice", "--secret", tokenTestSecret}, verify: &hs},
		{name: "secret from JWT_SECRET", args: []string{"--sub", "alice"}, env: map[string]string{"JWT_SECRET": tokenTestSecret}, verify: &hs},
		{name: "issuer audience ttl", args: []string{"--sub", "alice", "--iss", "https://idp", "--aud", "mizuchi", "--ttl", "5m"}, env: map[string]string{"JWT_SECRET": tokenTestSecret},
			verify: &config.JWT{Algorithm: "HS256", Secret: tokenTestSecret, Issuer: "https://idp", Audience: "mizuchi"}},
		{name: "HS512", args: []string{"-sub", "alice", "-alg", "HS512", "-secret", tokenTestSecret}, verify: &config.JWT{Algorithm: "HS512", Secret: tokenTestSecret}},
		{name: "Ed25519 key file", args: []string{"--sub", "alice", "--key-file", keyFile}, env: map[string]string{"JWT_SECRET": "ignored"}, verify: &config.JWT{Algorithm: "EdDSA", PublicKeyFile: pubFile}},
		{name: "help", args: []string{"-h"}, wantCode: 0, stderr: "Usage: mizuchi token"},
		{name: "missing sub", args: []string{"--secret", "x"}, wantCode: 2, stderr: "--sub is required"},
		{name: "no key", args: []string{"--sub", "alice"}, wantCode: 2, stderr: "a key is required"},
		{name: "both keys", args: []string{"--sub", "alice", "--secret", "x", "--key-file", keyFile}, wantCode: 2, stderr: "mutually exclusive"},
		{name: "unknown alg", args: []string{"--sub", "alice", "--secret", "x", "--alg", "none"}, wantCode: 2, stderr: "unsupported --alg"},
		{name: "bad ttl", args: []string{"--sub", "alice", "--secret", "x", "--ttl", "-1h"}, wantCode: 2, stderr: "--ttl must be positive"},
		{name: "unknown flag", args: []string{"--sub", "alice", "--nope"}, wantCode: 2, stderr: "nope"},
		{name: "extra argument", args: []string{"--sub", "alice", "--secret", "x", "extra"}, wantCode: 2, stderr: "unexpected argument"},
		{name: "missing key file", args: []string{"--sub", "alice", "--key-file", filepath.Join(dir, "absent.pem")}, wantCode: 1, stderr: "absent.pem"},
		{name: "key does not suit alg", args: []string{"--sub", "alice", "--key-file", keyFile, "--alg", "RS256"}, wantCode: 1, stderr: "cannot sign"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			lookup := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
			code := runToken(tc.args, &stdout, &stderr, lookup)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tc.wantCode, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.stderr) {
				t.Fatalf("stderr %q lacks %q", stderr.String(), tc.stderr)
			}
			if tc.verify == nil {
				if stdout.Len() != 0 {
					t.Fatalf("stdout = %q, want nothing", stdout.String())
				}
				return
			}
			out := stdout.String()
			if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") || strings.Count(out, ".") != 2 {
				t.Fatalf("stdout = %q, want exactly one token and a newline", out)
			}
			a, err := jwt.New(context.Background(), *tc.verify, jwt.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			r := httptest.NewRequest(http.MethodPut, "/uploads/a", nil)
			r.Header.Set("Authorization", "Bearer "+strings.TrimSpace(out))
			p, err := a.Authenticate(context.Background(), r)
			if err != nil {
				t.Fatalf("minted token refused: %v", err)
			}
			if p.Subject != "alice" {
				t.Fatalf("subject %q", p.Subject)
			}
		})
	}
}
