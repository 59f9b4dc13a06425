package telemetry

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
)

func TestNewTracingRejectsBadConfig(t *testing.T) {
	ok := config.Tracing{Enabled: true, OTLP: config.OTLP{Endpoint: "http://127.0.0.1:4317", Protocol: "grpc"},
		Sampling: config.Sampling{Strategy: "always"}}
	tests := []struct {
		name   string
		mutate func(c *config.Tracing)
	}{
		{name: "unknown strategy", mutate: func(c *config.Tracing) { c.Sampling.Strategy = "sometimes" }},
		{name: "ratio above one", mutate: func(c *config.Tracing) { c.Sampling = config.Sampling{Strategy: "ratio", Ratio: 1.5} }},
		{name: "negative ratio", mutate: func(c *config.Tracing) { c.Sampling = config.Sampling{Strategy: "ratio", Ratio: -0.1} }},
		{name: "unknown protocol", mutate: func(c *config.Tracing) { c.OTLP.Protocol = "thrift" }},
		{name: "unknown scheme", mutate: func(c *config.Tracing) { c.OTLP.Endpoint = "ftp://collector:4317" }},
		{name: "empty endpoint", mutate: func(c *config.Tracing) { c.OTLP.Endpoint = "" }},
		{name: "unknown compression", mutate: func(c *config.Tracing) { c.OTLP.Compression = "zstd" }},
		{name: "unknown fallback", mutate: func(c *config.Tracing) { c.Fallback = "stderr" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mutate(&c)
			if _, err := NewTracing(t.Context(), c, TracingOptions{}); err == nil {
				t.Errorf("accepted %+v", c)
			}
		})
	}
	tr, err := NewTracing(t.Context(), ok, TracingOptions{})
	if err != nil {
		t.Fatalf("valid config rejected: %v", err)
	}
	_ = tr.Shutdown(t.Context())
}

func TestParseEndpoint(t *testing.T) {
	tests := []struct {
		name, raw, host, path string
		insecure              bool
	}{
		{name: "http is plaintext", raw: "http://127.0.0.1:4317", host: "127.0.0.1:4317", insecure: true},
		{name: "https is TLS", raw: "https://otlp.example.com:443", host: "otlp.example.com:443"},
		{name: "no scheme is TLS", raw: "collector:4317", host: "collector:4317"},
		{name: "path kept", raw: "http://c:4318/otlp/v1/traces", host: "c:4318", path: "/otlp/v1/traces", insecure: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep, err := parseEndpoint(tt.raw)
			if err != nil {
				t.Fatal(err)
			}
			if ep.host != tt.host || ep.path != tt.path || ep.insecure != tt.insecure {
				t.Errorf("got %+v", ep)
			}
		})
	}
}

func TestDisabledTracingIsNoop(t *testing.T) {
	m := newTestMetrics(t)
	tr, err := NewTracing(t.Context(), config.Tracing{Enabled: false}, TracingOptions{Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tr.Provider().(noop.TracerProvider); !ok {
		t.Errorf("provider %T", tr.Provider())
	}
	if tr.State() != StateDisabled || tr.Enabled() {
		t.Errorf("state %s", tr.State())
	}
	if got := testutil.ToFloat64(m.TracingExporterState.WithLabelValues(StateDisabled)); got != 1 {
		t.Errorf("disabled gauge = %v", got)
	}
	if err := tr.Shutdown(t.Context()); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// TestShutdownIsBoundedWithAStuckExporter: without a deadline on its
// context, Shutdown gives up after ShutdownTimeout and counts what it
// could not export.
func TestShutdownIsBoundedWithAStuckExporter(t *testing.T) {
	m := newTestMetrics(t)
	fake := &fakeExporter{block: make(chan struct{}), entered: make(chan struct{}, 1)}
	tr, err := newTracing(t.Context(), config.Tracing{
		Enabled:  true,
		Sampling: config.Sampling{Strategy: "always"},
		Batch:    config.Batch{MaxQueueSize: 16, MaxExportBatchSize: 1, ScheduledDelayMillis: 1},
	}, TracingOptions{Metrics: m, Resilience: Resilience{ShutdownTimeout: 50 * time.Millisecond}}, fake)
	if err != nil {
		t.Fatal(err)
	}
	tracer := tr.Provider().Tracer("t")
	_, s := tracer.Start(context.Background(), "first")
	s.End()
	<-fake.entered
	for range 5 {
		_, s := tracer.Start(context.Background(), "queued")
		s.End()
	}
	if err := tr.Shutdown(context.Background()); err == nil {
		t.Errorf("shutdown reported success with a stuck exporter")
	}
	if got := testutil.ToFloat64(m.TracingExportFailures); got != 6 {
		t.Errorf("failures = %v, want 6 (1 in flight, 5 queued)", got)
	}
}

// tracing.subject_hash_key makes enduser.hash equal across processes;
// without it every process has its own key.
func TestSubjectHashKeyFromConfig(t *testing.T) {
	cfg := config.Tracing{SubjectHashKey: "fleet-wide-key-0123456789abcdef0123"}
	a, err := NewTracing(context.Background(), cfg, TracingOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewTracing(context.Background(), cfg, TracingOptions{})
	if SubjectHash(a.SubjectKey(), "alice") != SubjectHash(b.SubjectKey(), "alice") {
		t.Fatal("two processes with one configured key hash a subject differently")
	}
	c, _ := NewTracing(context.Background(), config.Tracing{}, TracingOptions{})
	d, _ := NewTracing(context.Background(), config.Tracing{}, TracingOptions{})
	if SubjectHash(c.SubjectKey(), "alice") == SubjectHash(d.SubjectKey(), "alice") {
		t.Fatal("two processes without a configured key share a key")
	}
}
