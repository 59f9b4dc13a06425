// Package tlsclient authenticates a request by the client certificate its
// connection presented, verified during the TLS handshake against
// server.tls.client_ca. It maps the certificate to a subject (the subject
// common name, the first DNS SAN or the first URI SAN) for authorization
// and limits.
//
// The handshake already proved that the client holds the key of a
// certificate chaining to the configured CA; this package only reads the
// verified chain. A request whose connection carries no verified
// certificate has no credentials of this kind (auth.ErrNoCredentials), so
// a chain tries tls_client after the methods that look at the request
// itself (sigv4, jwt): a signed request or a bearer token on an mTLS
// connection is identified by its signature or token.
package tlsclient

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/http"

	"github.com/mizuchi-uploadr/mizuchi/internal/auth"
	"github.com/mizuchi-uploadr/mizuchi/internal/config"
	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

// Method is the name of this method in metrics, spans and policy input.
const Method auth.Method = "tls_client"

// maxSubject bounds a subject taken from a certificate.
const maxSubject = 1024

// Authenticator maps verified client certificates to subjects.
type Authenticator struct {
	from string
}

// New builds an Authenticator from a bucket's tls_client section.
func New(c config.TLSClient) (*Authenticator, error) {
	switch c.SubjectFrom {
	case config.SubjectFromCN, config.SubjectFromDNSSAN, config.SubjectFromURISAN:
		return &Authenticator{from: c.SubjectFrom}, nil
	}
	return nil, fmt.Errorf("tls_client: unknown subject_from %q", c.SubjectFrom)
}

// Method names the method for the chain.
func (a *Authenticator) Method() auth.Method { return Method }

// errNoSubject refuses a valid certificate that does not carry the
// configured name.
var errNoSubject = s3err.ErrAccessDenied.WithMessage("The client certificate carries no name to identify the caller by.")

// Authenticate returns the subject of the connection's verified client
// certificate, or auth.ErrNoCredentials when there is none.
func (a *Authenticator) Authenticate(_ context.Context, r *http.Request) (*auth.Principal, error) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return nil, auth.ErrNoCredentials
	}
	subject := Subject(r.TLS.VerifiedChains[0][0], a.from)
	if subject == "" || len(subject) > maxSubject {
		return nil, errNoSubject
	}
	return &auth.Principal{Subject: subject, Method: Method}, nil
}

// Subject is the name of cert that subject_from selects, or "" when the
// certificate has none.
func Subject(cert *x509.Certificate, from string) string {
	switch from {
	case config.SubjectFromCN:
		return cert.Subject.CommonName
	case config.SubjectFromDNSSAN:
		if len(cert.DNSNames) > 0 {
			return cert.DNSNames[0]
		}
	case config.SubjectFromURISAN:
		if len(cert.URIs) > 0 {
			return cert.URIs[0].String()
		}
	}
	return ""
}

var (
	_ auth.Authenticator = (*Authenticator)(nil)
	_ auth.Namer         = (*Authenticator)(nil)
)
