package limits_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
	"github.com/mizuchi-uploadr/mizuchi/internal/limits"
	"github.com/mizuchi-uploadr/mizuchi/internal/state"
	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/redisserver"
)

// every is a set that counts everything and never refuses in a benchmark.
var every = limits.Set{RequestsPerSecond: 1e6, Burst: 1e6, ConcurrentUploads: 1e6, BytesPerDay: 1 << 60}

// BenchmarkAdmit is the limiter's cost per upload request: one admission
// (token, slot and bytes, per subject and per bucket) and its release.
func BenchmarkAdmit(b *testing.B) {
	srv := redisserver.Start(b, "")
	st, err := state.NewRedis(config.StateRedis{Address: srv.Addr, KeyPrefix: "bench:", TimeoutSeconds: 2}, state.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	for _, c := range []struct {
		name     string
		counters limits.Counters
	}{{"memory", limits.NewMemory()}, {"redis", limits.NewShared(st)}} {
		bk := limits.New(c.counters, nil).Bucket("b", every, every)
		run := func(b *testing.B, i int) {
			t, err := bk.Admit(context.Background(), limits.Ask{Subject: "s" + strconv.Itoa(i%1000), Upload: true, Bytes: 4096})
			if err != nil {
				b.Fatal(err)
			}
			t.Done(true)
		}
		b.Run(c.name+"/upload", func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				run(b, i)
			}
		})
		b.Run(c.name+"/rate-only", func(b *testing.B) {
			rb := limits.New(c.counters, nil).Bucket("r", limits.Set{RequestsPerSecond: 1e6, Burst: 1e6}, limits.Set{})
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				t, err := rb.Admit(context.Background(), limits.Ask{Subject: "s" + strconv.Itoa(i%1000)})
				if err != nil {
					b.Fatal(err)
				}
				t.Done(true)
			}
		})
		b.Run(c.name+"/upload-parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					run(b, i)
					i++
				}
			})
		})
	}
}
