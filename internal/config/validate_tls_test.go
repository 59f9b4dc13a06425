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

// caFile writes a self-signed CA certificate in PEM.
func caFile(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestClientCertificateValidation(t *testing.T) {
	ca := caFile(t)
	notPEM := filepath.Join(t.TempDir(), "x.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tlsServer := func(extra string) string {
		return "server:\n  tls:\n    cert_file: /c.pem\n    key_file: /k.pem\n" + extra
	}
	tlsBucket := func(auth string) string {
		return minimal + "    auth:\n      enabled: true\n" + auth
	}
	tests := []struct {
		name string
		yml  string
		want []string
	}{
		{"client ca and require", tlsServer("    client_ca: "+ca+"\n    client_auth: require\n") + minimal, nil},
		{"client ca, verify_if_given", tlsServer("    client_ca: "+ca+"\n    client_auth: verify_if_given\n") + minimal, nil},
		{"unknown client_auth", tlsServer("    client_ca: "+ca+"\n    client_auth: optional\n") + minimal,
			[]string{`server.tls.client_auth: unknown value "optional" (want require or verify_if_given)`}},
		{"client_auth without ca", tlsServer("    client_auth: require\n") + minimal,
			[]string{"server.tls.client_auth: only with server.tls.client_ca"}},
		{"client ca without https", "server:\n  tls:\n    client_ca: " + ca + "\n" + minimal,
			[]string{"server.tls.client_ca: client certificates need HTTPS"}},
		{"client ca missing", tlsServer("    client_ca: /nonexistent/ca.pem\n") + minimal,
			[]string{"server.tls.client_ca: cannot be read"}},
		{"client ca not PEM", tlsServer("    client_ca: "+notPEM+"\n") + minimal,
			[]string{"server.tls.client_ca: " + notPEM + " holds no PEM certificate"}},
		{"tls_client alone is a method", tlsServer("    client_ca: "+ca+"\n") + tlsBucket("      tls_client: { subject_from: uri_san }\n"), nil},
		{"tls_client without client ca", tlsBucket("      tls_client: { subject_from: cn }\n"),
			[]string{"buckets[0].auth.tls_client: needs server.tls.client_ca"}},
		{"tls_client unknown source", tlsServer("    client_ca: "+ca+"\n") + tlsBucket("      tls_client: { subject_from: email }\n"),
			[]string{`buckets[0].auth.tls_client.subject_from: unknown value "email"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yml), "t.yaml", env(nil))
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error:\n%v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestClientCertificateDefaults(t *testing.T) {
	ca := caFile(t)
	c, err := Parse([]byte("server:\n  tls: { cert_file: /c.pem, key_file: /k.pem, client_ca: "+ca+" }\n"+
		minimal+"    auth:\n      enabled: true\n      tls_client: {}\n"), "t.yaml", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Server.TLS.ClientAuth; got != ClientAuthRequire {
		t.Errorf("client_auth default %q, want require", got)
	}
	if got := c.Buckets[0].Auth.TLSClient.SubjectFrom; got != SubjectFromCN {
		t.Errorf("subject_from default %q, want cn", got)
	}
}

func TestSummaryShowsClientCertificates(t *testing.T) {
	ca := caFile(t)
	c, err := Parse([]byte("server:\n  tls: { cert_file: /c.pem, key_file: /k.pem, client_ca: "+ca+", client_auth: verify_if_given }\n"+
		minimal+"    auth:\n      enabled: true\n      tls_client: { subject_from: dns_san }\n"), "t.yaml", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	s := c.Summary()
	for _, want := range []string{"client certificates: verify_if_given, signed by " + ca, "auth: tls_client, subject from dns_san"} {
		if !strings.Contains(s, want) {
			t.Errorf("summary does not show %q:\n%s", want, s)
		}
	}
}
