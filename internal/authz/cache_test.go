package authz

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/mizuchi-uploadr/mizuchi/internal/telemetry"
)

// fakeEngine decides by a function and counts its calls.
type fakeEngine struct {
	calls  atomic.Int64
	decide func(in *Input) (bool, error)
}

func (f *fakeEngine) Authorize(_ context.Context, in *Input) (bool, error) {
	f.calls.Add(1)
	return f.decide(in)
}

func allowSubject(subject string) func(*Input) (bool, error) {
	return func(in *Input) (bool, error) { return in.Subject == subject, nil }
}

func sampleInput(subject, key string) *Input {
	return &Input{
		Subject:  subject,
		Action:   ActionUpload,
		Resource: Resource{Bucket: "uploads", Key: key},
		Context: Context{
			Method: "PUT", Path: "/uploads/" + key, IP: "127.0.0.1",
			ContentLength: 11, ContentType: "text/plain", AuthMethod: "jwt",
			Claims: map[string]any{"sub": subject, "roles": []any{"writer"}, "exp": float64(1893456000)},
		},
	}
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestCacheAnswersRepeatedChecksWithoutEngineCall(t *testing.T) {
	tests := []struct {
		name    string
		subject string
		want    bool
	}{
		{name: "allow is cached", subject: "alice", want: true},
		{name: "deny is cached", subject: "mallory", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eng := &fakeEngine{decide: allowSubject("alice")}
			c := NewCache(eng, CacheOptions{TTL: time.Minute, Engine: "opa", Bucket: "uploads"})
			for i := range 3 {
				got, err := c.Authorize(context.Background(), sampleInput(tt.subject, "a/b.txt"))
				if err != nil || got != tt.want {
					t.Fatalf("call %d: got (%v, %v), want (%v, nil)", i, got, err, tt.want)
				}
			}
			if n := eng.calls.Load(); n != 1 {
				t.Fatalf("engine called %d times, want 1", n)
			}
		})
	}
}

func TestCacheDecisionExpiresAfterTTL(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	eng := &fakeEngine{decide: allowSubject("alice")}
	c := NewCache(eng, CacheOptions{TTL: 10 * time.Second, Now: clock.Now})
	in := sampleInput("alice", "k")
	check := func(wantCalls int64) {
		t.Helper()
		if ok, err := c.Authorize(context.Background(), in); !ok || err != nil {
			t.Fatalf("got (%v, %v)", ok, err)
		}
		if n := eng.calls.Load(); n != wantCalls {
			t.Fatalf("engine calls = %d, want %d", n, wantCalls)
		}
	}
	check(1)
	clock.Add(9 * time.Second)
	check(1)
	clock.Add(time.Second) // exactly TTL after the decision: expired
	check(2)
	clock.Add(5 * time.Second)
	check(2)
}

func TestCacheEvictsLeastRecentlyUsedBeyondMaxEntries(t *testing.T) {
	eng := &fakeEngine{decide: allowSubject("alice")}
	c := NewCache(eng, CacheOptions{TTL: time.Hour, MaxEntries: 2})
	a, b, d := sampleInput("alice", "a"), sampleInput("alice", "b"), sampleInput("alice", "d")
	ctx := context.Background()
	for _, in := range []*Input{a, b, a, d} { // a is used after b, so b is evicted by d
		if _, err := c.Authorize(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	if n := eng.calls.Load(); n != 3 {
		t.Fatalf("engine calls = %d, want 3", n)
	}
	if c.Len() != 2 {
		t.Fatalf("Len = %d, want 2", c.Len())
	}
	_, _ = c.Authorize(ctx, a)
	if n := eng.calls.Load(); n != 3 {
		t.Fatalf("a was evicted: engine calls = %d, want 3", n)
	}
	_, _ = c.Authorize(ctx, b)
	if n := eng.calls.Load(); n != 4 {
		t.Fatalf("b was not evicted: engine calls = %d, want 4", n)
	}
}

func TestCacheNeverStoresErrors(t *testing.T) {
	fail := true
	eng := &fakeEngine{decide: func(*Input) (bool, error) {
		if fail {
			return true, errors.New("engine down")
		}
		return true, nil
	}}
	c := NewCache(eng, CacheOptions{TTL: time.Hour})
	in := sampleInput("alice", "k")
	for i := range 2 {
		ok, err := c.Authorize(context.Background(), in)
		if err == nil || ok {
			t.Fatalf("call %d: got (%v, %v), want an error and no allow", i, ok, err)
		}
	}
	fail = false
	if ok, err := c.Authorize(context.Background(), in); !ok || err != nil {
		t.Fatalf("after recovery: got (%v, %v)", ok, err)
	}
	if n := eng.calls.Load(); n != 3 {
		t.Fatalf("engine calls = %d, want 3 (errors must not be cached)", n)
	}
}

// blockingEngine holds every call until release is closed.
type blockingEngine struct {
	calls   atomic.Int64
	release chan struct{}
}

func (b *blockingEngine) Authorize(ctx context.Context, in *Input) (bool, error) {
	b.calls.Add(1)
	<-b.release
	return in.Subject == "alice", nil
}

func TestCacheCollapsesConcurrentIdenticalChecks(t *testing.T) {
	const n = 16
	eng := &blockingEngine{release: make(chan struct{})}
	// TTL 0: nothing is stored, so only collapsing can keep the count at 1.
	c := NewCache(eng, CacheOptions{TTL: 0})
	var waiting sync.WaitGroup
	waiting.Add(n)
	c.joined = waiting.Done

	results := make(chan error, n)
	for range n {
		go func() {
			ok, err := c.Authorize(context.Background(), sampleInput("alice", "same"))
			if err == nil && !ok {
				err = errors.New("denied")
			}
			results <- err
		}()
	}
	waiting.Wait()
	close(eng.release)
	for range n {
		if err := <-results; err != nil {
			t.Fatal(err)
		}
	}
	if got := eng.calls.Load(); got != 1 {
		t.Fatalf("engine calls = %d, want 1", got)
	}
}

func TestCacheCallerGivingUpDoesNotFailOthers(t *testing.T) {
	eng := &blockingEngine{release: make(chan struct{})}
	c := NewCache(eng, CacheOptions{TTL: time.Minute})
	var waiting sync.WaitGroup
	waiting.Add(2)
	c.joined = waiting.Done

	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	second := make(chan error, 1)
	go func() { _, err := c.Authorize(ctx, sampleInput("alice", "k")); first <- err }()
	go func() {
		ok, err := c.Authorize(context.Background(), sampleInput("alice", "k"))
		if err == nil && !ok {
			err = errors.New("denied")
		}
		second <- err
	}()
	waiting.Wait()
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: err = %v, want context.Canceled", err)
	}
	close(eng.release)
	if err := <-second; err != nil {
		t.Fatalf("other caller: %v", err)
	}
}

func TestCacheDistinctInputsNeverShareDecision(t *testing.T) {
	base := func() *Input { return sampleInput("alice", "alice/a.txt") }
	tests := []struct {
		name   string
		modify func(*Input)
	}{
		{name: "subject", modify: func(in *Input) { in.Subject = "bob" }},
		{name: "action", modify: func(in *Input) { in.Action = ActionCreateMultipart }},
		{name: "bucket", modify: func(in *Input) { in.Resource.Bucket = "other" }},
		{name: "key", modify: func(in *Input) { in.Resource.Key = "alice/b.txt" }},
		{name: "field boundary moved", modify: func(in *Input) { in.Subject, in.Action = "aliceu", "pload" }},
		{name: "method", modify: func(in *Input) { in.Context.Method = "POST" }},
		{name: "path", modify: func(in *Input) { in.Context.Path = "/x" }},
		{name: "ip", modify: func(in *Input) { in.Context.IP = "10.0.0.1" }},
		{name: "content length", modify: func(in *Input) { in.Context.ContentLength = 12 }},
		{name: "content type", modify: func(in *Input) { in.Context.ContentType = "image/png" }},
		{name: "auth method", modify: func(in *Input) { in.Context.AuthMethod = "sigv4" }},
		{name: "claims nil", modify: func(in *Input) { in.Context.Claims = nil }},
		{name: "claims empty", modify: func(in *Input) { in.Context.Claims = map[string]any{} }},
		{name: "claim added", modify: func(in *Input) { in.Context.Claims["admin"] = true }},
		{name: "claim false vs absent", modify: func(in *Input) { in.Context.Claims["admin"] = false }},
		{name: "claim null", modify: func(in *Input) { in.Context.Claims["admin"] = nil }},
		{name: "claim value", modify: func(in *Input) { in.Context.Claims["exp"] = float64(1893456001) }},
		{name: "claim array element", modify: func(in *Input) { in.Context.Claims["roles"] = []any{"admin"} }},
		{name: "claim array order", modify: func(in *Input) { in.Context.Claims["roles"] = []any{"writer", "admin"} }},
		{name: "claim nested", modify: func(in *Input) { in.Context.Claims["ext"] = map[string]any{"tier": "gold"} }},
		{name: "claim key vs value", modify: func(in *Input) {
			in.Context.Claims = map[string]any{"subalice": "", "roles": []any{"writer"}, "exp": float64(1893456000)}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := base(), base()
			tt.modify(b)
			// The engine allows exactly the base input.
			eng := &fakeEngine{decide: func(in *Input) (bool, error) {
				var ka, kb KeyBuilder
				x, _ := ka.Key(in)
				y, _ := kb.Key(base())
				return string(x) == string(y), nil
			}}
			c := NewCache(eng, CacheOptions{TTL: time.Hour})
			if ok, err := c.Authorize(context.Background(), a); !ok || err != nil {
				t.Fatalf("base: got (%v, %v)", ok, err)
			}
			if ok, err := c.Authorize(context.Background(), b); ok || err != nil {
				t.Fatalf("modified input got (%v, %v): it shared the base decision", ok, err)
			}
			if n := eng.calls.Load(); n != 2 {
				t.Fatalf("engine calls = %d, want 2", n)
			}
		})
	}
}

func TestKeyIsCanonicalForEqualInputs(t *testing.T) {
	a := sampleInput("alice", "k")
	b := sampleInput("alice", "k")
	// Same claims, built in another order, with a nested map.
	a.Context.Claims = map[string]any{"a": 1.0, "b": "x", "n": map[string]any{"p": true, "q": nil}}
	b.Context.Claims = map[string]any{}
	b.Context.Claims["n"] = map[string]any{"q": nil, "p": true}
	b.Context.Claims["b"] = "x"
	b.Context.Claims["a"] = 1.0
	var ka, kb KeyBuilder
	x, okx := ka.Key(a)
	y, oky := kb.Key(b)
	if !okx || !oky || string(x) != string(y) {
		t.Fatalf("equal inputs got different keys (%v %v)", okx, oky)
	}
}

func TestUnkeyableInputIsNeverCached(t *testing.T) {
	tests := []struct {
		name   string
		claims map[string]any
	}{
		{name: "unknown claim type", claims: map[string]any{"x": struct{}{}}},
		{name: "oversized claims", claims: map[string]any{"big": string(make([]byte, MaxKeyBytes))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eng := &fakeEngine{decide: allowSubject("alice")}
			c := NewCache(eng, CacheOptions{TTL: time.Hour})
			in := sampleInput("alice", "k")
			in.Context.Claims = tt.claims
			for range 2 {
				if ok, err := c.Authorize(context.Background(), in); !ok || err != nil {
					t.Fatalf("got (%v, %v)", ok, err)
				}
			}
			if n := eng.calls.Load(); n != 2 {
				t.Fatalf("engine calls = %d, want 2", n)
			}
		})
	}
}

func TestCacheCountsDecisionsAndRecordsSpan(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := telemetry.NewMetrics(reg, telemetry.BuildInfo{})
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	fail := false
	eng := &fakeEngine{decide: func(in *Input) (bool, error) {
		if fail {
			return false, errors.New("down")
		}
		return in.Subject == "alice", nil
	}}
	c := NewCache(eng, CacheOptions{TTL: time.Hour, Engine: "openfga", Bucket: "uploads", Metrics: m, TracerProvider: tp})
	ctx := context.Background()
	_, _ = c.Authorize(ctx, sampleInput("alice", "k"))
	_, _ = c.Authorize(ctx, sampleInput("alice", "k"))
	_, _ = c.Authorize(ctx, sampleInput("bob", "k"))
	fail = true
	_, _ = c.Authorize(ctx, sampleInput("carol", "k"))

	for _, tc := range []struct {
		decision, cached string
		want             float64
	}{
		{"allow", "false", 1}, {"allow", "true", 1}, {"deny", "false", 1}, {"deny", "true", 0},
		{"error", "false", 1}, {"error", "true", 0},
	} {
		got := counterValue(t, m.AuthzDecisions.WithLabelValues("uploads", "openfga", tc.decision, tc.cached))
		if got != tc.want {
			t.Errorf("decision=%s cached=%s: %v, want %v", tc.decision, tc.cached, got, tc.want)
		}
	}

	spans := rec.Ended()
	if len(spans) != 4 {
		t.Fatalf("%d spans, want 4", len(spans))
	}
	want := []struct {
		decision string
		hit      bool
	}{{"allow", false}, {"allow", true}, {"deny", false}, {"error", false}}
	for i, s := range spans {
		if s.Name() != "authz.openfga" {
			t.Errorf("span %d name %q", i, s.Name())
		}
		attrs := map[string]any{}
		for _, kv := range s.Attributes() {
			attrs[string(kv.Key)] = kv.Value.AsInterface()
			if kv.Value.AsString() == "alice" || kv.Value.AsString() == "bob" {
				t.Errorf("span %d carries a raw subject in %s", i, kv.Key)
			}
		}
		if attrs["authz.decision"] != want[i].decision || attrs["authz.cache_hit"] != want[i].hit {
			t.Errorf("span %d attributes %v, want decision=%s cache_hit=%v", i, attrs, want[i].decision, want[i].hit)
		}
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func TestCacheRejectsNilInput(t *testing.T) {
	c := NewCache(&fakeEngine{decide: allowSubject("alice")}, CacheOptions{TTL: time.Hour})
	if ok, err := c.Authorize(context.Background(), nil); ok || err == nil {
		t.Fatalf("got (%v, %v)", ok, err)
	}
}

func BenchmarkCacheHit(b *testing.B) {
	for _, bc := range []struct {
		name string
		tp   trace.TracerProvider
	}{
		{name: "no tracer", tp: nil},
		{name: "noop tracer", tp: noop.NewTracerProvider()},
		{name: "sdk tracer", tp: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tracetest.NewSpanRecorder()))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			reg := prometheus.NewRegistry()
			m := telemetry.NewMetrics(reg, telemetry.BuildInfo{})
			c := NewCache(&fakeEngine{decide: allowSubject("alice")}, CacheOptions{
				TTL: time.Hour, Engine: "opa", Bucket: "uploads", Metrics: m, TracerProvider: bc.tp,
			})
			in := sampleInput("alice", "alice/photos/2024/a.jpg")
			in.Context.Claims["iss"] = "https://issuer.example"
			in.Context.Claims["aud"] = "mizuchi"
			ctx := context.Background()
			if _, err := c.Authorize(ctx, in); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if ok, err := c.Authorize(ctx, in); !ok || err != nil {
					b.Fatal("miss")
				}
			}
		})
	}
}
