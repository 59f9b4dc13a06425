package telemetry

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
)

// Exporter states, as reported by Tracing.State and the
// mizuchi_tracing_exporter_state gauge.
const (
	StateOK          = "ok"
	StateFailing     = "failing"
	StateBreakerOpen = "breaker_open"
	StateDisabled    = "disabled"
)

var allStates = []string{StateOK, StateFailing, StateBreakerOpen, StateDisabled}

// scopeName names the tracer of the spans created in this package.
const scopeName = "github.com/mizuchi-uploadr/mizuchi"

// Defaults applied where config leaves a value at zero.
const (
	defaultServiceName   = "mizuchi-uploadr"
	defaultExportTimeout = 10 * time.Second
	defaultQueueSize     = 2048
	defaultBatchSize     = 512
	defaultBatchDelay    = 5 * time.Second
)

// TracingOptions carries what NewTracing needs besides the config.
type TracingOptions struct {
	// Metrics receives export failures and the exporter state; may be nil.
	Metrics *Metrics
	// Logger receives exporter state changes (once per change) and, with
	// fallback: console, spans that could not be exported. Nil: discard.
	Logger *slog.Logger
	// Version is the service.version resource attribute.
	Version string
	// Resilience tunes retries and the circuit breaker; zero fields take
	// the defaults documented on Resilience.
	Resilience Resilience
}

// Resilience tunes how the exporter copes with a failing collector.
type Resilience struct {
	// MaxAttempts is the number of export attempts per batch (default 3).
	MaxAttempts int
	// InitialBackoff is the wait before the first retry; it doubles on
	// each further retry up to MaxBackoff (defaults 200ms and 2s).
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// BreakerThreshold is the number of consecutive failed batches that
	// opens the circuit breaker (default 3).
	BreakerThreshold int
	// BreakerCooldown is how long the open breaker refuses to export
	// before one batch probes the collector again (default 30s).
	BreakerCooldown time.Duration
	// ShutdownTimeout bounds Shutdown when its context has no deadline
	// (default 5s).
	ShutdownTimeout time.Duration
}

func (r Resilience) withDefaults() Resilience {
	if r.MaxAttempts <= 0 {
		r.MaxAttempts = 3
	}
	if r.InitialBackoff <= 0 {
		r.InitialBackoff = 200 * time.Millisecond
	}
	if r.MaxBackoff <= 0 {
		r.MaxBackoff = 2 * time.Second
	}
	if r.BreakerThreshold <= 0 {
		r.BreakerThreshold = 3
	}
	if r.BreakerCooldown <= 0 {
		r.BreakerCooldown = 30 * time.Second
	}
	if r.ShutdownTimeout <= 0 {
		r.ShutdownTimeout = 5 * time.Second
	}
	return r
}

// Tracing is the process's OpenTelemetry tracing: a tracer provider (no-op
// when disabled), the W3C propagator and the resilient exporter behind it.
type Tracing struct {
	provider   trace.TracerProvider
	sdk        *sdktrace.TracerProvider // nil when disabled
	exporter   *resilientExporter       // nil when disabled
	prop       propagation.TextMapPropagator
	recordKeys bool
	subjectKey []byte
	shutdownTO time.Duration
}

// NewTracing builds tracing from cfg. Disabled tracing yields a no-op
// provider. Enabled tracing never dials the collector synchronously, so a
// collector that is down does not delay start-up; errors are only returned
// for an invalid configuration.
func NewTracing(ctx context.Context, cfg config.Tracing, opts TracingOptions) (*Tracing, error) {
	return newTracing(ctx, cfg, opts, nil)
}

// newTracing is NewTracing with an exporter override for tests.
func newTracing(ctx context.Context, cfg config.Tracing, opts TracingOptions, exp sdktrace.SpanExporter) (*Tracing, error) {
	res := opts.Resilience.withDefaults()
	t := &Tracing{
		prop:       NewPropagator(),
		recordKeys: cfg.RecordObjectKeys,
		subjectKey: make([]byte, 32),
		shutdownTO: res.ShutdownTimeout,
	}
	if cfg.SubjectHashKey != "" {
		// Configured: every replica hashes a subject alike.
		t.subjectKey = []byte(cfg.SubjectHashKey)
	} else if _, err := rand.Read(t.subjectKey); err != nil {
		return nil, fmt.Errorf("tracing: subject hash key: %w", err)
	}
	if !cfg.Enabled {
		t.provider = noop.NewTracerProvider()
		setExporterState(opts.Metrics, StateDisabled)
		return t, nil
	}

	sampler, err := newSampler(cfg.Sampling)
	if err != nil {
		return nil, err
	}
	fallback := false
	switch cfg.Fallback {
	case "", "none":
	case "console":
		fallback = true
	default:
		return nil, fmt.Errorf("tracing: fallback %q: want none or console", cfg.Fallback)
	}
	if exp == nil {
		if exp, err = newOTLPExporter(ctx, cfg.OTLP); err != nil {
			return nil, err
		}
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	t.exporter = newResilientExporter(exp, resilientOptions{
		Resilience: res,
		Metrics:    opts.Metrics,
		Logger:     logger,
		Console:    fallback,
	})

	name := cfg.ServiceName
	if name == "" {
		name = defaultServiceName
	}
	rsc, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithAttributes(
			semconvServiceName.String(name),
			semconvServiceVersion.String(opts.Version),
		))
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}

	proc := newQueueProcessor(t.exporter, queueOptions{
		QueueSize: orDefault(cfg.Batch.MaxQueueSize, defaultQueueSize),
		BatchSize: orDefault(cfg.Batch.MaxExportBatchSize, defaultBatchSize),
		Delay:     orDefaultDuration(time.Duration(cfg.Batch.ScheduledDelayMillis)*time.Millisecond, defaultBatchDelay),
		OnDrop: func(n int) {
			if opts.Metrics != nil {
				opts.Metrics.TracingExportFailures.Add(float64(n))
			}
		},
	})
	t.sdk = sdktrace.NewTracerProvider(
		sdktrace.WithResource(rsc),
		sdktrace.WithSampler(sampler),
		sdktrace.WithSpanProcessor(proc),
	)
	t.provider = t.sdk
	return t, nil
}

// Provider is the tracer provider to inject into components.
func (t *Tracing) Provider() trace.TracerProvider { return t.provider }

// Propagator is the W3C trace-context and baggage propagator.
func (t *Tracing) Propagator() propagation.TextMapPropagator { return t.prop }

// RecordObjectKeys reports whether object keys may be recorded in spans.
func (t *Tracing) RecordObjectKeys() bool { return t.recordKeys }

// SubjectKey is the key for SubjectHash: tracing.subject_hash_key, so
// hashes correlate across replicas and restarts; without it, random at
// every start, so hashes correlate requests of one process run only.
func (t *Tracing) SubjectKey() []byte { return t.subjectKey }

// Enabled reports whether spans are recorded and exported.
func (t *Tracing) Enabled() bool { return t.sdk != nil }

// State is the exporter state for /readyz details: ok, failing,
// breaker_open or disabled. It never makes the process unready.
func (t *Tracing) State() string {
	if t.exporter == nil {
		return StateDisabled
	}
	return t.exporter.State()
}

// MiddlewareOptions returns the options Middleware needs for this tracing.
func (t *Tracing) MiddlewareOptions() MiddlewareOptions {
	return MiddlewareOptions{Provider: t.provider, Propagator: t.prop, RecordObjectKeys: t.recordKeys}
}

// Shutdown flushes queued spans and stops the exporter. Without a deadline
// on ctx it gives up after Resilience.ShutdownTimeout: a dead collector
// does not hold up process exit.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t.sdk == nil {
		return nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.shutdownTO)
		defer cancel()
	}
	return t.sdk.Shutdown(ctx)
}

// NewPropagator returns the W3C trace-context and baggage propagator.
func NewPropagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

func newSampler(s config.Sampling) (sdktrace.Sampler, error) {
	if s.Ratio < 0 || s.Ratio > 1 {
		return nil, fmt.Errorf("tracing: sampling ratio %v outside [0,1]", s.Ratio)
	}
	switch s.Strategy {
	case "always":
		return sdktrace.AlwaysSample(), nil
	case "never":
		return sdktrace.NeverSample(), nil
	case "ratio":
		return sdktrace.TraceIDRatioBased(s.Ratio), nil
	case "parent_based", "":
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(s.Ratio)), nil
	default:
		return nil, fmt.Errorf("tracing: sampling strategy %q: want always, never, ratio or parent_based", s.Strategy)
	}
}

// otlpEndpoint splits the configured endpoint. Without a scheme TLS is
// used, as OpenTelemetry's own configuration does; http:// is plaintext.
type otlpEndpoint struct {
	host     string
	path     string
	insecure bool
}

func parseEndpoint(raw string) (otlpEndpoint, error) {
	if raw == "" {
		return otlpEndpoint{}, errors.New("tracing: otlp.endpoint is empty")
	}
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return otlpEndpoint{}, fmt.Errorf("tracing: otlp.endpoint: %w", err)
	}
	var ep otlpEndpoint
	switch u.Scheme {
	case "http":
		ep.insecure = true
	case "https":
	default:
		return otlpEndpoint{}, fmt.Errorf("tracing: otlp.endpoint scheme %q: want http or https", u.Scheme)
	}
	if u.Host == "" {
		return otlpEndpoint{}, errors.New("tracing: otlp.endpoint has no host")
	}
	ep.host, ep.path = u.Host, u.Path
	return ep, nil
}

// newOTLPExporter builds the OTLP exporter. Its own retries are off: the
// resilient wrapper retries, so the circuit breaker sees every failure.
func newOTLPExporter(ctx context.Context, c config.OTLP) (sdktrace.SpanExporter, error) {
	ep, err := parseEndpoint(c.Endpoint)
	if err != nil {
		return nil, err
	}
	timeout := orDefaultDuration(time.Duration(c.TimeoutSeconds)*time.Second, defaultExportTimeout)
	gzip := false
	switch c.Compression {
	case "", "none":
	case "gzip":
		gzip = true
	default:
		return nil, fmt.Errorf("tracing: otlp.compression %q: want gzip or none", c.Compression)
	}
	switch c.Protocol {
	case "grpc", "":
		opts := []otlptracegrpc.Option{
			otlptracegrpc.WithEndpoint(ep.host),
			otlptracegrpc.WithTimeout(timeout),
			otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false}),
		}
		if ep.insecure {
			opts = append(opts, otlptracegrpc.WithInsecure())
		}
		if gzip {
			opts = append(opts, otlptracegrpc.WithCompressor("gzip"))
		}
		if len(c.Headers) > 0 {
			opts = append(opts, otlptracegrpc.WithHeaders(c.Headers))
		}
		exp, err := otlptracegrpc.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("tracing: otlp grpc exporter: %w", err)
		}
		return exp, nil
	case "http/protobuf":
		path := ep.path
		if path == "" || path == "/" {
			path = "/v1/traces"
		}
		opts := []otlptracehttp.Option{
			otlptracehttp.WithEndpoint(ep.host),
			otlptracehttp.WithURLPath(path),
			otlptracehttp.WithTimeout(timeout),
			otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}),
		}
		if ep.insecure {
			opts = append(opts, otlptracehttp.WithInsecure())
		}
		if gzip {
			opts = append(opts, otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
		} else {
			opts = append(opts, otlptracehttp.WithCompression(otlptracehttp.NoCompression))
		}
		if len(c.Headers) > 0 {
			opts = append(opts, otlptracehttp.WithHeaders(c.Headers))
		}
		exp, err := otlptracehttp.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("tracing: otlp http exporter: %w", err)
		}
		return exp, nil
	default:
		return nil, fmt.Errorf("tracing: otlp.protocol %q: want grpc or http/protobuf", c.Protocol)
	}
}

func setExporterState(m *Metrics, state string) {
	if m == nil {
		return
	}
	for _, s := range allStates {
		v := 0.0
		if s == state {
			v = 1
		}
		m.TracingExporterState.WithLabelValues(s).Set(v)
	}
}

func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

func orDefaultDuration(v, def time.Duration) time.Duration {
	if v <= 0 {
		return def
	}
	return v
}
