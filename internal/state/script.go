package state

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"
)

// Scripter is a store that runs Lua scripts atomically in one round trip:
// the redis store. The counters of limits use it for what Add cannot do
// in one step (token buckets, leases, quotas checked together).
type Scripter interface {
	// RunScript runs s with keys (each prefixed with the store's
	// key_prefix and "limit:") and args. A missing value is (nil, nil);
	// no answer wraps ErrUnavailable and counts
	// mizuchi_state_errors_total{op}.
	RunScript(ctx context.Context, op string, s *redis.Script, keys []string, args ...any) (any, error)
}

// RunScript implements Scripter (EVALSHA, EVAL once after a server
// restart).
func (r *Redis) RunScript(ctx context.Context, op string, s *redis.Script, keys []string, args ...any) (any, error) {
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	full := make([]string, len(keys))
	for i, k := range keys {
		full[i] = r.prefix + "limit:" + k
	}
	v, err := s.Run(ctx, r.c, full, args...).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, r.fail(op, err)
	}
	return v, nil
}
