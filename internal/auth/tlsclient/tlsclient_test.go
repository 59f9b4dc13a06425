package tlsclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/mizuchi-uploadr/mizuchi/internal/auth"
	"github.com/mizuchi-uploadr/mizuchi/internal/config"
	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

func cert() *x509.Certificate {
	u, _ := url.Parse("spiffe://example.org/ns/prod/sa/uploader")
	return &x509.Certificate{
		Subject:  pkix.Name{CommonName: "alice", Organization: []string{"Example"}},
		DNSNames: []string{"uploader.example.org", "other.example.org"},
		URIs:     []*url.URL{u},
	}
}

func TestSubjectFromVerifiedCertificate(t *testing.T) {
	for _, tt := range []struct{ from, want string }{
		{config.SubjectFromCN, "alice"},
		{config.SubjectFromDNSSAN, "uploader.example.org"},
		{config.SubjectFromURISAN, "spiffe://example.org/ns/prod/sa/uploader"},
	} {
		t.Run(tt.from, func(t *testing.T) {
			a, err := New(config.TLSClient{SubjectFrom: tt.from})
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest("PUT", "/b/k", nil)
			r.TLS = &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{cert()}}}
			p, err := a.Authenticate(context.Background(), r)
			if err != nil {
				t.Fatal(err)
			}
			if p.Subject != tt.want || p.Method != Method {
				t.Fatalf("principal %+v, want subject %q by %s", p, tt.want, Method)
			}
		})
	}
}

func TestNoVerifiedCertificateIsNoCredentials(t *testing.T) {
	a, _ := New(config.TLSClient{SubjectFrom: config.SubjectFromCN})
	for name, state := range map[string]*tls.ConnectionState{
		"plain HTTP":                       nil,
		"TLS without a client certificate": {},
		// A certificate the handshake did not verify (no client_ca) is
		// never an identity.
		"presented but not verified": {PeerCertificates: []*x509.Certificate{cert()}},
	} {
		t.Run(name, func(t *testing.T) {
			r := httptest.NewRequest("PUT", "/b/k", nil)
			r.TLS = state
			if _, err := a.Authenticate(context.Background(), r); !errors.Is(err, auth.ErrNoCredentials) {
				t.Fatalf("got %v, want ErrNoCredentials", err)
			}
		})
	}
}

func TestCertificateWithoutTheNameIsRefused(t *testing.T) {
	a, _ := New(config.TLSClient{SubjectFrom: config.SubjectFromURISAN})
	c := cert()
	c.URIs = nil
	r := httptest.NewRequest("PUT", "/b/k", nil)
	r.TLS = &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{c}}}
	_, err := a.Authenticate(context.Background(), r)
	if e := s3err.As(err); e.Code != "AccessDenied" || e.Status != 403 {
		t.Fatalf("got %v, want 403 AccessDenied", err)
	}
}

func TestUnknownSubjectSource(t *testing.T) {
	if _, err := New(config.TLSClient{SubjectFrom: "email"}); err == nil {
		t.Fatal("subject_from email accepted")
	}
}
