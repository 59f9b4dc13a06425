package faultproxy

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
)

// Injection answers matching requests with an S3 error instead of
// forwarding them.
type Injection struct {
	// Match selects requests (nil: all).
	Match func(*http.Request) bool
	// Times is how many matching requests get the error (0: all).
	Times int
	// Status and Code form the answer, e.g. 503 SlowDown.
	Status int
	Code   string
	// DrainBody reads the request body before answering (as a store that
	// fails after receiving the data would).
	DrainBody bool
}

// Recorded is a request seen by the HTTP proxy.
type Recorded struct {
	Method        string
	URL           string
	Header        http.Header
	ContentLength int64
	// Injected is true when the proxy answered instead of the server.
	Injected bool
}

// HTTP is an HTTP reverse proxy to one target that can inject errors and
// records every request's headers. The Host header is kept, so SigV4
// signatures made for the proxy's address stay valid.
type HTTP struct {
	// Addr is host:port; URL is http://Addr.
	Addr string
	URL  string

	srv *http.Server
	rp  *httputil.ReverseProxy

	mu       sync.Mutex
	inj      *Injection
	injected int
	reqs     []Recorded
}

// StartHTTP proxies a free loopback port to target (host:port) until the
// test ends.
func StartHTTP(t testing.TB, target string) *HTTP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("faultproxy: listen: %v", err)
	}
	p := &HTTP{Addr: ln.Addr().String()}
	p.URL = "http://" + p.Addr
	u := &url.URL{Scheme: "http", Host: target}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = u.Scheme
			pr.Out.URL.Host = u.Host
			pr.Out.Host = pr.In.Host
		},
		ErrorLog: nil,
	}
	p.srv = &http.Server{Handler: p}
	go func() { _ = p.srv.Serve(ln) }()
	t.Cleanup(func() { _ = p.srv.Close() })
	return p
}

// Inject installs an injection (replacing any other).
func (p *HTTP) Inject(in Injection) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inj, p.injected = &in, 0
}

// Clear removes the injection.
func (p *HTTP) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inj = nil
}

// Injected counts the requests answered by the injection.
func (p *HTTP) Injected() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.injected
}

// Requests returns the requests seen so far.
func (p *HTTP) Requests() []Recorded {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Recorded(nil), p.reqs...)
}

// ServeHTTP forwards r or answers it with the injected error.
func (p *HTTP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	inj := p.inj
	hit := inj != nil && (inj.Match == nil || inj.Match(r)) && (inj.Times == 0 || p.injected < inj.Times)
	if hit {
		p.injected++
	}
	p.reqs = append(p.reqs, Recorded{Method: r.Method, URL: r.URL.String(), Header: r.Header.Clone(),
		ContentLength: r.ContentLength, Injected: hit})
	p.mu.Unlock()
	if !hit {
		p.rp.ServeHTTP(w, r)
		return
	}
	if inj.DrainBody {
		_, _ = io.Copy(io.Discard, r.Body)
	}
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Connection", "close")
	w.WriteHeader(inj.Status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>injected fault</Message><RequestId>fault</RequestId></Error>`, inj.Code)
}
