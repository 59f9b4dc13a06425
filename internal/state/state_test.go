package state_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
	"github.com/mizuchi-uploadr/mizuchi/internal/state"
	"github.com/mizuchi-uploadr/mizuchi/internal/telemetry"
	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/redisserver"
)

// replayStore is the shape internal/auth/sigv4 asks of a replay store.
type replayStore interface {
	Claim(ctx context.Context, owner, key string, ttl time.Duration) (fresh bool, err error)
}

var _ replayStore = (state.Store)(nil)

func stores(t *testing.T) map[string]state.Store {
	t.Helper()
	srv := redisserver.Start(t, "pw-0123456789")
	r, err := state.New(config.State{Backend: "redis", Redis: config.StateRedis{
		URL: srv.URL(), KeyPrefix: "test:", TimeoutSeconds: 2,
	}}, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return map[string]state.Store{"memory": state.NewMemory(state.Options{}), "redis": r}
}

func TestConformance(t *testing.T) {
	ctx := context.Background()
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			if err := s.Check(ctx); err != nil {
				t.Fatal(err)
			}
			fresh, err := s.Claim(ctx, "AK1", "sig-a", time.Minute)
			if err != nil || !fresh {
				t.Fatalf("first claim: %v %v", fresh, err)
			}
			fresh, err = s.Claim(ctx, "AK1", "sig-a", time.Minute)
			if err != nil || fresh {
				t.Fatalf("second claim: %v %v", fresh, err)
			}
			// A claim expires with its ttl.
			if fresh, _ := s.Claim(ctx, "AK1", "sig-short", 50*time.Millisecond); !fresh {
				t.Fatal("short claim not fresh")
			}
			time.Sleep(120 * time.Millisecond)
			if fresh, _ := s.Claim(ctx, "AK1", "sig-short", time.Minute); !fresh {
				t.Fatal("a claim outlived its ttl")
			}
			// Counters: atomic under concurrency, with expiry from creation.
			var wg sync.WaitGroup
			var maxSeen atomic.Int64
			for range 50 {
				wg.Go(func() {
					v, err := s.Add(ctx, "bucket:alice", 2, time.Minute)
					if err != nil {
						t.Error(err)
					}
					for {
						m := maxSeen.Load()
						if v <= m || maxSeen.CompareAndSwap(m, v) {
							break
						}
					}
				})
			}
			wg.Wait()
			if v, _ := s.Add(ctx, "bucket:alice", -1, time.Minute); v != 99 || maxSeen.Load() != 100 {
				t.Fatalf("counter = %d, max seen %d", v, maxSeen.Load())
			}
			if v, _ := s.Add(ctx, "window", 1, 50*time.Millisecond); v != 1 {
				t.Fatalf("new counter = %d", v)
			}
			time.Sleep(120 * time.Millisecond)
			if v, _ := s.Add(ctx, "window", 1, time.Minute); v != 1 {
				t.Fatalf("a counter outlived its window: %d", v)
			}
		})
	}
}

// A store that is down answers ErrUnavailable quickly and counts it; once
// it is back, calls succeed again on the same client.
func TestRedisDownAndBack(t *testing.T) {
	srv := redisserver.Start(t, "")
	reg := prometheus.NewRegistry()
	m := telemetry.NewMetrics(reg, telemetry.BuildInfo{})
	s, err := state.NewRedis(config.StateRedis{Address: srv.Addr, KeyPrefix: "t:", TimeoutSeconds: 1}, state.Options{Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if fresh, err := s.Claim(ctx, "AK", "one", time.Minute); err != nil || !fresh {
		t.Fatalf("claim: %v %v", fresh, err)
	}
	srv.Stop()
	if _, err := s.Claim(ctx, "AK", "two", time.Minute); !errors.Is(err, state.ErrUnavailable) {
		t.Fatalf("claim with the server down: %v", err)
	}
	if _, err := s.Add(ctx, "c", 1, time.Minute); !errors.Is(err, state.ErrUnavailable) {
		t.Fatalf("add with the server down: %v", err)
	}
	if err := s.Check(ctx); !errors.Is(err, state.ErrUnavailable) {
		t.Fatalf("check with the server down: %v", err)
	}
	for op, want := range map[string]float64{"claim": 1, "add": 1, "check": 1} {
		if got := testutil.ToFloat64(m.StateErrors.WithLabelValues(op)); got != want {
			t.Errorf("mizuchi_state_errors_total{op=%q} = %v", op, got)
		}
	}
	srv.Restart()
	if fresh, err := s.Claim(ctx, "AK", "two", time.Minute); err != nil || !fresh {
		t.Fatalf("claim after the server came back: %v %v", fresh, err)
	}
	if v, err := s.Add(ctx, "c", 1, time.Minute); err != nil || v != 1 {
		t.Fatalf("add after the server came back: %v %v", v, err)
	}
}

func TestRedisWrongPassword(t *testing.T) {
	srv := redisserver.Start(t, "right-password")
	s, _ := state.NewRedis(config.StateRedis{Address: srv.Addr, Password: "wrong-password", TimeoutSeconds: 1}, state.Options{})
	defer s.Close()
	err := s.Check(context.Background())
	if !errors.Is(err, state.ErrUnavailable) {
		t.Fatalf("check with a wrong password: %v", err)
	}
	if e := err.Error(); strings.Contains(e, "wrong-password") || strings.Contains(e, "right-password") {
		t.Fatalf("error shows a password: %s", e)
	}
}

func TestMemoryRefusesWhenFull(t *testing.T) {
	s := state.NewMemory(state.Options{MaxEntries: 2})
	ctx := context.Background()
	_, _ = s.Claim(ctx, "a", "1", time.Minute)
	_, _ = s.Claim(ctx, "a", "2", time.Minute)
	if _, err := s.Claim(ctx, "a", "3", time.Minute); !errors.Is(err, state.ErrFull) {
		t.Fatalf("third claim: %v", err)
	}
	if fresh, err := s.Claim(ctx, "a", "1", time.Minute); err != nil || fresh {
		t.Fatalf("a known claim when full: %v %v", fresh, err)
	}
}
