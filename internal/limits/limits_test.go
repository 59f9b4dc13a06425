package limits_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
	"github.com/mizuchi-uploadr/mizuchi/internal/limits"
	"github.com/mizuchi-uploadr/mizuchi/internal/state"
	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/redisserver"
)

// backends runs f against the memory counters and the redis ones.
func backends(t *testing.T, f func(t *testing.T, newLimiter func() *limits.Limiter)) {
	t.Run("memory", func(t *testing.T) {
		f(t, func() *limits.Limiter { return limits.New(limits.NewMemory(), nil) })
	})
	t.Run("redis", func(t *testing.T) {
		srv := redisserver.Start(t, "pw-0123456789")
		n := 0
		f(t, func() *limits.Limiter {
			n++
			st, err := state.NewRedis(config.StateRedis{URL: srv.URL(), KeyPrefix: "t:" + string(rune('a'+n)) + ":", TimeoutSeconds: 2}, state.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = st.Close() })
			return limits.New(limits.NewShared(st), nil)
		})
	})
}

func admit(t *testing.T, b *limits.Bucket, ask limits.Ask) *limits.Ticket {
	t.Helper()
	tk, err := b.Admit(context.Background(), ask)
	if err != nil {
		t.Fatalf("admit %+v: %v", ask, err)
	}
	return tk
}

func refused(t *testing.T, b *limits.Bucket, ask limits.Ask, limit, scope string) *limits.Refusal {
	t.Helper()
	_, err := b.Admit(context.Background(), ask)
	var r *limits.Refusal
	if !errors.As(err, &r) {
		t.Fatalf("admit %+v: got %v, want a refusal by %s", ask, err, limit)
	}
	if r.Limit != limit || r.Scope != scope {
		t.Fatalf("refused by %s %s, want %s %s", r.Scope, r.Limit, scope, limit)
	}
	return r
}

// slow is a rate that refills nothing during a test.
const slow = 0.0001

func TestRateBurstPerSubject(t *testing.T) {
	backends(t, func(t *testing.T, nl func() *limits.Limiter) {
		b := nl().Bucket("b", limits.Set{RequestsPerSecond: slow, Burst: 5}, limits.Set{})
		for range 5 {
			admit(t, b, limits.Ask{Subject: "alice"}).Done(true)
		}
		r := refused(t, b, limits.Ask{Subject: "alice"}, limits.LimitRate, limits.ScopeSubject)
		if r.RetryAfter < time.Second {
			t.Errorf("Retry-After %v, want at least 1s", r.RetryAfter)
		}
		admit(t, b, limits.Ask{Subject: "bob"}).Done(true)
		// Abort is exempt from the rate.
		admit(t, b, limits.Ask{Subject: "alice", Exempt: true}).Done(true)
	})
}

func TestConcurrencyReleasedOnDone(t *testing.T) {
	backends(t, func(t *testing.T, nl func() *limits.Limiter) {
		b := nl().Bucket("b", limits.Set{ConcurrentUploads: 2}, limits.Set{})
		up := limits.Ask{Subject: "alice", Upload: true, Bytes: 10}
		t1, t2 := admit(t, b, up), admit(t, b, up)
		refused(t, b, up, limits.LimitConcurrency, limits.ScopeSubject)
		admit(t, b, limits.Ask{Subject: "bob", Upload: true}).Done(true)
		// Requests without a body take no slot.
		admit(t, b, limits.Ask{Subject: "alice"}).Done(true)
		t1.Done(false)
		t1.Done(false) // twice is once
		t3 := admit(t, b, up)
		refused(t, b, up, limits.LimitConcurrency, limits.ScopeSubject)
		t2.Done(true)
		t3.Done(true)
	})
}

func TestRefusalTakesNothing(t *testing.T) {
	backends(t, func(t *testing.T, nl func() *limits.Limiter) {
		b := nl().Bucket("b", limits.Set{RequestsPerSecond: slow, Burst: 3, ConcurrentUploads: 1, BytesPerDay: 100}, limits.Set{})
		up := limits.Ask{Subject: "alice", Upload: true, Bytes: 40}
		t1 := admit(t, b, up) // token 1, slot, 40 bytes
		refused(t, b, up, limits.LimitConcurrency, limits.ScopeSubject)
		refused(t, b, up, limits.LimitConcurrency, limits.ScopeSubject)
		t1.Done(true)
		// The two refusals took no token and no bytes.
		admit(t, b, up).Done(true) // token 2, 80 bytes
		refused(t, b, up, limits.LimitDaily, limits.ScopeSubject)
		admit(t, b, limits.Ask{Subject: "alice", Upload: true, Bytes: 20}).Done(true) // token 3, 100 bytes
		refused(t, b, limits.Ask{Subject: "alice"}, limits.LimitRate, limits.ScopeSubject)
	})
}

func TestDailyQuotaRefund(t *testing.T) {
	backends(t, func(t *testing.T, nl func() *limits.Limiter) {
		b := nl().Bucket("b", limits.Set{BytesPerDay: 30 << 20}, limits.Set{})
		up := func(n int64) limits.Ask { return limits.Ask{Subject: "alice", Upload: true, Bytes: n} }
		admit(t, b, up(20<<20)).Done(true)
		refused(t, b, up(20<<20), limits.LimitDaily, limits.ScopeSubject)
		// A failed upload is refunded.
		admit(t, b, up(10<<20)).Done(false)
		admit(t, b, up(10<<20)).Done(true)
		refused(t, b, up(1), limits.LimitDaily, limits.ScopeSubject)
		admit(t, b, up(0)).Done(true)
		admit(t, b, limits.Ask{Subject: "bob", Upload: true, Bytes: 30 << 20}).Done(true)
		// Larger than the whole quota.
		refused(t, b, limits.Ask{Subject: "carol", Upload: true, Bytes: 30<<20 + 1}, limits.LimitDaily, limits.ScopeSubject)
	})
}

func TestPerBucket(t *testing.T) {
	backends(t, func(t *testing.T, nl func() *limits.Limiter) {
		l := nl()
		b := l.Bucket("b", limits.Set{ConcurrentUploads: 5}, limits.Set{ConcurrentUploads: 1})
		other := l.Bucket("other", limits.Set{}, limits.Set{ConcurrentUploads: 1})
		t1 := admit(t, b, limits.Ask{Subject: "alice", Upload: true})
		refused(t, b, limits.Ask{Subject: "bob", Upload: true}, limits.LimitConcurrency, limits.ScopeBucket)
		admit(t, other, limits.Ask{Subject: "bob", Upload: true}).Done(true)
		t1.Done(true)
		admit(t, b, limits.Ask{Subject: "bob", Upload: true}).Done(true)
	})
}

func TestOverrideReplacesSubjectLimits(t *testing.T) {
	backends(t, func(t *testing.T, nl func() *limits.Limiter) {
		b := nl().Bucket("b", limits.Set{ConcurrentUploads: 1}, limits.Set{})
		more := &limits.Set{ConcurrentUploads: 3}
		t1 := admit(t, b, limits.Ask{Subject: "alice", Upload: true})
		refused(t, b, limits.Ask{Subject: "alice", Upload: true}, limits.LimitConcurrency, limits.ScopeSubject)
		t2 := admit(t, b, limits.Ask{Subject: "alice", Upload: true, Override: more})
		t1.Done(true)
		t2.Done(true)
	})
}

func TestUnavailableFailsClosed(t *testing.T) {
	srv := redisserver.Start(t, "")
	st, err := state.NewRedis(config.StateRedis{Address: srv.Addr, TimeoutSeconds: 1}, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	reg := prometheus.NewRegistry()
	m := limits.NewMetrics(reg, nil)
	b := limits.New(limits.NewShared(st), m).Bucket("b", limits.Set{RequestsPerSecond: 5, Burst: 5}, limits.Set{})
	admit(t, b, limits.Ask{Subject: "alice"}).Done(true)
	srv.Stop()
	_, err = b.Admit(context.Background(), limits.Ask{Subject: "alice"})
	if !errors.Is(err, limits.ErrUnavailable) {
		t.Fatalf("got %v, want ErrUnavailable", err)
	}
	if got := testutil.ToFloat64(m.Refusals.WithLabelValues("b", limits.LimitUnavailable)); got != 1 {
		t.Errorf("refusals{limit=unavailable} = %v, want 1", got)
	}
}

func TestNoLimitsNoBucket(t *testing.T) {
	if b := limits.New(limits.NewMemory(), nil).Bucket("b", limits.Set{}, limits.Set{}); b != nil {
		t.Fatal("a bucket without limits must be nil")
	}
}

func TestMetricsLint(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := limits.NewMetrics(reg, nil)
	m.Refusals.WithLabelValues("b", limits.LimitRate).Inc()
	m.Shaped.WithLabelValues("b").Set(1)
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}
