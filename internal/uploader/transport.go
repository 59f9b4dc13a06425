package uploader

import (
	"crypto/tls"
	"net"
	"net/http"
	"time"
)

// TransportOptions tunes NewHTTPClient.
type TransportOptions struct {
	// MaxConnsPerHost bounds parallel connections; set it to the upload
	// concurrency (plus one for control requests). 0 means unlimited.
	MaxConnsPerHost int
	// TLSConfig is used for https URLs; nil means system roots.
	TLSConfig *tls.Config
}

// NewHTTPClient returns a client tuned for a few long uploads to one host:
// keep-alive connections reused across parts, large write buffers, bounded
// dial and handshake times, and no overall timeout (a part may take long;
// cancellation comes from the context). Proxies come from the usual
// HTTP(S)_PROXY/NO_PROXY variables.
func NewHTTPClient(o TransportOptions) *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	idle := o.MaxConnsPerHost
	if idle <= 0 {
		idle = 16
	}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           dialer.DialContext,
			TLSClientConfig:       o.TLSConfig,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          idle,
			MaxIdleConnsPerHost:   idle,
			MaxConnsPerHost:       o.MaxConnsPerHost,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: 2 * time.Second,
			WriteBufferSize:       256 << 10,
			ReadBufferSize:        32 << 10,
		},
		// S3 never redirects an upload anywhere an upload should follow.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
