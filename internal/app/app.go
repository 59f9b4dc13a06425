package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"

	"github.com/mizuchi-uploadr/mizuchi/internal/auth"
	"github.com/mizuchi-uploadr/mizuchi/internal/backend"
	s3backend "github.com/mizuchi-uploadr/mizuchi/internal/backend/s3"
	"github.com/mizuchi-uploadr/mizuchi/internal/config"
	"github.com/mizuchi-uploadr/mizuchi/internal/limits"
	"github.com/mizuchi-uploadr/mizuchi/internal/s3api"
	"github.com/mizuchi-uploadr/mizuchi/internal/state"
	"github.com/mizuchi-uploadr/mizuchi/internal/telemetry"
)

// Options are the process-level inputs that do not come from the config.
type Options struct {
	Logger  *slog.Logger
	Version string
	Commit  string
}

// App is a configured, not yet running, Mizuchi.
type App struct {
	cfg      *config.Config
	log      *slog.Logger
	registry *prometheus.Registry
	metrics  *telemetry.Metrics
	tracing  *telemetry.Tracing
	// memory is the process-wide budget for buffering parts in memory.
	memory  *s3backend.MemoryBudget
	handler http.Handler
	buckets []*s3api.Bucket
	closers []func() error
	// cleanups run at start and then hourly while serving.
	cleanups []func(context.Context)
	// shared is the state store; uploadIDs seals multipart upload ids
	// (state.go).
	shared    state.Store
	uploadIDs *s3api.UploadIDs
	// limiter enforces buckets' limits (limits.go); nil: no bucket has any.
	limiter *limits.Limiter

	inflight sync.WaitGroup
}

// New builds everything the configuration describes. Nothing listens yet.
func New(ctx context.Context, cfg *config.Config, o Options) (*App, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reg := prometheus.NewRegistry()
	a := &App{
		cfg:      cfg,
		log:      log,
		registry: reg,
		metrics:  telemetry.NewMetrics(reg, telemetry.BuildInfo{Version: o.Version, Commit: o.Commit}),
	}
	tracing, err := telemetry.NewTracing(ctx, cfg.Tracing, telemetry.TracingOptions{Metrics: a.metrics, Logger: log, Version: o.Version})
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	a.tracing = tracing
	a.closers = append(a.closers, func() error {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return tracing.Shutdown(sctx)
	})
	var memory config.Size
	for _, b := range cfg.Buckets {
		memory = max(memory, b.Upload.MaxMemoryBuffer)
	}
	a.memory = s3backend.NewMemoryBudget(int64(memory))
	if err := a.buildState(); err != nil {
		_ = a.Close()
		return nil, err
	}
	for i := range cfg.Buckets {
		b, err := a.buildBucket(ctx, &cfg.Buckets[i])
		if err != nil {
			_ = a.Close()
			return nil, fmt.Errorf("bucket %q: %w", cfg.Buckets[i].Name, err)
		}
		a.buckets = append(a.buckets, b)
	}
	var trusted []netip.Prefix
	for _, c := range cfg.Server.TrustedProxies {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			_ = a.Close()
			return nil, fmt.Errorf("server.trusted_proxies: %w", err)
		}
		trusted = append(trusted, p)
	}
	a.handler = telemetry.Middleware(s3api.NewHandler(s3api.Options{
		Buckets:         a.buckets,
		Logger:          log,
		Metrics:         a.metrics,
		TrustedProxies:  trusted,
		Ready:           a.ready,
		Hooks:           a.hooks(),
		BodyIdleTimeout: time.Duration(cfg.Server.BodyIdleTimeoutSeconds) * time.Second,
		UploadIDs:       a.uploadIDs,
	}), tracing.MiddlewareOptions())
	a.warn()
	return a, nil
}

// warn logs what an operator must know about a risky setup (the built-in
// default, anonymous buckets or metrics on public addresses).
func (a *App) warn() {
	for _, p := range a.cfg.Warnings() {
		a.log.Warn(p.Message, slog.String("config", p.Source), slog.String("key", p.Path), slog.Int("line", p.Line))
	}
}

// ready reports each backend's reachability for /readyz.
func (a *App) ready(ctx context.Context) (bool, map[string]string) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	details := make(map[string]string, len(a.buckets))
	ok := true
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, b := range a.buckets {
		c, can := b.Backend.(backend.Checker)
		if !can {
			details["bucket:"+b.Name] = "ok"
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := c.Check(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				ok = false
				details["bucket:"+b.Name] = "unreachable"
				a.log.Warn("backend not ready", slog.String("bucket", b.Name), slog.Any("error", err))
				return
			}
			details["bucket:"+b.Name] = "ok"
		}()
	}
	wg.Wait()
	if !a.readyState(ctx, details) {
		ok = false
	}
	// A failing trace collector shows here but never fails readiness.
	details["tracing"] = a.tracing.State()
	return ok, details
}

// hooks connect the S3 handler to the server span.
func (a *App) hooks() s3api.Hooks {
	if !a.tracing.Enabled() {
		return s3api.Hooks{}
	}
	key := a.tracing.SubjectKey()
	return s3api.Hooks{
		Routed: func(ctx context.Context, bucket, operation, objectKey string) {
			telemetry.SetRoute(ctx, bucket, operation)
			if objectKey != "" {
				telemetry.SetObjectKey(ctx, objectKey)
			}
		},
		Authenticated: func(ctx context.Context, p *auth.Principal) {
			telemetry.ServerSpan(ctx).SetAttributes(
				attribute.String("enduser.hash", telemetry.SubjectHash(key, p.Subject)),
				attribute.String("mizuchi.auth.method", string(p.Method)))
		},
		Transferred: func(ctx context.Context, clientWait, backendTime time.Duration) {
			telemetry.RecordUploadWait(ctx, clientWait, max(backendTime-clientWait, 0))
		},
	}
}

// Handler returns the S3 handler (for tests).
func (a *App) Handler() http.Handler { return a.handler }

// Close releases the resources of backends and engines.
func (a *App) Close() error {
	var errs []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		errs = append(errs, a.closers[i]())
	}
	return errors.Join(errs...)
}

// Run serves until ctx is cancelled, then shuts down gracefully: it stops
// accepting connections, lets in-flight uploads finish for
// shutdown_grace_seconds, then cancels the rest (backends abort them
// cleanly) and closes.
func (a *App) Run(ctx context.Context) error {
	srvCfg := a.cfg.Server
	ln, err := net.Listen("tcp", srvCfg.Address)
	if err != nil {
		return fmt.Errorf("listen %s: %w", srvCfg.Address, err)
	}
	var metricsLn net.Listener
	if a.cfg.Metrics.On() {
		metricsLn, err = net.Listen("tcp", a.cfg.Metrics.Address)
		if err != nil {
			ln.Close()
			return fmt.Errorf("listen %s (metrics): %w", a.cfg.Metrics.Address, err)
		}
	}

	// Requests run under baseCtx, which is cancelled only when the grace
	// period is over, so in-flight uploads are aborted through their
	// contexts (temp files removed, multipart uploads aborted).
	baseCtx, cancelRequests := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRequests()
	srv := &http.Server{
		Handler:           a.track(a.handler),
		ReadHeaderTimeout: time.Duration(srvCfg.ReadHeaderTimeoutSeconds) * time.Second,
		IdleTimeout:       time.Duration(srvCfg.IdleTimeoutSeconds) * time.Second,
		MaxHeaderBytes:    srvCfg.MaxHeaderBytes,
		BaseContext:       func(net.Listener) context.Context { return baseCtx },
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 2)
	scheme := "http"
	if srvCfg.TLS.Enabled() {
		scheme = "https"
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		go func() { errc <- srv.ServeTLS(ln, srvCfg.TLS.CertFile, srvCfg.TLS.KeyFile) }()
	} else {
		go func() { errc <- srv.Serve(ln) }()
	}
	a.log.Info("serving S3 uploads", slog.String("address", scheme+"://"+ln.Addr().String()),
		slog.Int("buckets", len(a.buckets)), slog.String("config", a.cfg.Source))

	var msrv *http.Server
	if metricsLn != nil {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", telemetry.MetricsHandler(a.registry))
		msrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { errc <- msrv.Serve(metricsLn) }()
		a.log.Info("serving metrics", slog.String("address", "http://"+metricsLn.Addr().String()+"/metrics"))
	}

	if len(a.cleanups) > 0 {
		go a.runCleanups(ctx)
	}

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	grace := time.Duration(srvCfg.ShutdownGraceSeconds) * time.Second
	a.log.Info("shutting down: letting in-flight uploads finish", slog.Duration("grace", grace))
	if msrv != nil {
		_ = msrv.Close()
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	err = srv.Shutdown(sctx)
	cancel()
	if errors.Is(err, context.DeadlineExceeded) {
		a.log.Warn("grace period over: aborting the remaining uploads")
		// Cancel the requests' contexts and close their connections so
		// that reads blocked on a client fail at once, then wait a bounded
		// time for the handlers to clean up after themselves.
		cancelRequests()
		_ = srv.Close()
		done := make(chan struct{})
		go func() { a.inflight.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(abortWait):
			a.log.Error("uploads still cleaning up after the abort; exiting anyway", slog.Duration("waited", abortWait))
		}
	}
	a.log.Info("stopped")
	return nil
}

// cleanupInterval is how often stale uploads are looked for.
const cleanupInterval = time.Hour

func (a *App) runCleanups(ctx context.Context) {
	t := time.NewTicker(cleanupInterval)
	defer t.Stop()
	for {
		for _, c := range a.cleanups {
			c(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// abortWait bounds how long shutdown waits for aborted uploads to clean up.
const abortWait = 15 * time.Second

// track counts running handlers so shutdown can wait for aborted ones,
// and closes connections gently when a handler answered in the middle of a
// request body.
func (a *App) track(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.inflight.Add(1)
		defer a.inflight.Done()
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		// A shallow copy: net/http keeps looking at its own request's body
		// (e.g. to know whether a 100 Continue was sent).
		body := &watchedBody{ReadCloser: r.Body}
		r2 := r.WithContext(r.Context())
		r2.Body = body
		next.ServeHTTP(w, r2)
		switch {
		case body.eof:
		case body.n > 0:
			// Answered in the middle of the body: the client is sending.
			lingerOnUnreadBody(w, body.ReadCloser, time.Second)
		case r.Header.Get("Expect") != "":
			// Answered before asking for the body: a client whose wait
			// for 100 Continue ran out may be sending it anyway.
			lingerOnUnreadBody(w, body.ReadCloser, 250*time.Millisecond)
		}
	})
}

// watchedBody notes how much of a request body was read.
type watchedBody struct {
	io.ReadCloser
	n   int64
	eof bool
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

// lingerOnUnreadBody handles an answer given while the client may still be
// sending its body (a backend failure mid-upload, a refusal the client did
// not wait for): net/http would close the connection with body bytes
// unread, the kernel would then reset it, and the client could lose the
// answer before reading it. The answer is flushed; then reading one more
// byte (waiting at most wait) through a zero-limit MaxBytesReader marks
// the request as too large, which makes net/http half-close the connection
// and wait briefly instead. The final status is already written, so this
// read never sends a 100 Continue.
func lingerOnUnreadBody(w http.ResponseWriter, body io.Reader, wait time.Duration) {
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	_ = rc.SetReadDeadline(time.Now().Add(wait))
	var one [1]byte
	_, _ = http.MaxBytesReader(w, io.NopCloser(body), 0).Read(one[:])
}

// NewLogger builds the process logger from the logging config.
func NewLogger(w io.Writer, c config.Logging) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(strings.ToUpper(c.Level)))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
