package telemetry

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// errBreakerOpen is returned for batches refused while the breaker is open.
var errBreakerOpen = errors.New("tracing: exporter circuit breaker open")

type resilientOptions struct {
	Resilience
	Metrics *Metrics
	Logger  *slog.Logger
	// Console writes the spans of failed and refused batches to Logger
	// while the breaker is open, so they are not lost silently.
	Console bool
	// now is the clock; tests replace it.
	now func() time.Time
}

// resilientExporter wraps the OTLP exporter with bounded retries and a
// circuit breaker. It is only called from the processor's export
// goroutine, never from a request goroutine.
//
// States: ok → failing after a failed batch (all attempts spent) →
// breaker_open after BreakerThreshold consecutive failed batches. While
// open, batches are refused without a network call (counted, and logged
// with fallback: console). After BreakerCooldown one batch is tried once:
// success closes the breaker, failure reopens it. Each state change is
// logged once.
type resilientExporter struct {
	next sdktrace.SpanExporter
	opts resilientOptions

	mu        sync.Mutex
	state     string
	failures  int
	openUntil time.Time
}

func newResilientExporter(next sdktrace.SpanExporter, opts resilientOptions) *resilientExporter {
	opts.Resilience = opts.Resilience.withDefaults()
	if opts.now == nil {
		opts.now = time.Now
	}
	e := &resilientExporter{next: next, opts: opts, state: StateOK}
	setExporterState(opts.Metrics, StateOK)
	return e
}

// State returns ok, failing or breaker_open.
func (e *resilientExporter) State() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.state
}

// ExportSpans exports one batch. Failures are counted and logged here; the
// returned error is informational.
func (e *resilientExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if len(spans) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		// Shutdown gave up: count, but this says nothing about the collector.
		e.countFailed(len(spans))
		return err
	}
	e.mu.Lock()
	state, openUntil := e.state, e.openUntil
	e.mu.Unlock()

	attempts := e.opts.MaxAttempts
	if state == StateBreakerOpen {
		if e.opts.now().Before(openUntil) {
			e.countFailed(len(spans))
			e.logSpans(spans)
			return errBreakerOpen
		}
		attempts = 1 // half-open: one probe
	}

	var err error
	backoff := e.opts.InitialBackoff
	for i := range attempts {
		if i > 0 {
			if !sleep(ctx, backoff) {
				break
			}
			backoff = min(2*backoff, e.opts.MaxBackoff)
		}
		if err = e.next.ExportSpans(ctx, spans); err == nil {
			e.succeeded()
			return nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	if ctx.Err() != nil {
		// Abandoned by shutdown, not a verdict on the collector.
		e.countFailed(len(spans))
		return err
	}
	e.failed(err, spans)
	return err
}

func (e *resilientExporter) succeeded() {
	e.mu.Lock()
	prev := e.state
	e.state, e.failures = StateOK, 0
	e.mu.Unlock()
	if prev != StateOK {
		setExporterState(e.opts.Metrics, StateOK)
		e.opts.Logger.Info("tracing exporter recovered", "state", StateOK, "previous_state", prev)
	}
}

func (e *resilientExporter) failed(err error, spans []sdktrace.ReadOnlySpan) {
	e.countFailed(len(spans))
	e.mu.Lock()
	prev := e.state
	e.failures++
	next := StateFailing
	if prev == StateBreakerOpen || e.failures >= e.opts.BreakerThreshold {
		next = StateBreakerOpen
		e.openUntil = e.opts.now().Add(e.opts.BreakerCooldown)
	}
	e.state = next
	failures := e.failures
	e.mu.Unlock()

	if next != prev {
		setExporterState(e.opts.Metrics, next)
		switch next {
		case StateBreakerOpen:
			e.opts.Logger.Warn("tracing exporter circuit breaker open: spans are dropped until the collector answers again",
				"state", next, "consecutive_failures", failures, "retry_in", e.opts.BreakerCooldown.String(),
				"error", errString(err), "fallback_console", e.opts.Console)
		default:
			e.opts.Logger.Warn("tracing exporter failing", "state", next, "error", errString(err))
		}
	}
	if next == StateBreakerOpen {
		e.logSpans(spans)
	}
}

func (e *resilientExporter) countFailed(n int) {
	if e.opts.Metrics != nil {
		e.opts.Metrics.TracingExportFailures.Add(float64(n))
	}
}

// Shutdown stops the wrapped exporter.
func (e *resilientExporter) Shutdown(ctx context.Context) error {
	return e.next.Shutdown(ctx)
}

// logSpans writes spans as log lines (fallback: console). Attributes are
// already free of secrets by construction; keys that look sensitive are
// dropped anyway as a second line of defence.
func (e *resilientExporter) logSpans(spans []sdktrace.ReadOnlySpan) {
	if !e.opts.Console {
		return
	}
	for _, s := range spans {
		attrs := make([]any, 0, len(s.Attributes()))
		for _, kv := range s.Attributes() {
			if sensitiveKey(string(kv.Key)) {
				continue
			}
			attrs = append(attrs, slog.String(string(kv.Key), kv.Value.String()))
		}
		parent := ""
		if p := s.Parent(); p.IsValid() {
			parent = p.SpanID().String()
		}
		e.opts.Logger.Info("span",
			"trace_id", s.SpanContext().TraceID().String(),
			"span_id", s.SpanContext().SpanID().String(),
			"parent_span_id", parent,
			"name", s.Name(),
			"kind", s.SpanKind().String(),
			"start", s.StartTime(),
			"duration", s.EndTime().Sub(s.StartTime()).String(),
			"status", s.Status().Code.String(),
			slog.Group("attributes", attrs...),
		)
	}
}

var sensitiveWords = []string{"authorization", "token", "secret", "password", "signature", "credential", "cookie"}

func sensitiveKey(k string) bool {
	k = strings.ToLower(k)
	for _, w := range sensitiveWords {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

var _ sdktrace.SpanExporter = (*resilientExporter)(nil)
