package sigv4

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

// clock is a settable time for the store.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTestStore(maxEntries int, c *clock) *MemoryReplayStore {
	return NewMemoryReplayStore(MemoryReplayOptions{MaxEntries: maxEntries, Slot: time.Minute, Now: c.now})
}

func mustClaim(t *testing.T, s ReplayStore, owner, key string, ttl time.Duration) {
	t.Helper()
	fresh, err := s.Claim(context.Background(), owner, key, ttl)
	if err != nil || !fresh {
		t.Fatalf("Claim(%s, %s) = %v, %v; want fresh", owner, key, fresh, err)
	}
}

func TestMemoryReplayStoreRefusesReplaysUntilExpiry(t *testing.T) {
	c := &clock{fixedNow}
	s := newTestStore(10, c)
	mustClaim(t, s, "alice", "sig-1", 15*time.Minute)
	if fresh, err := s.Claim(context.Background(), "alice", "sig-1", 15*time.Minute); fresh || err != nil {
		t.Fatalf("replay: %v, %v", fresh, err)
	}
	// Still refused at the last instant the clock check accepts it...
	c.t = fixedNow.Add(15 * time.Minute)
	if fresh, _ := s.Claim(context.Background(), "alice", "sig-1", 0); fresh {
		t.Fatal("replay accepted at the end of its window")
	}
	// ...and forgotten at most one slot after it.
	c.t = fixedNow.Add(15*time.Minute + time.Minute + time.Nanosecond)
	mustClaim(t, s, "bob", "other", time.Minute)
	if s.Len() != 1 {
		t.Fatalf("%d entries after expiry, want 1", s.Len())
	}
}

// TestMemoryReplayStoreSharesFairly: an owner that fills the store is
// refused once others need room; the others are never refused; no
// dropped key can be claimed again while it is within its window.
func TestMemoryReplayStoreSharesFairly(t *testing.T) {
	c := &clock{fixedNow}
	s := newTestStore(100, c)
	for i := range 100 {
		c.t = fixedNow.Add(time.Duration(i) * time.Second)
		mustClaim(t, s, "carol", fmt.Sprint("carol-", i), 15*time.Minute)
	}
	_, err := s.Claim(context.Background(), "carol", "carol-more", 15*time.Minute)
	var share *ShareError
	if !errors.As(err, &share) || !errors.Is(err, ErrReplayShare) || share.RetryAfter <= 0 {
		t.Fatalf("carol over a full store: %v, want a ShareError", err)
	}
	// Three others write 30 each: every claim is fresh.
	for i := range 30 {
		for _, who := range []string{"alice", "bob", "dave"} {
			mustClaim(t, s, who, fmt.Sprint(who, "-", i), 15*time.Minute)
		}
	}
	if s.Len() > 100 {
		t.Fatalf("%d entries in a store of 100", s.Len())
	}
	// carol is refused (whether her key is new or one that was dropped)
	// until the dropped entries are past their window.
	for _, key := range []string{"carol-0", "carol-50", "carol-new"} {
		if fresh, err := s.Claim(context.Background(), "carol", key, 15*time.Minute); fresh || !errors.Is(err, ErrReplayShare) {
			t.Fatalf("carol claiming %s: %v, %v; want ErrReplayShare", key, fresh, err)
		}
	}
	// The others' replays are still replays.
	if fresh, err := s.Claim(context.Background(), "alice", "alice-3", 15*time.Minute); fresh || err != nil {
		t.Fatalf("alice's replay: %v, %v", fresh, err)
	}
	// Once carol's window has passed she writes again.
	c.t = fixedNow.Add(time.Hour)
	mustClaim(t, s, "carol", "carol-0", 15*time.Minute)
}

func TestMemoryReplayStoreOwnersAreForgotten(t *testing.T) {
	c := &clock{fixedNow}
	s := newTestStore(1000, c)
	for i := range 500 {
		mustClaim(t, s, fmt.Sprint("key-", i), "sig", time.Minute)
	}
	c.t = fixedNow.Add(time.Hour)
	mustClaim(t, s, "key-0", "sig", time.Minute)
	s.mu.Lock()
	n := len(s.owners)
	s.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d owners remembered, want 1", n)
	}
}

// TestDefaultReplayStoreSustains2000WritesPerSecond simulates, on a fake
// clock, three skew windows of 2000 signed writes per second from 200 keys
// into the default store of a bucket (replay_max_entries 0), first alone,
// then with one more key writing another 2000 per second: the 200 keys
// are never refused, the greedy key is, and the store stays within its
// bound.
func TestDefaultReplayStoreSustains2000WritesPerSecond(t *testing.T) {
	const (
		skew  = 20 * time.Second
		rate  = 2000
		keys  = 200
		total = 3 * 20 * rate
	)
	c := &clock{fixedNow}
	cfg := testConfig()
	cfg.ReplayProtection = true
	cfg.MaxClockSkewSeconds = int(skew / time.Second)
	a, err := New(cfg, Options{Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	s := a.replay.(*MemoryReplayStore)
	for _, greedy := range []bool{false, true} {
		refusedGreedy := 0
		for i := range total {
			c.t = c.t.Add(time.Second / rate)
			owner := fmt.Sprint("k", i%keys)
			if fresh, err := s.Claim(context.Background(), owner, fmt.Sprint(greedy, i), skew); !fresh || err != nil {
				t.Fatalf("greedy %v: claim %d of %s refused: %v, %v (store %d of %d)", greedy, i, owner, fresh, err, s.Len(), s.max)
			}
			if greedy {
				if _, err := s.Claim(context.Background(), "greedy", fmt.Sprint("g", i), skew); err != nil {
					refusedGreedy++
				}
			}
			if s.Len() > s.max {
				t.Fatalf("%d entries in a store of %d", s.Len(), s.max)
			}
		}
		if greedy && refusedGreedy == 0 {
			t.Fatal("the greedy key was never refused")
		}
		t.Logf("greedy %v: store %d of %d entries, greedy refused %d times", greedy, s.Len(), s.max, refusedGreedy)
	}
}

// failingStore answers every claim with err.
type failingStore struct{ err error }

func (f failingStore) Claim(context.Context, string, string, time.Duration) (bool, error) {
	return false, f.err
}

func TestClaimAnswers(t *testing.T) {
	cases := []struct {
		name       string
		store      ReplayStore
		code       string
		retryAfter string
	}{
		{"over share, with a hint", failingStore{&ShareError{RetryAfter: 90*time.Second + time.Millisecond}}, "SlowDown", "91"},
		{"over share, plain", failingStore{fmt.Errorf("redis: %w", ErrReplayShare)}, "SlowDown", "1"},
		{"store down", failingStore{errors.New("dial tcp: connection refused")}, "SlowDown", "1"},
		{"replay", failingStore{nil}, "AccessDenied", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.ReplayProtection = true
			a, err := New(cfg, Options{Now: func() time.Time { return fixedNow }, ReplayStore: c.store})
			if err != nil {
				t.Fatal(err)
			}
			_, err = authenticateWrite(a, signed(t, defaultSpec(), nil))
			e := s3err.As(err)
			if e.Code != c.code || e.Header.Get("Retry-After") != c.retryAfter {
				t.Fatalf("%v: %s, Retry-After %q; want %s, %q", err, e.Code, e.Header.Get("Retry-After"), c.code, c.retryAfter)
			}
			if c.code == "SlowDown" && e.Status != http.StatusServiceUnavailable {
				t.Fatalf("status %d", e.Status)
			}
		})
	}
}

// TestClaimIsDeferredToWrites: Authenticate itself spends nothing; only
// the principal's Claim does, and presigned URLs have none.
func TestClaimIsDeferredToWrites(t *testing.T) {
	cfg := testConfig()
	cfg.ReplayProtection = true
	cfg.ReplayMaxEntries = 1
	a, err := New(cfg, Options{Now: func() time.Time { return fixedNow }})
	if err != nil {
		t.Fatal(err)
	}
	r := signed(t, defaultSpec(), nil)
	for range 3 {
		p, err := a.Authenticate(context.Background(), r.Clone(context.Background()))
		if err != nil || p.Claim == nil {
			t.Fatalf("authenticate: %v, claim %v", err, p != nil && p.Claim != nil)
		}
	}
	if n := a.replay.(*MemoryReplayStore).Len(); n != 0 {
		t.Fatalf("%d entries after authentication alone", n)
	}
	presigned := signed(t, signSpec{ak: testAK, sk: testSK, region: testRegion, service: "s3", at: fixedNow, expires: "300", presign: true}, nil)
	if p, err := a.Authenticate(context.Background(), presigned); err != nil || p.Claim != nil {
		t.Fatalf("presigned: %v, claim set %v", err, p != nil && p.Claim != nil)
	}
	cfg.ReplayMaxEntries = -1
	if _, err := New(cfg, Options{}); err == nil {
		t.Fatal("negative replay_max_entries accepted")
	}
}

// BenchmarkMemoryReplayStore measures a claim and the memory an entry
// costs (bytes/entry) in a store holding 1,000,000 entries of 1,000 keys.
func BenchmarkMemoryReplayStore(b *testing.B) {
	const entries = 1_000_000
	c := &clock{fixedNow}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := NewMemoryReplayStore(MemoryReplayOptions{MaxEntries: 2 * entries, Slot: 900 * time.Second / replaySlots, Now: c.now})
	for i := range entries {
		c.t = fixedNow.Add(time.Duration(i) * time.Millisecond)
		if _, err := s.Claim(context.Background(), "key-"+strconv.Itoa(i%1000), fmt.Sprintf("%064x", i), 900*time.Second); err != nil {
			b.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perEntry := float64(after.HeapAlloc-before.HeapAlloc) / entries
	for i := 0; b.Loop(); i++ {
		if _, err := s.Claim(context.Background(), "key-"+strconv.Itoa(i%1000), "x"+strconv.Itoa(i), time.Second); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(perEntry, "bytes/entry")
}
