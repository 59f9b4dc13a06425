package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeCA writes a self-signed CA certificate as PEM and returns its path.
func writeCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const fgaToken = "fga-preshared-key-0123456789"

func TestOpenFGAConnection(t *testing.T) {
	ca := writeCA(t)
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "missing.pem")
	grpcAt := func(host string, lines ...string) string {
		return fgab(append([]string{"url: " + host + ":8081", "store_id: s"}, lines...)...)
	}
	httpAt := func(url string, lines ...string) string {
		return fgab(append([]string{"transport: http", "url: " + url, "store_id: s"}, lines...)...)
	}
	token := "api_token: " + fgaToken
	tests := []struct {
		name      string
		yml       string
		wantErrs  []string
		wantWarns []string
	}{
		{name: "grpc over TLS with token and CA", yml: grpcAt("fga.example", "tls: true", "ca_file: "+ca, token)},
		{name: "grpc over TLS with system roots", yml: grpcAt("fga.example", "tls: true", token)},
		{name: "https with token and CA", yml: httpAt("https://fga.example:8080", token, "ca_file: "+ca)},
		{name: "grpc plaintext without token", yml: grpcAt("fga.example")},
		{name: "grpc plaintext token to loopback", yml: grpcAt("127.0.0.1", token)},
		{name: "http token to localhost", yml: httpAt("http://localhost:8080", token)},
		{name: "grpc plaintext token to a remote host", yml: grpcAt("fga.example", token),
			wantWarns: []string{"t.yaml:10: buckets[0].authz.openfga.api_token: sent in plaintext to fga.example: use tls: true"}},
		{name: "http token to a remote host", yml: httpAt("http://10.1.2.3:8080", token),
			wantWarns: []string{"t.yaml:11: buckets[0].authz.openfga.api_token: sent in plaintext to 10.1.2.3"}},
		{name: "tls with http transport", yml: httpAt("https://fga.example:8080", "tls: true"),
			wantErrs: []string{"t.yaml:11: buckets[0].authz.openfga.tls: only for the grpc transport; over http the url decides: use an https:// url"}},
		{name: "ca_file unreadable", yml: grpcAt("fga.example", "tls: true", "ca_file: "+missing),
			wantErrs: []string{"t.yaml:11: buckets[0].authz.openfga.ca_file: cannot be read: open " + missing + ": no such file or directory"}},
		{name: "ca_file without certificate", yml: grpcAt("fga.example", "tls: true", "ca_file: "+notPEM),
			wantErrs: []string{"t.yaml:11: buckets[0].authz.openfga.ca_file: " + notPEM + " holds no PEM certificate"}},
		{name: "ca_file without tls", yml: grpcAt("fga.example", "ca_file: "+ca),
			wantErrs: []string{"t.yaml:10: buckets[0].authz.openfga.ca_file: only with tls: true"}},
		{name: "ca_file with http url", yml: httpAt("http://fga.example", "ca_file: "+ca),
			wantErrs: []string{"t.yaml:11: buckets[0].authz.openfga.ca_file: only for an https:// url"}},
		{name: "token with a newline", yml: grpcAt("fga.example", "tls: true", `api_token: "abc\ndef"`),
			wantErrs: []string{"t.yaml:11: buckets[0].authz.openfga.api_token: must not contain spaces or control characters"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.yml), "t.yaml", env(nil))
			var errs, warns []string
			if err != nil {
				errs = strings.Split(err.Error(), "\n")
			} else {
				for _, w := range c.Warnings() {
					if strings.Contains(w.Path, "openfga") {
						warns = append(warns, w.String())
					}
				}
			}
			check := func(kind string, got, want []string) {
				t.Helper()
				all := strings.Join(got, "\n")
				for _, w := range want {
					if !strings.Contains(all, w) {
						t.Errorf("%s lack %q:\n%s", kind, w, all)
					}
				}
				if len(got) != len(want) {
					t.Errorf("got %d %s, want %d:\n%s", len(got), kind, len(want), all)
				}
				if strings.Contains(all, fgaToken) {
					t.Errorf("%s quote the token:\n%s", kind, all)
				}
			}
			check("errors", errs, tt.wantErrs)
			check("warnings", warns, tt.wantWarns)
		})
	}
}

func TestOpenFGATokenNotInSummary(t *testing.T) {
	c := mustParse(t, fgab("url: fga.example:8081", "store_id: s", "tls: true", "api_token: "+fgaToken), nil)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if s := c.Summary(); strings.Contains(s, fgaToken) {
		t.Fatalf("summary shows the token:\n%s", s)
	}
}
