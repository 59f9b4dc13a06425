package authz

import (
	"context"
	"testing"
	"time"
)

func TestParseDecision(t *testing.T) {
	for _, tt := range []struct {
		raw   string
		allow bool
		lim   bool
	}{
		{"true", true, false},
		{" true\n", true, false},
		{"false", false, false},
		{"", false, false},
		{"null", false, false},
		{`"true"`, false, false},
		{`{"allow": true}`, true, false},
		{`{"allow": true, "limits": {"requests_per_second": 0.5, "burst": 2}}`, true, true},
		{`{"allow": "true", "limits": {}}`, false, false},
		{`{"limits": {"burst": 2}}`, false, false},
		{`{"allow": true, "limits": {"burst": -2}}`, false, false},
		{`{"allow": true, "limits": {"burst": "two"}}`, false, false},
		{`{"allow": true, "limits": {"requests_per_second": -1}}`, false, false},
	} {
		allow, lim := ParseDecision([]byte(tt.raw))
		if allow != tt.allow || (lim != nil) != tt.lim {
			t.Errorf("%q: got %v %+v, want %v, limits %v", tt.raw, allow, lim, tt.allow, tt.lim)
		}
	}
}

type limitingEngine struct {
	calls int
	lim   *Limits
}

func (e *limitingEngine) Authorize(ctx context.Context, in *Input) (bool, error) {
	a, _, err := e.AuthorizeLimits(ctx, in)
	return a, err
}

func (e *limitingEngine) AuthorizeLimits(context.Context, *Input) (bool, *Limits, error) {
	e.calls++
	return true, e.lim, nil
}

func TestCacheKeepsLimits(t *testing.T) {
	n := int64(3)
	e := &limitingEngine{lim: &Limits{ConcurrentUploads: &n}}
	c := NewCache(e, CacheOptions{TTL: time.Minute, Engine: "opa"})
	in := &Input{Subject: "alice", Action: ActionUpload, Resource: Resource{Bucket: "b", Key: "k"}}
	for range 2 {
		allow, lim, err := c.AuthorizeLimits(context.Background(), in)
		if err != nil || !allow || lim == nil || *lim.ConcurrentUploads != 3 {
			t.Fatalf("got %v %+v %v", allow, lim, err)
		}
	}
	if e.calls != 1 {
		t.Fatalf("engine asked %d times, want once", e.calls)
	}
}
