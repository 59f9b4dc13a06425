package openfga

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc/credentials"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
)

// tlsConfig is the client side of a TLS connection to OpenFGA: TLS 1.2 or
// later, trusting cfg.CAFile instead of the system roots when it is set.
func tlsConfig(cfg config.OpenFGA) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile == "" {
		return tc, nil
	}
	pem, err := os.ReadFile(cfg.CAFile)
	if err != nil {
		return nil, fmt.Errorf("openfga: ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("openfga: ca_file %s holds no PEM certificate", cfg.CAFile)
	}
	tc.RootCAs = pool
	return tc, nil
}

// NewTransport returns the pooled, keep-alive transport the http
// transport uses by default (proxies from the environment, as
// net/http's default), trusting cfg.CAFile when it is set. A caller
// that wraps it (for tracing) passes the result as Options.HTTPClient.
func NewTransport(cfg config.OpenFGA) (*http.Transport, error) {
	tc, err := tlsConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     tc,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 5 * time.Second,
		ForceAttemptHTTP2:   true,
	}, nil
}

// bearer sends the preshared key with every gRPC call. It does not demand
// transport security: a token over plaintext is the operator's choice
// (config validation warns about it).
type bearer struct{ header string }

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": b.header}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }

var _ credentials.PerRPCCredentials = bearer{}

// bearerHeader is the Authorization value for a token, empty without one.
func bearerHeader(token string) string {
	if token == "" {
		return ""
	}
	return "Bearer " + token
}

// validToken reports whether a token can travel in a header.
func validToken(token string) bool {
	return !strings.ContainsFunc(token, func(r rune) bool { return r <= ' ' || r == 0x7f })
}
