package limits

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
	"github.com/mizuchi-uploadr/mizuchi/internal/state"
	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/redisserver"
)

func TestLeaseExpiresWithoutRenewal(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	m := NewMemory()
	m.now = func() time.Time { return now }
	b := New(m, nil).Bucket("b", Set{ConcurrentUploads: 1}, Set{})
	if _, err := b.Admit(context.Background(), Ask{Subject: "a", Upload: true}); err != nil {
		t.Fatal(err)
	}
	// The holder died: no Done, no renewal.
	if _, err := b.Admit(context.Background(), Ask{Subject: "a", Upload: true}); err == nil {
		t.Fatal("second upload admitted while the lease is live")
	}
	now = now.Add(LeaseTTL)
	tk, err := b.Admit(context.Background(), Ask{Subject: "a", Upload: true})
	if err != nil {
		t.Fatalf("after LeaseTTL: %v", err)
	}
	// Renewal keeps a live upload's slot.
	now = now.Add(LeaseTTL / 2)
	if err := m.renew(context.Background(), tk.a); err != nil {
		t.Fatal(err)
	}
	now = now.Add(LeaseTTL / 2)
	if _, err := b.Admit(context.Background(), Ask{Subject: "a", Upload: true}); err == nil {
		t.Fatal("renewed lease expired")
	}
	tk.Done(true)
}

func TestShaperTake(t *testing.T) {
	t0 := time.Unix(0, 0)
	s := &shaper{rate: 1000, burst: 100, tokens: 100, at: t0}
	if d := s.take(100, t0); d != 0 {
		t.Fatalf("burst: wait %v", d)
	}
	if d := s.take(500, t0); d != 500*time.Millisecond {
		t.Fatalf("wait %v, want 500ms", d)
	}
	// After the wait the debt is paid.
	if d := s.take(0, t0.Add(500*time.Millisecond)); d != 0 {
		t.Fatalf("wait %v after paying", d)
	}
}

func TestMemorySweepDropsFullBuckets(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	m := NewMemory()
	m.now = func() time.Time { return now }
	b := New(m, nil).Bucket("b", Set{RequestsPerSecond: 10, Burst: 10, BytesPerDay: 100}, Set{})
	for i := range 100 {
		tk, err := b.Admit(context.Background(), Ask{Subject: string(rune('a' + i%26)), Upload: true, Bytes: 1})
		if err != nil {
			t.Fatal(err)
		}
		tk.Done(true)
	}
	now = now.Add(27 * time.Hour)
	m.mu.Lock()
	m.sweep(now)
	n := m.size()
	m.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d entries left after a day", n)
	}
}

func TestSharedLeaseRenewal(t *testing.T) {
	srv := redisserver.Start(t, "")
	st, err := state.NewRedis(config.StateRedis{Address: srv.Addr, KeyPrefix: "t:", TimeoutSeconds: 2}, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	b := New(NewShared(st), nil).Bucket("b", Set{ConcurrentUploads: 1}, Set{})
	tk, err := b.Admit(context.Background(), Ask{Subject: "a", Upload: true})
	if err != nil {
		t.Fatal(err)
	}
	score := func() int64 {
		v, err := st.RunScript(context.Background(), "t", redis.NewScript(`return tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]))`),
			[]string{tk.a.scopes[0].leaseKey()}, tk.a.lease)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := v.(int64)
		return n
	}
	first := score()
	if first == 0 {
		t.Fatal("no lease in the store")
	}
	time.Sleep(5 * time.Millisecond)
	if err := NewShared(st).renew(context.Background(), tk.a); err != nil {
		t.Fatal(err)
	}
	if renewed := score(); renewed <= first {
		t.Fatalf("lease expiry %d after renewal, was %d", renewed, first)
	}
	tk.Done(true)
	if score() != 0 {
		t.Fatal("lease left after Done")
	}
}
