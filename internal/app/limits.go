package app

import (
	"log/slog"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
	"github.com/mizuchi-uploadr/mizuchi/internal/limits"
	"github.com/mizuchi-uploadr/mizuchi/internal/state"
)

// bucketLimits returns the limits of bucket c (nil when it has none). The
// process's limiter is made with the first bucket that needs one: its
// counters live in the shared store with redis (one Lua script per
// admission), else in this process.
func (a *App) bucketLimits(c *config.Bucket) *limits.Bucket {
	// An OPA decision may set a subject's limits on any bucket with OPA.
	opa := c.Authz != nil && c.Authz.Enabled && c.Authz.OPA != nil
	if c.Limits.PerSubject.IsZero() && c.Limits.PerBucket.IsZero() && !opa {
		return nil
	}
	if a.limiter == nil {
		var counters limits.Counters = limits.NewMemory()
		if sc, ok := a.shared.(state.Scripter); ok {
			counters = limits.NewShared(sc)
		}
		a.limiter = limits.New(counters, limits.NewMetrics(a.registry, a.metrics.LimitRefusals))
		a.log.Info("limits", slog.String("counters", a.limiter.Backend()))
	}
	return a.limiter.NewBucket(c.Name, limitSet(c.Limits.PerSubject), limitSet(c.Limits.PerBucket))
}

func limitSet(s config.LimitSet) limits.Set {
	return limits.Set{
		RequestsPerSecond: s.RequestsPerSecond,
		Burst:             int64(s.Burst),
		ConcurrentUploads: int64(s.ConcurrentUploads),
		BytesPerSecond:    int64(s.BytesPerSecond),
		BytesPerDay:       int64(s.BytesPerDay),
	}
}
