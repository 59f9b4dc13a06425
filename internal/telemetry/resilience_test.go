package telemetry

import (
	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/testproc"

	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
)

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) count(substr string) int { return strings.Count(s.String(), substr) }

func newLogger() (*slog.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	return slog.New(slog.NewJSONHandler(buf, nil)), buf
}

func newTestMetrics(t testing.TB) *Metrics {
	t.Helper()
	return NewMetrics(prometheus.NewRegistry(), BuildInfo{Version: "test", Commit: "abc"})
}

// fakeExporter fails while failing is set and can block until released.
type fakeExporter struct {
	mu      sync.Mutex
	calls   int
	failing bool
	block   chan struct{} // non-nil: ExportSpans waits for it to close
	entered chan struct{} // receives once per call, if non-nil
	spans   []sdktrace.ReadOnlySpan
}

func (f *fakeExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	f.mu.Lock()
	f.calls++
	block, failing := f.block, f.failing
	f.mu.Unlock()
	if f.entered != nil {
		select {
		case f.entered <- struct{}{}:
		default:
		}
	}
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.spans = append(f.spans, spans...)
	if failing {
		return errors.New("collector unavailable")
	}
	return nil
}

func (f *fakeExporter) Shutdown(context.Context) error { return nil }

func (f *fakeExporter) setFailing(v bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failing = v
}

func (f *fakeExporter) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func stubSpans(n int) []sdktrace.ReadOnlySpan {
	out := make([]sdktrace.ReadOnlySpan, n)
	for i := range out {
		out[i] = tracetest.SpanStub{
			Name: fmt.Sprintf("PUT /uploads-%d", i),
			SpanContext: trace.NewSpanContext(trace.SpanContextConfig{
				TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{byte(i + 1)}, TraceFlags: trace.FlagsSampled,
			}),
			Attributes: []attribute.KeyValue{
				AttrHTTPRoute.String("/uploads/{key}"),
				attribute.String("http.request.header.authorization", "Bearer must-not-be-logged"),
			},
		}.Snapshot()
	}
	return out
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestBreakerOpensAfterRepeatedFailuresAndLogsOncePerChange(t *testing.T) {
	ctx := t.Context()
	m := newTestMetrics(t)
	log, buf := newLogger()
	clock := &fakeClock{now: time.Unix(1e9, 0)}
	fake := &fakeExporter{failing: true}
	e := newResilientExporter(fake, resilientOptions{
		Resilience: Resilience{MaxAttempts: 2, InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond,
			BreakerThreshold: 3, BreakerCooldown: time.Minute},
		Metrics: m, Logger: log, now: clock.Now,
	})
	for range 10 {
		_ = e.ExportSpans(ctx, stubSpans(2))
	}
	if got := fake.callCount(); got != 6 {
		t.Errorf("collector called %d times, want 6 (3 batches × 2 attempts, then the breaker refuses)", got)
	}
	if e.State() != StateBreakerOpen {
		t.Errorf("state = %s", e.State())
	}
	if got := testutil.ToFloat64(m.TracingExportFailures); got != 20 {
		t.Errorf("export failures = %v, want 20 spans", got)
	}
	if got := testutil.ToFloat64(m.TracingExporterState.WithLabelValues(StateBreakerOpen)); got != 1 {
		t.Errorf("breaker_open gauge = %v", got)
	}
	if got := testutil.ToFloat64(m.TracingExporterState.WithLabelValues(StateOK)); got != 0 {
		t.Errorf("ok gauge = %v", got)
	}
	if n := buf.count("tracing exporter failing"); n != 1 {
		t.Errorf("failing logged %d times", n)
	}
	if n := buf.count("circuit breaker open"); n != 1 {
		t.Errorf("breaker open logged %d times:\n%s", n, buf)
	}

	// After the cooldown one probe; still failing: one call, still open, no new log.
	clock.Advance(2 * time.Minute)
	_ = e.ExportSpans(ctx, stubSpans(1))
	if got := fake.callCount(); got != 7 || e.State() != StateBreakerOpen {
		t.Errorf("probe: calls %d state %s", got, e.State())
	}
	_ = e.ExportSpans(ctx, stubSpans(1))
	if got := fake.callCount(); got != 7 {
		t.Errorf("breaker did not reopen: %d calls", got)
	}
	if n := buf.count("circuit breaker open"); n != 1 {
		t.Errorf("breaker open logged %d times after a failed probe", n)
	}

	// The collector comes back: the next probe closes the breaker.
	fake.setFailing(false)
	clock.Advance(2 * time.Minute)
	if err := e.ExportSpans(ctx, stubSpans(1)); err != nil {
		t.Fatalf("export after recovery: %v", err)
	}
	if e.State() != StateOK || buf.count("tracing exporter recovered") != 1 {
		t.Errorf("state %s, log:\n%s", e.State(), buf)
	}
	if got := testutil.ToFloat64(m.TracingExporterState.WithLabelValues(StateOK)); got != 1 {
		t.Errorf("ok gauge = %v", got)
	}
	if strings.Contains(buf.String(), "must-not-be-logged") {
		t.Errorf("span attributes logged without console fallback")
	}
}

func TestConsoleFallbackLogsSpansWhileBreakerOpen(t *testing.T) {
	log, buf := newLogger()
	fake := &fakeExporter{failing: true}
	e := newResilientExporter(fake, resilientOptions{
		Resilience: Resilience{MaxAttempts: 1, BreakerThreshold: 1, BreakerCooldown: time.Hour},
		Logger:     log, Console: true,
	})
	_ = e.ExportSpans(t.Context(), stubSpans(2)) // opens the breaker
	_ = e.ExportSpans(t.Context(), stubSpans(3)) // refused while open
	if n := buf.count(`"msg":"span"`); n != 5 {
		t.Errorf("console spans = %d, want 5:\n%s", n, buf)
	}
	out := buf.String()
	for _, want := range []string{`"trace_id":"01020300000000000000000000000000"`, `"name":"PUT /uploads-0"`, `"http.route":"/uploads/{key}"`} {
		if !strings.Contains(out, want) {
			t.Errorf("console output lacks %s", want)
		}
	}
	if strings.Contains(out, "must-not-be-logged") {
		t.Errorf("sensitive attribute logged:\n%s", out)
	}
}

// TestExportRunsOffTheRequestGoroutine blocks the exporter and shows that
// requests through the middleware still complete, with the spans that do
// not fit the bounded queue dropped and counted.
func TestExportRunsOffTheRequestGoroutine(t *testing.T) {
	m := newTestMetrics(t)
	release := make(chan struct{})
	fake := &fakeExporter{block: release, entered: make(chan struct{}, 1)}
	tr, err := newTracing(t.Context(), config.Tracing{
		Enabled:  true,
		Sampling: config.Sampling{Strategy: "always"},
		Batch:    config.Batch{MaxQueueSize: 4, MaxExportBatchSize: 2, ScheduledDelayMillis: 1},
	}, TracingOptions{Metrics: m}, fake)
	if err != nil {
		t.Fatal(err)
	}
	h := Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), tr.MiddlewareOptions())
	serve := func(n int) {
		for range n {
			rw := httptest.NewRecorder()
			h.ServeHTTP(rw, httptest.NewRequest(http.MethodPut, "/b/k", nil))
			if rw.Code != http.StatusOK {
				t.Fatalf("status %d", rw.Code)
			}
		}
	}
	serve(2)
	<-fake.entered // the exporter now holds a batch and is blocked
	serve(100)
	if got := fake.callCount(); got != 1 {
		t.Fatalf("exporter calls = %d while blocked", got)
	}
	// The blocked worker does not read the queue: 4 spans wait, 96 are dropped.
	if got := testutil.ToFloat64(m.TracingExportFailures); got != 96 {
		t.Errorf("dropped spans counted = %v, want 96", got)
	}
	close(release)
	if err := tr.Shutdown(t.Context()); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	fake.mu.Lock()
	exported := len(fake.spans)
	fake.mu.Unlock()
	if exported != 6 {
		t.Errorf("exported %d spans after release, want 6 (2 in flight + 4 queued)", exported)
	}
}

func refusedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestUnreachableCollectorNeverFailsRequests runs the real OTLP exporters
// against a collector that refuses connections and one that accepts and
// never answers.
func TestUnreachableCollectorNeverFailsRequests(t *testing.T) {
	tests := []struct {
		name      string
		protocol  string
		blackHole bool
	}{
		{name: "grpc refused", protocol: "grpc"},
		{name: "http refused", protocol: "http/protobuf"},
		{name: "grpc black hole", protocol: "grpc", blackHole: true},
		{name: "http black hole", protocol: "http/protobuf", blackHole: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			addr := refusedAddr(t)
			var accepted <-chan struct{}
			if tt.blackHole {
				hole := testproc.BlackHole(t)
				addr, accepted = hole.Addr, hole.Accepted()
			}
			m := newTestMetrics(t)
			log, buf := newLogger()
			tr, err := NewTracing(t.Context(), config.Tracing{
				Enabled: true,
				OTLP: config.OTLP{Endpoint: "http://" + addr, Protocol: tt.protocol, TimeoutSeconds: 2,
					Compression: "gzip", Headers: map[string]string{"x-api-key": "collector-secret"}},
				Sampling: config.Sampling{Strategy: "always"},
				Batch:    config.Batch{MaxQueueSize: 64, MaxExportBatchSize: 8, ScheduledDelayMillis: 10},
			}, TracingOptions{Metrics: m, Logger: log, Version: "test",
				Resilience: Resilience{MaxAttempts: 2, InitialBackoff: 10 * time.Millisecond, BreakerThreshold: 2, BreakerCooldown: time.Hour}})
			if err != nil {
				t.Fatal(err)
			}
			h := Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				SetRoute(r.Context(), "uploads", "PutObject")
			}), tr.MiddlewareOptions())
			serve := func(n int) {
				for range n {
					rw := httptest.NewRecorder()
					h.ServeHTTP(rw, httptest.NewRequest(http.MethodPut, "/uploads/k", strings.NewReader("x")))
					if rw.Code != http.StatusOK {
						t.Fatalf("status %d", rw.Code)
					}
				}
			}
			serve(16)
			if tt.blackHole {
				// An export is now stuck on the silent collector; requests go on.
				<-accepted
				serve(200)
				if st := tr.State(); st != StateOK {
					t.Logf("state already %s", st)
				}
			}
			waitFor(t, "breaker to open", func() bool {
				serve(8)
				return tr.State() == StateBreakerOpen
			})
			serve(100)
			if got := testutil.ToFloat64(m.TracingExportFailures); got < 16 {
				t.Errorf("export failures = %v, want at least the first 16 spans", got)
			}
			if n := buf.count("circuit breaker open"); n != 1 {
				t.Errorf("breaker open logged %d times:\n%s", n, buf)
			}
			if strings.Contains(buf.String(), "collector-secret") {
				t.Errorf("collector header logged")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			_ = tr.Shutdown(ctx) // bounded even though the collector never answers
		})
	}
}
