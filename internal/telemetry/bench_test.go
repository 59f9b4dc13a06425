package telemetry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
)

func benchTracing(b *testing.B, enabled bool, strategy string) *Tracing {
	b.Helper()
	tr, err := newTracing(b.Context(), config.Tracing{
		Enabled:  enabled,
		Sampling: config.Sampling{Strategy: strategy},
		Batch:    config.Batch{MaxQueueSize: 8192, MaxExportBatchSize: 512, ScheduledDelayMillis: 100},
	}, TracingOptions{}, tracetest.NewNoopExporter())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	return tr
}

// BenchmarkMiddleware measures the per-request cost of the server span:
// tracing off (with and without an incoming traceparent), on but not
// sampled, and on and sampled (exporting to a discarding exporter).
func BenchmarkMiddleware(b *testing.B) {
	cases := []struct {
		name        string
		enabled     bool
		strategy    string
		traceparent bool
	}{
		{name: "off", strategy: "never"},
		{name: "off_traceparent", strategy: "never", traceparent: true},
		{name: "on_never", enabled: true, strategy: "never"},
		{name: "on_always", enabled: true, strategy: "always"},
		{name: "on_always_traceparent", enabled: true, strategy: "always", traceparent: true},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			tr := benchTracing(b, c.enabled, c.strategy)
			h := Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				SetRoute(r.Context(), "uploads", "PutObject")
			}), tr.MiddlewareOptions())
			req := httptest.NewRequest(http.MethodPut, "/uploads/key", nil)
			if c.traceparent {
				req.Header.Set("traceparent", knownParent)
			}
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, req)
			}
		})
	}
}

// BenchmarkSpanStart measures creating and ending one child span, as the
// auth, authz and backend packages do.
func BenchmarkSpanStart(b *testing.B) {
	for _, c := range []struct {
		name     string
		enabled  bool
		strategy string
	}{{"off", false, "never"}, {"on_always", true, "always"}} {
		b.Run(c.name, func(b *testing.B) {
			tracer := benchTracing(b, c.enabled, c.strategy).Provider().Tracer("bench")
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				_, s := tracer.Start(ctx, SpanAuthJWT)
				s.End()
			}
		})
	}
}

func BenchmarkW3CExtract(b *testing.B) {
	prop := NewPropagator()
	h := http.Header{}
	h.Set("traceparent", knownParent)
	h.Set("tracestate", "vendor=value")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_ = prop.Extract(ctx, propagation.HeaderCarrier(h))
	}
}

func BenchmarkW3CInject(b *testing.B) {
	prop := NewPropagator()
	h := http.Header{}
	h.Set("traceparent", knownParent)
	ctx := prop.Extract(context.Background(), propagation.HeaderCarrier(h))
	out := http.Header{}
	b.ReportAllocs()
	for b.Loop() {
		prop.Inject(ctx, propagation.HeaderCarrier(out))
	}
}
