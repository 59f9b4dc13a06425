package app

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
)

// loadServerTLS reads the certificate, key and client CAs of server.tls
// into the TLS configuration of a generation. They are read again by
// every reload; connections already established keep the configuration
// of their handshake.
func loadServerTLS(c config.TLS) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	t := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		// What net/http's ServeTLS offers: HTTP/2, then HTTP/1.1.
		NextProtos: []string{"h2", "http/1.1"},
	}
	if c.ClientCA == "" {
		return t, nil
	}
	pem, err := os.ReadFile(c.ClientCA)
	if err != nil {
		return nil, fmt.Errorf("client_ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("client_ca: %s holds no PEM certificate", c.ClientCA)
	}
	t.ClientCAs = pool
	switch c.ClientAuth {
	case config.ClientAuthRequire:
		t.ClientAuth = tls.RequireAndVerifyClientCert
	case config.ClientAuthVerifyIfGiven:
		t.ClientAuth = tls.VerifyClientCertIfGiven
	default:
		return nil, fmt.Errorf("client_auth: unknown value %q", c.ClientAuth)
	}
	return t, nil
}

// serverTLS is the listener's TLS configuration: every handshake takes
// the certificate and client CAs of the generation current at that moment,
// so a reload changes them without closing a connection.
func (a *App) serverTLS() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return a.gen.Load().tls, nil
		},
	}
}
