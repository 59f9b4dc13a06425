package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
	"github.com/mizuchi-uploadr/mizuchi/internal/s3api"
	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
	"github.com/mizuchi-uploadr/mizuchi/internal/telemetry"
)

// Admission limits keep the process from running out of file
// descriptors: every open client connection holds one, every upload in
// flight holds a few more (a temp file and a splice pipe on the
// filesystem backend; a connection to the store and a spool file per
// concurrent part on the S3 backend). What is over a limit is refused with
// 503 SlowDown and Retry-After, before any byte of a body is read, instead
// of failing everybody with "too many open files" later.
const (
	// fdReserve is kept out of the derivation for what is not a client
	// or an upload: listeners, the metrics listener, stdio, the poller,
	// connections to JWKS, OPA, OpenFGA and the trace collector, idle
	// connections to the store, DNS.
	fdReserve = 64
	// refusalSlots bounds the connections being refused at once. Each
	// holds its descriptor for at most refusalWindow; over this, a
	// connection over the limit is closed without an answer.
	refusalSlots = 32
	// refusalWindow is all a connection over the limit gets: TLS
	// handshake, request head and the 503, then it is closed, so a
	// hostile peer cannot hold it.
	refusalWindow = 2 * time.Second
	// shareDivisor: one client address gets at most 1/shareDivisor of
	// each limit (at least 1).
	shareDivisor = 4
	// fdsPerFilesystemUpload: the temp file and a splice pipe (two).
	fdsPerFilesystemUpload = 3
)

// admissionLimits are the limits in force.
type admissionLimits struct {
	fdLimit                     uint64
	connections, connsPerClient int
	uploads, uploadsPerClient   int
	fdsPerUpload                int
}

// raiseFDLimit raises the soft RLIMIT_NOFILE to the hard limit (the Go
// runtime already does so on Linux; done again here so the limit is known
// and logged) and returns the soft limit in force.
func raiseFDLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Cur < lim.Max {
		want := lim
		want.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err == nil {
			lim = want
		}
	}
	return lim.Cur, nil
}

// fdsPerUpload is the most descriptors one upload in flight may hold on
// any bucket: on S3, its own connection to the store plus, per concurrent
// part, a connection and a spool file.
func fdsPerUpload(cfg *config.Config) int {
	n := fdsPerFilesystemUpload
	for _, b := range cfg.Buckets {
		if b.S3 != nil {
			n = max(n, 1+2*max(b.Upload.ConcurrentParts, 1))
		}
	}
	return n
}

// deriveLimits applies the configured limits and derives those left at 0
// from the descriptor limit: after the reserve and the refusal slots, half
// of what remains goes to client connections (one descriptor each), the
// other half to uploads in flight (fdsPerUpload each).
func deriveLimits(cfg *config.Config, fdLimit uint64) admissionLimits {
	l := admissionLimits{fdLimit: fdLimit, fdsPerUpload: fdsPerUpload(cfg)}
	avail := int(min(fdLimit, 1<<24)) - fdReserve - refusalSlots
	avail = max(avail, 4)
	l.connections = cfg.Server.MaxConnections
	if l.connections <= 0 {
		l.connections = max(avail/2, 1)
	}
	l.uploads = cfg.Server.MaxInflightUploads
	if l.uploads <= 0 {
		l.uploads = max((avail-avail/2)/l.fdsPerUpload, 1)
	}
	l.connsPerClient = max(l.connections/shareDivisor, 1)
	l.uploadsPerClient = max(l.uploads/shareDivisor, 1)
	return l
}

// admission holds the connection limiter and the upload limiter.
type admission struct {
	limits  admissionLimits
	uploads *s3api.Admission
	conns   *connLimiter
}

func newAdmission(cfg *config.Config, log *slog.Logger, metrics *telemetry.Metrics, trusted []netip.Prefix) *admission {
	fdLimit, err := raiseFDLimit()
	if err != nil {
		log.Warn("cannot read the descriptor limit; assuming 1024", slog.Any("error", err))
		fdLimit = 1024
	}
	l := deriveLimits(cfg, fdLimit)
	log.Info("admission limits",
		slog.Uint64("fd_limit", l.fdLimit),
		slog.Int("max_connections", l.connections), slog.Int("max_connections_per_client", l.connsPerClient),
		slog.Int("max_inflight_uploads", l.uploads), slog.Int("max_inflight_uploads_per_client", l.uploadsPerClient))
	if need := uint64(fdReserve + refusalSlots + l.connections + l.uploads*l.fdsPerUpload); need > fdLimit {
		log.Warn("server.max_connections and server.max_inflight_uploads may need more file descriptors than the process may open; raise LimitNOFILE / ulimit -n or lower them",
			slog.Uint64("fd_limit", fdLimit), slog.Uint64("may_need", need))
	}
	return &admission{
		limits:  l,
		uploads: s3api.NewAdmission(l.uploads, l.uploadsPerClient),
		conns: &connLimiter{
			max: l.connections, perClient: l.connsPerClient, trusted: trusted,
			refusing: make(chan struct{}, refusalSlots), metrics: metrics, log: log,
			clients: map[netip.Prefix]int{},
		},
	}
}

// connLimiter bounds open client connections, in all and per client
// address (the TCP peer; peers in trusted_proxies only count against the
// total, since every client behind them shares their address).
type connLimiter struct {
	max, perClient int
	trusted        []netip.Prefix
	// tls: connections are TLS; a refusal is answered after the
	// handshake, by guard.
	tls        bool
	refusing   chan struct{}
	metrics    *telemetry.Metrics
	log        *slog.Logger
	lastEMFILE atomic.Int64

	mu      sync.Mutex
	open    int
	clients map[netip.Prefix]int
}

// listener wraps the S3 listener; tls tells whether its connections are
// TLS (then served through http.Server's TLS listener).
func (l *connLimiter) listener(ln net.Listener, tls bool) net.Listener {
	l.tls = tls
	return &admitListener{Listener: ln, l: l}
}

type admitListener struct {
	net.Listener
	l *connLimiter
}

// Accept returns admitted connections and connections to refuse (served
// only a 503, see guard). When accept(2) itself fails for lack of
// descriptors the error goes back to net/http unchanged: it is a
// temporary error, on which http.Server backs off (5 ms doubling to 1 s)
// and retries, leaving the connection in the kernel's backlog.
func (ln *admitListener) Accept() (net.Conn, error) {
	for {
		c, err := ln.Listener.Accept()
		if err != nil {
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				ln.l.warnEMFILE(err)
			}
			return nil, err
		}
		if ac := ln.l.admit(c); ac != nil {
			return ac, nil
		}
	}
}

func (l *connLimiter) warnEMFILE(err error) {
	now := time.Now().Unix()
	if last := l.lastEMFILE.Load(); now-last >= 60 && l.lastEMFILE.CompareAndSwap(last, now) {
		l.log.Warn("accepting connections: out of file descriptors; retrying (raise the descriptor limit or lower server.max_connections)", slog.Any("error", err))
	}
}

// peer is the per-client key of a connection, and whether it counts
// against a per-client share.
func (l *connLimiter) peer(c net.Conn) (netip.Prefix, bool) {
	ta, ok := c.RemoteAddr().(*net.TCPAddr)
	if !ok {
		return netip.Prefix{}, false
	}
	addr := ta.AddrPort().Addr().Unmap()
	for _, p := range l.trusted {
		if p.Contains(addr) {
			return netip.Prefix{}, false
		}
	}
	return s3api.ClientKey(addr)
}

// admit counts c in, or wraps it for refusal, or closes it when too many
// refusals are already in progress.
func (l *connLimiter) admit(c net.Conn) net.Conn {
	key, keyed := l.peer(c)
	l.mu.Lock()
	ok := l.open < l.max && (!keyed || l.clients[key] < l.perClient)
	if ok {
		l.open++
		if keyed {
			l.clients[key]++
		}
	}
	l.mu.Unlock()
	if ok {
		return &admittedConn{Conn: c, release: func() { l.release(key, keyed) }}
	}
	if l.metrics != nil {
		l.metrics.LimitRefusals.WithLabelValues("", "connections").Inc()
	}
	select {
	case l.refusing <- struct{}{}:
	default:
		// Too many refusals in progress: a best-effort answer (it fits
		// in the socket buffer of a fresh connection), then close.
		if !l.tls {
			_ = c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
			_, _ = c.Write(refusalResponse())
		}
		_ = c.Close()
		return nil
	}
	until := time.Now().Add(refusalWindow)
	_ = c.SetDeadline(until)
	if l.tls {
		// The answer needs the handshake: net/http does it and the
		// request's guard answers, within the window.
		return &refusedConn{Conn: c, until: until, release: func() { <-l.refusing }}
	}
	go func() {
		defer func() { <-l.refusing }()
		refuse(c)
	}()
	return nil
}

// refuse answers a plain-HTTP connection over the limit without reading
// its request: the 503, a half-close, then whatever the client still
// sends is read and dropped until it closes or the window ends (closing
// with unread input would reset the connection and could destroy the
// answer before the client reads it).
func refuse(c net.Conn) {
	defer c.Close()
	if _, err := c.Write(refusalResponse()); err != nil {
		return
	}
	_ = closeWrite(c)
	buf := make([]byte, 4096)
	for {
		if _, err := c.Read(buf); err != nil {
			return
		}
	}
}

// refusalResponse is the whole answer to a connection over the limit, as
// S3 would give it.
func refusalResponse() []byte {
	rec := &recorder{header: http.Header{}}
	rid := newRequestID()
	rec.header.Set("x-amz-request-id", rid)
	rec.header.Set("Server", "Mizuchi")
	s3err.Write(rec, nil, errConnLimit, "", rid)
	resp := &http.Response{
		StatusCode: rec.status, ProtoMajor: 1, ProtoMinor: 1, Header: rec.header,
		ContentLength: int64(rec.body.Len()), Body: io.NopCloser(&rec.body), Close: true,
	}
	var out bytes.Buffer
	_ = resp.Write(&out)
	return out.Bytes()
}

// recorder captures what s3err.Write writes.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) WriteHeader(status int)      { r.status = status }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }

func newRequestID() string {
	var id [8]byte
	_, _ = rand.Read(id[:])
	return strings.ToUpper(hex.EncodeToString(id[:]))
}

func (l *connLimiter) release(key netip.Prefix, keyed bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if keyed {
		if l.clients[key]--; l.clients[key] <= 0 {
			delete(l.clients, key)
		}
	}
}

// admittedConn gives its slot back when it is closed, whoever closes it:
// net/http after the last request or an idle timeout, a failed TLS
// handshake, a handler that hijacked it, shutdown.
type admittedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *admittedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// CloseWrite lets net/http half-close the connection before closing it
// (so a client still sending reads the answer instead of a reset).
func (c *admittedConn) CloseWrite() error { return closeWrite(c.Conn) }

// refusedConn is a TLS connection over a limit: all it may do is complete
// the handshake and hand over one request head within refusalWindow, and
// read the 503 (net/http's own deadlines are clamped to that window).
type refusedConn struct {
	net.Conn
	until   time.Time
	once    sync.Once
	release func()
}

func (c *refusedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

func (c *refusedConn) CloseWrite() error { return closeWrite(c.Conn) }

func (c *refusedConn) clamp(t time.Time) time.Time {
	if t.IsZero() || t.After(c.until) {
		return c.until
	}
	return t
}

func (c *refusedConn) SetDeadline(t time.Time) error      { return c.Conn.SetDeadline(c.clamp(t)) }
func (c *refusedConn) SetReadDeadline(t time.Time) error  { return c.Conn.SetReadDeadline(c.clamp(t)) }
func (c *refusedConn) SetWriteDeadline(t time.Time) error { return c.Conn.SetWriteDeadline(c.clamp(t)) }

func closeWrite(c net.Conn) error {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

type refusedKey struct{}

// connContext marks the requests of a refused connection.
func (l *connLimiter) connContext(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if _, ok := c.(*refusedConn); ok {
		return context.WithValue(ctx, refusedKey{}, true)
	}
	return ctx
}

var errConnLimit = s3api.ErrAdmission.WithMessage("Too many connections; please retry.")

// guard answers every request of a refused connection with 503 SlowDown,
// Retry-After and Connection: close, without reading its body. Health
// checks are still answered (then the connection closes too), so a
// liveness probe does not restart a server that is only busy.
func (l *connLimiter) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refused, _ := r.Context().Value(refusedKey{}).(bool); !refused {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Connection", "close")
		switch r.URL.Path {
		case "/health", "/healthz", "/readyz":
			next.ServeHTTP(w, r)
			return
		}
		rid := newRequestID()
		w.Header().Set("x-amz-request-id", rid)
		w.Header().Set("Server", "Mizuchi")
		s3err.Write(w, r, errConnLimit, r.URL.EscapedPath(), rid)
	})
}
