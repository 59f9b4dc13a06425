package state

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
	"github.com/mizuchi-uploadr/mizuchi/internal/telemetry"
)

// ErrUnavailable wraps every error of a store that could not answer.
var ErrUnavailable = errors.New("state store unavailable")

// ErrFull is returned (wrapping ErrUnavailable) by the memory store when
// it holds its maximum of unexpired entries: it refuses rather than
// forgets.
var ErrFull = fmt.Errorf("%w: full", ErrUnavailable)

// Store is state shared by every replica.
type Store interface {
	// Claim records key for owner until ttl has passed, in one step:
	// fresh is true for the first claim, false while it is recorded.
	// The SigV4 replay set (owner = access key, key = signature).
	Claim(ctx context.Context, owner, key string, ttl time.Duration) (fresh bool, err error)
	// Add adds delta to the counter key and returns the new value; a
	// counter that does not exist starts at 0 and expires ttl after it
	// was created (fixed windows for limits). delta may be negative.
	Add(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error)
	// Check reports whether the store answers (readiness).
	Check(ctx context.Context) error
	// Name is the backend: memory or redis.
	Name() string
	Close() error
}

// Options are the dependencies of a store.
type Options struct {
	// Metrics counts calls that got no answer (mizuchi_state_errors_total).
	Metrics *telemetry.Metrics
	// Tracer makes a client span per store call; nil: none.
	Tracer trace.Tracer
	// MaxEntries bounds the memory store (default 1000000).
	MaxEntries int
}

// New builds the store of cfg.
func New(cfg config.State, o Options) (Store, error) {
	switch cfg.Backend {
	case "", "memory":
		return NewMemory(o), nil
	case "redis":
		return NewRedis(cfg.Redis, o)
	}
	return nil, fmt.Errorf("state: unknown backend %q", cfg.Backend)
}

func countError(o Options, op string) {
	if o.Metrics != nil {
		o.Metrics.StateErrors.WithLabelValues(op).Inc()
	}
}
