package events

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
)

// Every delivery attempt is a span of its own trace, linked to the upload's.
func TestDeliverySpanLinksTheUpload(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	ev, bs := testConfig(t.TempDir())
	sink := newFake(false)
	m, err := New(ev, bs, Options{Registerer: prometheus.NewRegistry(), Tracer: tp,
		Sinks: func(string, int, config.EventSink) (Sink, error) { return sink, nil }})
	if err != nil {
		t.Fatal(err)
	}
	m.Start()
	o := object("k")
	if err := m.Notify(o); err != nil {
		t.Fatal(err)
	}
	sink.wait(t, 1)
	_ = m.Close()
	spans := rec.Ended()
	if len(spans) != 1 {
		t.Fatalf("%d spans, want 1", len(spans))
	}
	s := spans[0]
	if s.Name() != "events.deliver webhook" {
		t.Errorf("span %q", s.Name())
	}
	upload := parseTraceparent(o.Traceparent)
	if s.SpanContext().TraceID() == upload.TraceID() || s.Parent().IsValid() {
		t.Error("the delivery span is inside the upload's trace, want a new trace")
	}
	if len(s.Links()) != 1 || s.Links()[0].SpanContext.TraceID() != upload.TraceID() ||
		s.Links()[0].SpanContext.SpanID() != upload.SpanID() {
		t.Errorf("links %+v, want the upload's span", s.Links())
	}
}
