package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"

	"github.com/mizuchi-uploadr/mizuchi/internal/auth"
	"github.com/mizuchi-uploadr/mizuchi/internal/backend"
	s3backend "github.com/mizuchi-uploadr/mizuchi/internal/backend/s3"
	"github.com/mizuchi-uploadr/mizuchi/internal/config"
	"github.com/mizuchi-uploadr/mizuchi/internal/events"
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
	// LookupEnv resolves ${VAR} when the configuration is reloaded
	// (os.LookupEnv when nil).
	LookupEnv func(string) (string, bool)
}

// App is a configured, not yet running, Mizuchi. What a configuration
// reload replaces lives in its generation (generation.go); the App holds
// what the process keeps.
type App struct {
	// cfg is the configuration the process started with: the listeners,
	// telemetry and logging keep it until restart.
	cfg      *config.Config
	log      *slog.Logger
	registry *prometheus.Registry
	metrics  *telemetry.Metrics
	tracing  *telemetry.Tracing
	// memory is the process-wide budget for buffering parts in memory.
	memory *s3backend.MemoryBudget
	// closers release what the process holds (not the generations).
	closers []func() error
	// events owns the outbox and the delivery of upload events
	// (events.go); each generation routes with its own table.
	events *events.Manager
	// reloaded is signalled after each successful reload (cleanup.go
	// restarts the periodic cleanups of the new generation).
	reloaded chan struct{}
	// shared is the state store; uploadIDs seals multipart upload ids
	// when no key is configured (state.go). Both are the process's.
	shared    state.Store
	uploadIDs *s3api.UploadIDs
	// limiter enforces buckets' limits (limits.go); nil: no bucket has any.
	limiter *limits.Limiter

	inflight sync.WaitGroup
	// admission bounds connections and uploads in flight (admission.go).
	admission *admission

	// gen serves new requests; Reload replaces it (generation.go).
	gen       atomic.Pointer[generation]
	reloads   *telemetry.ReloadMetrics
	reloadMu  sync.Mutex
	lookupEnv func(string) (string, bool)
	replays   replaySets
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
		reloads:  telemetry.NewReloadMetrics(reg),

		lookupEnv: o.LookupEnv,
		reloaded:  make(chan struct{}, 1),
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
	a.memory = s3backend.NewMemoryBudget(memoryBudget(cfg))
	trusted, err := trustedProxies(cfg)
	if err != nil {
		_ = a.Close()
		return nil, err
	}
	// Admission limits are the process's: read at start, kept on reload.
	a.admission = newAdmission(cfg, log, a.metrics, trusted)
	// The events outbox is the process's too: one process holds it.
	if err := a.buildEvents(); err != nil {
		_ = a.Close()
		return nil, fmt.Errorf("events: %w", err)
	}
	// So is the state store, and the generated upload id key.
	if err := a.buildState(); err != nil {
		_ = a.Close()
		return nil, err
	}
	g, err := a.newGeneration(ctx, cfg)
	if err != nil {
		_ = a.Close()
		return nil, err
	}
	a.events.Commit(g.events)
	a.gen.Store(g)
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
func (a *generation) ready(ctx context.Context) (bool, map[string]string) {
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
func (a *App) Handler() http.Handler { return http.HandlerFunc(a.serveCurrent) }

// Close releases the resources of backends and engines.
func (a *App) Close() error {
	a.reloadMu.Lock() // a reload in progress finishes first
	defer a.reloadMu.Unlock()
	if g := a.gen.Load(); g != nil {
		g.retire()
	}
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
	ln = a.admission.conns.listener(ln, srvCfg.TLS.Enabled())
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
		Handler:           a.track(a.admission.conns.guard(http.HandlerFunc(a.serveCurrent))),
		ConnContext:       a.admission.conns.connContext,
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
		srv.TLSConfig = a.serverTLS()
		go func() { errc <- srv.ServeTLS(ln, "", "") }()
	} else {
		go func() { errc <- srv.Serve(ln) }()
	}
	a.log.Info("serving S3 uploads", slog.String("address", scheme+"://"+ln.Addr().String()),
		slog.Int("buckets", len(a.cfg.Buckets)), slog.String("config", a.cfg.Source))

	var msrv *http.Server
	if metricsLn != nil {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", telemetry.MetricsHandler(a.registry))
		msrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { errc <- msrv.Serve(metricsLn) }()
		a.log.Info("serving metrics", slog.String("address", "http://"+metricsLn.Addr().String()+"/metrics"))
	}

	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	go a.runCleanups(runCtx)
	go a.watchFiles(runCtx)

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
