package config

import (
	"crypto/x509"
	"os"
)

// Values of server.tls.client_auth.
const (
	ClientAuthRequire       = "require"
	ClientAuthVerifyIfGiven = "verify_if_given"
)

// Values of buckets[].auth.tls_client.subject_from.
const (
	SubjectFromCN     = "cn"
	SubjectFromDNSSAN = "dns_san"
	SubjectFromURISAN = "uri_san"
)

// clientCertificates checks server.tls.client_ca and client_auth.
func (k *checker) clientCertificates() {
	t := k.c.Server.TLS
	if t.ClientCA == "" {
		if t.ClientAuth != "" {
			k.errf("server.tls.client_auth", "only with server.tls.client_ca")
		}
		return
	}
	if t.CertFile == "" || t.KeyFile == "" {
		k.errf("server.tls.client_ca", "client certificates need HTTPS: set server.tls.cert_file and key_file")
	}
	if pem, err := os.ReadFile(t.ClientCA); err != nil {
		k.errf("server.tls.client_ca", "cannot be read: %v", err)
	} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
		k.errf("server.tls.client_ca", "%s holds no PEM certificate", t.ClientCA)
	}
	switch t.ClientAuth {
	case ClientAuthRequire, ClientAuthVerifyIfGiven:
	default:
		k.errf("server.tls.client_auth", "unknown value %q (want %s or %s)", t.ClientAuth, ClientAuthRequire, ClientAuthVerifyIfGiven)
	}
}

// tlsClient checks a bucket's tls_client method.
func (k *checker) tlsClient(t *TLSClient, p string) {
	if k.c.Server.TLS.ClientCA == "" {
		k.errf(p, "needs server.tls.client_ca: client certificates are verified during the TLS handshake")
	}
	switch t.SubjectFrom {
	case SubjectFromCN, SubjectFromDNSSAN, SubjectFromURISAN:
	default:
		k.errf(p+".subject_from", "unknown value %q (want %s, %s or %s)", t.SubjectFrom, SubjectFromCN, SubjectFromDNSSAN, SubjectFromURISAN)
	}
}
