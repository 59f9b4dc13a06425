package app

import (
	"bufio"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
	"github.com/mizuchi-uploadr/mizuchi/internal/telemetry"
)

func TestDeriveLimits(t *testing.T) {
	fsOnly := &config.Config{Buckets: []config.Bucket{{Filesystem: &config.FilesystemBackend{}}}}
	withS3 := &config.Config{Buckets: []config.Bucket{{Filesystem: &config.FilesystemBackend{}}, {S3: &config.S3Backend{}, Upload: config.Upload{ConcurrentParts: 4}}}}
	explicit := &config.Config{Server: config.Server{MaxConnections: 20, MaxInflightUploads: 8}}
	tests := []struct {
		name                                 string
		cfg                                  *config.Config
		fds                                  uint64
		conns, connsPer, uploads, uploadsPer int
	}{
		// (fds − 64 reserved − 32 refusal slots) / 2 for connections, the
		// other half / descriptors per upload for uploads; a quarter each
		// per client.
		{"filesystem, 1024", fsOnly, 1024, 464, 116, 154, 38},
		{"filesystem, 256", fsOnly, 256, 80, 20, 26, 6},
		{"s3 with 4 concurrent parts, 1024", withS3, 1024, 464, 116, 51, 12},
		{"large limit", fsOnly, 1 << 20, 524240, 131060, 174746, 43686},
		{"tiny limit", fsOnly, 50, 2, 1, 1, 1},
		{"explicit", explicit, 1024, 20, 5, 8, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := deriveLimits(tt.cfg, tt.fds)
			if l.connections != tt.conns || l.connsPerClient != tt.connsPer || l.uploads != tt.uploads || l.uploadsPerClient != tt.uploadsPer {
				t.Fatalf("got %d/%d connections, %d/%d uploads", l.connections, l.connsPerClient, l.uploads, l.uploadsPerClient)
			}
		})
	}
}

// TestConnLimiterReleasesAndRefuses: a connection over the limit is
// answered 503 SlowDown with Retry-After and closed; a closed admitted
// connection gives its slot back; trusted proxies only count against the
// total.
func TestConnLimiterReleasesAndRefuses(t *testing.T) {
	l, dial, accepted := startLimited(t, nil)
	first := dial()
	server := <-accepted
	second := dial()
	_ = second.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(second), nil)
	if err != nil {
		t.Fatalf("the connection over the per-client share: %v", err)
	}
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !resp.Close {
		t.Fatalf("refusal: %d %v", resp.StatusCode, resp.Header)
	}
	server.Close()
	server.Close() // twice: released once
	first.Close()
	for l.openConns() != 0 {
		time.Sleep(time.Millisecond)
	}
	dial()
	<-accepted
	if n := l.openConns(); n != 1 {
		t.Fatalf("%d open", n)
	}
}

func TestConnLimiterTrustedProxyCountsOnlyAgainstTheTotal(t *testing.T) {
	l, dial, accepted := startLimited(t, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	for range 3 {
		dial()
		<-accepted
	}
	if n := l.openConns(); n != 3 {
		t.Fatalf("%d open", n)
	}
}

func (l *connLimiter) openConns() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// startLimited serves a limiter of 3 connections, 1 per client.
func startLimited(t *testing.T, trusted []netip.Prefix) (*connLimiter, func() net.Conn, chan net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := telemetry.NewMetrics(prometheus.NewRegistry(), telemetry.BuildInfo{})
	l := &connLimiter{max: 3, perClient: 1, trusted: trusted, refusing: make(chan struct{}, 2), metrics: m,
		log: slog.New(slog.DiscardHandler), clients: map[netip.Prefix]int{}}
	aln := l.listener(ln, false)
	t.Cleanup(func() { aln.Close() })
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := aln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	return l, dial, accepted
}

// TestConnLimiterRefusesTLSAfterTheHandshake: over the limit, a TLS
// client gets the 503 SlowDown (it could not read a plain answer), health
// checks are still answered, and both connections close.
func TestConnLimiterRefusesTLSAfterTheHandshake(t *testing.T) {
	l := &connLimiter{max: 1, perClient: 1, refusing: make(chan struct{}, 2),
		metrics: telemetry.NewMetrics(prometheus.NewRegistry(), telemetry.BuildInfo{}),
		log:     slog.New(slog.DiscardHandler), clients: map[netip.Prefix]int{}}
	srv := httptest.NewUnstartedServer(l.guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok"))
	})))
	srv.Listener = l.listener(srv.Listener, true)
	srv.Config.ConnContext = l.connContext
	srv.StartTLS()
	defer srv.Close()

	held := srv.Client() // keeps its connection open: the one slot
	get := func(c *http.Client, path string) (*http.Response, string) {
		t.Helper()
		resp, err := c.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	if resp, _ := get(held, "/b/k"); resp.StatusCode != 200 {
		t.Fatalf("first connection: %d", resp.StatusCode)
	}
	other := &http.Client{Transport: &http.Transport{TLSClientConfig: held.Transport.(*http.Transport).TLSClientConfig.Clone()}}
	defer other.CloseIdleConnections()
	resp, body := get(other, "/b/k")
	if resp.StatusCode != 503 || !strings.Contains(body, "<Code>SlowDown</Code>") || resp.Header.Get("Retry-After") == "" || !resp.Close {
		t.Fatalf("over the limit: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	if resp, body := get(other, "/healthz"); resp.StatusCode != 200 || body != "ok" || !resp.Close {
		t.Fatalf("health check over the limit: %d %q", resp.StatusCode, body)
	}
	if n := testutil.ToFloat64(l.metrics.LimitRefusals.WithLabelValues("", "connections")); n != 2 {
		t.Fatalf("refusals counted: %v", n)
	}
}

// emfileListener fails its first accepts with EMFILE, as accept(2) does
// when the process is out of descriptors.
type emfileListener struct {
	net.Listener
	fails atomic.Int32
}

func (l *emfileListener) Accept() (net.Conn, error) {
	if l.fails.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// TestAcceptEMFILEIsRetried: when accept(2) fails for lack of descriptors
// the limiter passes the error on unchanged, and net/http treats it as
// temporary: it backs off and keeps serving instead of returning.
func TestAcceptEMFILEIsRetried(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	el := &emfileListener{Listener: ln}
	el.fails.Store(3)
	l := &connLimiter{max: 10, perClient: 10, refusing: make(chan struct{}, 2),
		log: slog.New(slog.DiscardHandler), clients: map[netip.Prefix]int{}}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) }),
		ErrorLog: log.New(io.Discard, "", 0)}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l.listener(el, false)) }()
	defer srv.Close()
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatalf("after EMFILE on accept: %v", err)
	}
	resp.Body.Close()
	select {
	case err := <-served:
		t.Fatalf("Serve returned: %v", err)
	default:
	}
	if el.fails.Load() >= 0 {
		t.Fatal("the failing accepts were not retried")
	}
}

// TestConnLimiterReleasesOnFailedHandshake: a connection whose TLS
// handshake fails gives its slot back, so garbage cannot eat the limit.
func TestConnLimiterReleasesOnFailedHandshake(t *testing.T) {
	l := &connLimiter{max: 1, perClient: 1, refusing: make(chan struct{}, 2),
		log: slog.New(slog.DiscardHandler), clients: map[netip.Prefix]int{}}
	srv := httptest.NewUnstartedServer(l.guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok"))
	})))
	srv.Listener = l.listener(srv.Listener, true)
	srv.Config.ConnContext = l.connContext
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	for range 3 {
		c, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "https://"))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, _ = io.Copy(io.Discard, c) // until the server closes it
		c.Close()
		for l.openConns() != 0 {
			time.Sleep(time.Millisecond)
		}
	}
	c := srv.Client()
	defer c.CloseIdleConnections()
	resp, err := c.Get(srv.URL + "/b/k")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("after failed handshakes: %d", resp.StatusCode)
	}
}
