package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mizuchi-uploadr/mizuchi/internal/auth/sigv4"
	"github.com/mizuchi-uploadr/mizuchi/internal/config"
	"github.com/mizuchi-uploadr/mizuchi/internal/events"
	"github.com/mizuchi-uploadr/mizuchi/internal/s3api"
	"github.com/mizuchi-uploadr/mizuchi/internal/telemetry"
)

// A generation is everything built from one configuration: the S3 handler
// with its buckets (backends, authentication chains, authorizers), the TLS
// certificate and client CAs, the periodic cleanups, and the closers of
// all of it. The App serves every new request with the current generation
// (an atomic pointer); a reload builds a whole new generation beside it
// and swaps the pointer. A request keeps the generation it started with
// until it returns, and a replaced generation is closed only after its
// last request returned, so an upload in flight never loses its backend,
// its key server or its policy engine.
//
// What belongs here is anything built from a bucket's or the server's
// reloadable configuration: it is built in buildBucket (or newGeneration)
// and releases its resources through a.closers. What must outlive a
// reload (listeners, the metrics registry, tracing, the memory budget,
// the multipart binding table, state shared between replicas) lives on
// the App, which the generation embeds.
type generation struct {
	*App

	// cfg is the configuration this generation was built from.
	cfg     *config.Config
	handler http.Handler
	buckets []*s3api.Bucket
	closers []func() error
	// cleanups are the buckets' periodic multipart cleanups (cleanup.go).
	cleanups []*cleanupTask
	// tls is offered to new TLS connections (nil without server.tls).
	tls *tls.Config
	// files is the state of the watched files before they were read.
	files map[string]fileState
	// events routes this generation's upload events (events.go);
	// notifier is nil when no bucket has sinks.
	events   *events.Table
	notifier s3api.Notifier

	refs    atomic.Int64
	retired atomic.Bool
	once    sync.Once
	// closed is closed when the generation's resources were released.
	closed chan struct{}
}

// newGeneration builds a generation from cfg. On failure everything built
// so far is closed.
func (a *App) newGeneration(ctx context.Context, cfg *config.Config) (*generation, error) {
	g := &generation{App: a, cfg: cfg, closed: make(chan struct{})}
	if err := g.build(ctx); err != nil {
		g.close()
		return nil, err
	}
	return g, nil
}

func (g *generation) build(ctx context.Context) error {
	cfg := g.cfg
	g.files = snapshot(watchedFiles(cfg))
	if cfg.Server.TLS.Enabled() {
		t, err := loadServerTLS(cfg.Server.TLS)
		if err != nil {
			return fmt.Errorf("server.tls: %w", err)
		}
		g.tls = t
	}
	for i := range cfg.Buckets {
		b, err := g.buildBucket(ctx, &cfg.Buckets[i])
		if err != nil {
			return fmt.Errorf("bucket %q: %w", cfg.Buckets[i].Name, err)
		}
		g.buckets = append(g.buckets, b)
	}
	if err := g.eventsTable(); err != nil {
		return err
	}
	trusted, err := trustedProxies(cfg)
	if err != nil {
		return err
	}
	uploadIDs, err := g.uploadIDsFor(cfg)
	if err != nil {
		return err
	}
	g.handler = telemetry.Middleware(s3api.NewHandler(s3api.Options{
		Buckets:         g.buckets,
		Logger:          g.log,
		Metrics:         g.metrics,
		TrustedProxies:  trusted,
		Ready:           g.ready,
		Hooks:           g.hooks(),
		BodyIdleTimeout: time.Duration(cfg.Server.BodyIdleTimeoutSeconds) * time.Second,
		UploadIDs:       uploadIDs,
		Admission:       g.admission.uploads,
		Notifier:        g.notifier,
	}), g.tracing.MiddlewareOptions())
	return nil
}

// acquire returns the current generation, held until release.
func (a *App) acquire() *generation {
	for {
		g := a.gen.Load()
		g.refs.Add(1)
		// Still current after taking the reference: a reload that
		// replaces g from now on sees the reference and leaves g open.
		if a.gen.Load() == g {
			return g
		}
		g.release()
	}
}

// release ends one use of the generation; the last use of a retired
// generation closes it.
func (g *generation) release() {
	if g.refs.Add(-1) == 0 && g.retired.Load() {
		g.close()
	}
}

// retire marks a generation that no longer serves new requests; it is
// closed now if unused, else when its last request returns.
func (g *generation) retire() {
	g.retired.Store(true)
	if g.refs.Load() == 0 {
		g.close()
	}
}

// close releases the generation's resources once, in reverse order of
// creation.
func (g *generation) close() {
	g.once.Do(func() {
		var errs []error
		for i := len(g.closers) - 1; i >= 0; i-- {
			errs = append(errs, g.closers[i]())
		}
		if err := errors.Join(errs...); err != nil {
			g.log.Warn("closing the resources of a configuration", slog.String("config", g.cfg.Source), slog.Any("error", err))
		}
		close(g.closed)
	})
}

// serveCurrent serves a request with the current generation.
func (a *App) serveCurrent(w http.ResponseWriter, r *http.Request) {
	g := a.acquire()
	defer g.release()
	g.handler.ServeHTTP(w, r)
}

// replaySets are the SigV4 replay caches by bucket name, kept across
// reloads so a signature seen before a reload is still refused after it.
type replaySets struct {
	mu sync.Mutex
	m  map[string]sigv4.ReplayStore
}

// replaySet is the replay store of a bucket, made for its configuration
// when first needed; its size is kept until restart.
func (a *App) replaySet(bucket string, cfg config.SigV4) sigv4.ReplayStore {
	// With a shared state store (state.go), every bucket claims there.
	if shared := a.ReplayStore(); shared != nil {
		return shared
	}
	a.replays.mu.Lock()
	defer a.replays.mu.Unlock()
	if a.replays.m == nil {
		a.replays.m = map[string]sigv4.ReplayStore{}
	}
	r, ok := a.replays.m[bucket]
	if !ok {
		r = sigv4.NewDefaultReplayStore(cfg)
		a.replays.m[bucket] = r
	}
	return r
}

// trustedProxies parses server.trusted_proxies.
func trustedProxies(cfg *config.Config) ([]netip.Prefix, error) {
	var trusted []netip.Prefix
	for _, c := range cfg.Server.TrustedProxies {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("server.trusted_proxies: %w", err)
		}
		trusted = append(trusted, p)
	}
	return trusted, nil
}
