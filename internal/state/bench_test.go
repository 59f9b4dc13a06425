package state_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
	"github.com/mizuchi-uploadr/mizuchi/internal/state"
	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/redisserver"
)

// BenchmarkClaim: one replay claim (a signed write) on each backend, from
// 2×GOMAXPROCS goroutines, as a server does.
//
//	go test -run '^$' -bench Claim -benchtime 3s ./internal/state/
func BenchmarkClaim(b *testing.B) {
	srv := redisserver.Start(b, "")
	r, err := state.NewRedis(config.StateRedis{Address: srv.Addr, KeyPrefix: "bench:", TimeoutSeconds: 2}, state.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	var n atomic.Int64 // keys stay fresh across the benchmark's runs
	for name, s := range map[string]state.Store{"memory": state.NewMemory(state.Options{}), "redis": r} {
		b.Run(name, func(b *testing.B) {
			b.SetParallelism(2)
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					k := strconv.FormatInt(n.Add(1), 36) + "-0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
					if fresh, err := s.Claim(ctx, "AKIA", k, time.Minute); err != nil || !fresh {
						b.Fatal(fresh, err)
					}
				}
			})
		})
	}
}

// BenchmarkAdd: one counter increment (limits) on each backend.
func BenchmarkAdd(b *testing.B) {
	srv := redisserver.Start(b, "")
	r, _ := state.NewRedis(config.StateRedis{Address: srv.Addr, KeyPrefix: "bench:", TimeoutSeconds: 2}, state.Options{})
	defer r.Close()
	for name, s := range map[string]state.Store{"memory": state.NewMemory(state.Options{}), "redis": r} {
		b.Run(name, func(b *testing.B) {
			b.SetParallelism(2)
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					if _, err := s.Add(ctx, "bucket:subject", 1, time.Minute); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
