// Package opaserver runs a real OPA server (opa run --server) for tests,
// behind a counting reverse proxy so that tests can prove how many
// decisions reached the server.
package opaserver

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/testproc"
)

// Server is a running OPA server.
type Server struct {
	// URL is the counting proxy in front of OPA; give it to the client.
	URL string
	// DirectURL is OPA itself.
	DirectURL string
	Proc      *testproc.Proc

	decisions atomic.Int64
}

// Start writes policy (Rego v1) to a file and serves it with opa run on a
// free loopback port. The server stops when the test ends.
func Start(t testing.TB, policy string) *Server {
	t.Helper()
	bin := testproc.LookPath(t, "opa")
	file := filepath.Join(t.TempDir(), "policy.rego")
	if err := os.WriteFile(file, []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(testproc.FreePort(t))
	p := testproc.Start(t, bin, []string{
		"run", "--server", "--addr", addr,
		"--log-level", "error", "--disable-telemetry", file,
	})
	s := &Server{DirectURL: "http://" + addr, Proc: p}
	testproc.WaitHTTP(t, p, s.DirectURL+"/health", 30*time.Second)

	target, _ := url.Parse(s.DirectURL)
	proxy := &httputil.ReverseProxy{
		Rewrite:  func(r *httputil.ProxyRequest) { r.SetURL(target) },
		ErrorLog: log.New(io.Discard, "", 0),
	}
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/v1/data/") {
			s.decisions.Add(1)
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	s.URL = front.URL
	return s
}

// Decisions is the number of decision requests that reached the server.
func (s *Server) Decisions() int64 { return s.decisions.Load() }

// Stop kills OPA; the proxy then answers 502 and DirectURL refuses
// connections.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if err := s.Proc.Signal(syscall.SIGKILL); err != nil && !s.Proc.Exited() {
		t.Fatalf("stop opa: %v", err)
	}
	<-s.Proc.Done()
}
