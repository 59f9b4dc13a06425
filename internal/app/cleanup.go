package app

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/mizuchi-uploadr/mizuchi/internal/backend"
	"github.com/mizuchi-uploadr/mizuchi/internal/config"
)

// cleanupTask is one bucket's periodic cleanup of incomplete multipart
// uploads (bucket key cleanup).
type cleanupTask struct {
	bucket   string
	cleaner  backend.Cleaner
	age      time.Duration
	interval time.Duration
}

// addCleanup registers the cleanup of bucket c on its backend, if the
// bucket's cleanup is on.
func (g *generation) addCleanup(c *config.Bucket, cl backend.Cleaner) {
	if !c.Cleanup.On() {
		return
	}
	g.cleanups = append(g.cleanups, &cleanupTask{
		bucket:   c.Name,
		cleaner:  cl,
		age:      time.Duration(c.Cleanup.AbortIncompleteAfterSeconds) * time.Second,
		interval: time.Duration(c.Cleanup.IntervalSeconds) * time.Second,
	})
}

// runCleanups runs the cleanups of the current generation: each bucket's
// at once and then every interval. A reload stops them (a run in progress
// is cancelled) and starts those of the new generation, which is held
// meanwhile so its backends stay open. It returns when ctx ends.
func (a *App) runCleanups(ctx context.Context) {
	for {
		g := a.acquire()
		gctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for _, t := range g.cleanups {
			wg.Add(1)
			go func() {
				defer wg.Done()
				a.cleanupLoop(gctx, t)
			}()
		}
		select {
		case <-ctx.Done():
		case <-a.reloaded:
		}
		stop()
		wg.Wait()
		g.release()
		if ctx.Err() != nil {
			return
		}
	}
}

func (a *App) cleanupLoop(ctx context.Context, t *cleanupTask) {
	tick := time.NewTicker(t.interval)
	defer tick.Stop()
	for {
		a.cleanupOnce(ctx, t)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// cleanupOnce is one run: a root span (the store calls below it), the
// metrics and one log line.
func (a *App) cleanupOnce(ctx context.Context, t *cleanupTask) {
	ctx, span := a.tracing.Provider().Tracer("github.com/mizuchi-uploadr/mizuchi/internal/app").Start(ctx, "MultipartCleanup",
		trace.WithNewRoot(), trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(
			attribute.String("mizuchi.bucket", t.bucket),
			attribute.Int64("mizuchi.cleanup.age_seconds", int64(t.age/time.Second)),
		))
	defer span.End()
	start := time.Now()
	res, err := t.cleaner.Cleanup(ctx, t.age)
	span.SetAttributes(
		attribute.Int("mizuchi.cleanup.aborted", res.Aborted),
		attribute.Int("mizuchi.cleanup.kept", res.Kept),
		attribute.Int("mizuchi.cleanup.removed", res.Removed))
	a.metrics.MultipartCleanupAborted.WithLabelValues(t.bucket).Add(float64(res.Aborted))
	attrs := []any{slog.String("bucket", t.bucket), slog.Int("aborted", res.Aborted), slog.Int("kept", res.Kept),
		slog.Int("removed", res.Removed), slog.Duration("age", t.age), slog.Duration("took", time.Since(start))}
	if err != nil && ctx.Err() == nil {
		a.metrics.MultipartCleanupRuns.WithLabelValues(t.bucket, "failed").Inc()
		span.RecordError(err)
		span.SetStatus(codes.Error, "cleanup failed")
		a.log.Warn("multipart cleanup failed", append(attrs, slog.Any("error", err))...)
		return
	}
	if err == nil {
		a.metrics.MultipartCleanupRuns.WithLabelValues(t.bucket, "ok").Inc()
	}
	a.log.Info("multipart cleanup", attrs...)
}
