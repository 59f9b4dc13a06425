package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"slices"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
)

// Reload reads the configuration file again. When it is valid and every
// bucket of it can be built, new requests are served with it at once;
// requests in flight finish with the configuration they started with.
// When it is not, nothing changes: every problem is logged and the
// failure is counted. Settings that only apply when the process starts
// (listen addresses, tracing, logging…) are reported and keep their
// running values. Reloads never run concurrently.
func (a *App) Reload(ctx context.Context) error {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	err := a.reload(ctx)
	a.reloads.Observe(err == nil)
	if err != nil {
		var ce *config.Errors
		if errors.As(err, &ce) {
			for _, p := range ce.Problems {
				a.log.Error("configuration reload refused: the running configuration stays",
					slog.String("config", p.Source), slog.String("key", p.Path), slog.Int("line", p.Line), slog.String("problem", p.Message))
			}
		} else {
			a.log.Error("configuration reload failed: the running configuration stays", slog.Any("error", err))
		}
	}
	return err
}

func (a *App) reload(ctx context.Context) error {
	if a.cfg.Source == config.SourceBuiltin {
		return errors.New("no configuration file to reload: the process started with the built-in default")
	}
	cfg, err := config.Load(a.cfg.Source, a.lookupEnv)
	if err != nil {
		return err
	}
	for _, key := range restartOnlyChanges(a.cfg, cfg) {
		a.log.Warn("configuration change ignored until restart", slog.String("config", cfg.Source), slog.String("key", key))
	}
	if running, need := memoryBudget(a.cfg), memoryBudget(cfg); need > running {
		a.log.Warn("configuration change ignored until restart: the process-wide part buffer stays at its starting size",
			slog.String("config", cfg.Source), slog.String("key", "buckets[].upload.max_memory_buffer"),
			slog.String("running", config.Size(running).String()), slog.String("configured", config.Size(need).String()))
	}
	g, err := a.newGeneration(ctx, cfg)
	if err != nil {
		return err
	}
	if g.tls == nil && a.cfg.Server.TLS.Enabled() {
		// Turning HTTPS off needs a restart: until then the listener
		// keeps presenting the running certificate.
		g.tls = a.gen.Load().tls
	}
	// The new sinks start before the first request that can record for
	// them; requests of the replaced generation keep its table.
	a.events.Commit(g.events)
	old := a.gen.Swap(g)
	old.retire()
	select {
	case a.reloaded <- struct{}{}:
	default:
	}
	for _, p := range cfg.Warnings() {
		a.log.Warn(p.Message, slog.String("config", p.Source), slog.String("key", p.Path), slog.Int("line", p.Line))
	}
	added, removed := bucketChanges(old.cfg, cfg)
	a.log.Info("configuration reloaded", slog.String("config", cfg.Source), slog.Int("buckets", len(cfg.Buckets)),
		slog.Any("buckets_added", added), slog.Any("buckets_removed", removed))
	return nil
}

// restartOnly lists the settings a running process cannot change: they
// belong to the listeners and the process-wide telemetry, not to a
// generation. A change is reported and applies after a restart.
var restartOnly = []struct {
	key string
	get func(*config.Config) any
}{
	{"server.address", func(c *config.Config) any { return c.Server.Address }},
	{"server.tls (enabling or disabling HTTPS)", func(c *config.Config) any { return c.Server.TLS.Enabled() }},
	{"server.read_header_timeout_seconds", func(c *config.Config) any { return c.Server.ReadHeaderTimeoutSeconds }},
	{"server.idle_timeout_seconds", func(c *config.Config) any { return c.Server.IdleTimeoutSeconds }},
	{"server.max_header_bytes", func(c *config.Config) any { return c.Server.MaxHeaderBytes }},
	{"server.shutdown_grace_seconds", func(c *config.Config) any { return c.Server.ShutdownGraceSeconds }},
	{"metrics", func(c *config.Config) any { return []any{c.Metrics.On(), c.Metrics.Address} }},
	{"tracing", func(c *config.Config) any { return c.Tracing }},
	{"logging", func(c *config.Config) any { return c.Logging }},
	{"state", func(c *config.Config) any { return c.State }},
	// The events outbox is the process's (one process holds it); the
	// buckets' sinks are reloadable.
	{"events.outbox_dir", func(c *config.Config) any { return c.Events.OutboxDir }},
	{"events.max_pending", func(c *config.Config) any { return c.Events.MaxPending }},
	{"events.on_full", func(c *config.Config) any { return c.Events.OnFull }},
	{"events.hash_subjects", func(c *config.Config) any { return c.Events.HashSubjects }},
	{"events.max_retry_interval_seconds", func(c *config.Config) any { return c.Events.MaxRetryIntervalSeconds }},
}

// restartOnlyChanges names the restart-only settings that differ between
// the configuration the process started with and next.
func restartOnlyChanges(running, next *config.Config) []string {
	var keys []string
	for _, s := range restartOnly {
		if !reflect.DeepEqual(s.get(running), s.get(next)) {
			keys = append(keys, s.key)
		}
	}
	return keys
}

// memoryBudget is the process-wide part buffer a configuration asks for:
// the largest max_memory_buffer of its buckets.
func memoryBudget(cfg *config.Config) int64 {
	var m config.Size
	for _, b := range cfg.Buckets {
		m = max(m, b.Upload.MaxMemoryBuffer)
	}
	return int64(m)
}

// bucketChanges names the buckets next adds to and removes from prev.
func bucketChanges(prev, next *config.Config) (added, removed []string) {
	names := func(c *config.Config) []string {
		var n []string
		for _, b := range c.Buckets {
			n = append(n, b.Name)
		}
		return n
	}
	p, n := names(prev), names(next)
	for _, name := range n {
		if !slices.Contains(p, name) {
			added = append(added, name)
		}
	}
	for _, name := range p {
		if !slices.Contains(n, name) {
			removed = append(removed, name)
		}
	}
	return added, removed
}

// ReloadOn reloads the configuration on every value of signals (SIGHUP,
// wired by the command) until ctx is done.
func (a *App) ReloadOn(ctx context.Context, signals <-chan os.Signal) {
	for {
		select {
		case <-ctx.Done():
			return
		case sig := <-signals:
			a.log.Info("reloading the configuration", slog.String("signal", fmt.Sprint(sig)))
			_ = a.Reload(ctx)
		}
	}
}
