package telemetry

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds every Prometheus metric of SPEC.md. It is created once per
// process with an injected Registerer (never the global one) and handed to
// the components that update it.
type Metrics struct {
	Uploads                *prometheus.CounterVec   // bucket, operation, status
	UploadBytes            *prometheus.CounterVec   // bucket
	UploadDuration         *prometheus.HistogramVec // bucket, operation
	MultipartUploads       *prometheus.CounterVec   // bucket, status
	AuthRequests           *prometheus.CounterVec   // bucket, method, result
	AuthzDecisions         *prometheus.CounterVec   // bucket, engine, decision, cached
	BackendRequests        *prometheus.CounterVec   // bucket, operation, status
	BackendRequestDuration *prometheus.HistogramVec // bucket, operation, status
	ZeroCopyBytes          *prometheus.CounterVec   // mode
	InflightUploads        *prometheus.GaugeVec     // bucket
	Errors                 *prometheus.CounterVec   // bucket, code
	StateErrors            *prometheus.CounterVec   // op
	LimitRefusals          *prometheus.CounterVec   // bucket, limit
	TracingExportFailures  prometheus.Counter
	TracingExporterState   *prometheus.GaugeVec // state
	BuildInfo              *prometheus.GaugeVec // version, commit, goversion
	// Multipart cleanup (internal/app/cleanup.go).
	MultipartCleanupAborted *prometheus.CounterVec // bucket
	MultipartCleanupRuns    *prometheus.CounterVec // bucket, result
}

// BuildInfo identifies the binary.
type BuildInfo struct {
	Version string
	Commit  string
}

// durationBuckets span a 1 KiB upload on loopback (~1 ms) to a 5 GiB upload
// over a slow link (~1 h).
var durationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}

// backendBuckets suit single backend calls, from metadata calls to parts.
var backendBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}

// NewMetrics creates the metrics and registers them, with the Go runtime
// and process collectors, on reg.
func NewMetrics(reg prometheus.Registerer, build BuildInfo) *Metrics {
	m := &Metrics{
		Uploads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mizuchi_uploads_total", Help: "Upload requests handled, by operation and HTTP status.",
		}, []string{"bucket", "operation", "status"}),
		UploadBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mizuchi_upload_bytes_total", Help: "Object bytes received from clients and stored.",
		}, []string{"bucket"}),
		UploadDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mizuchi_upload_duration_seconds", Help: "Time to handle an upload request.", Buckets: durationBuckets,
		}, []string{"bucket", "operation"}),
		MultipartUploads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mizuchi_multipart_uploads_total", Help: "Multipart uploads ended, by outcome (completed, aborted, failed).",
		}, []string{"bucket", "status"}),
		AuthRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mizuchi_auth_requests_total", Help: "Authentication attempts by method and result.",
		}, []string{"bucket", "method", "result"}),
		AuthzDecisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mizuchi_authz_decisions_total", Help: "Authorization decisions by engine, decision and whether the cache answered.",
		}, []string{"bucket", "engine", "decision", "cached"}),
		BackendRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mizuchi_backend_requests_total", Help: "Calls to storage backends.",
		}, []string{"bucket", "operation", "status"}),
		BackendRequestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mizuchi_backend_request_duration_seconds", Help: "Duration of calls to storage backends.", Buckets: backendBuckets,
		}, []string{"bucket", "operation", "status"}),
		ZeroCopyBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mizuchi_zero_copy_bytes_total", Help: "Bytes moved on the data path, by copy mode (splice, sendfile, buffered).",
		}, []string{"mode"}),
		InflightUploads: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mizuchi_inflight_uploads", Help: "Upload requests in progress.",
		}, []string{"bucket"}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mizuchi_errors_total", Help: "S3 errors answered, by code.",
		}, []string{"bucket", "code"}),
		StateErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mizuchi_state_errors_total", Help: "Calls to the shared state store that got no answer, by operation.",
		}, []string{"op"}),
		LimitRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mizuchi_limit_refusals_total", Help: "Requests and connections refused by a limit (503 SlowDown), by limit.",
		}, []string{"bucket", "limit"}),
		TracingExportFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mizuchi_tracing_export_failures_total", Help: "Spans dropped because export failed or the queue was full.",
		}),
		TracingExporterState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mizuchi_tracing_exporter_state", Help: "1 for the span exporter's current state (ok, failing, breaker_open, disabled).",
		}, []string{"state"}),
		BuildInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mizuchi_build_info", Help: "Build information; always 1.",
		}, []string{"version", "commit", "goversion"}),
	}
	m.MultipartCleanupAborted = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mizuchi_multipart_cleanup_aborted_total", Help: "Incomplete multipart uploads aborted by the periodic cleanup.",
	}, []string{"bucket"})
	m.MultipartCleanupRuns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mizuchi_multipart_cleanup_runs_total", Help: "Runs of the periodic multipart cleanup, by result (ok, failed).",
	}, []string{"bucket", "result"})
	reg.MustRegister(m.MultipartCleanupAborted, m.MultipartCleanupRuns)
	m.BuildInfo.WithLabelValues(build.Version, build.Commit, runtime.Version()).Set(1)
	reg.MustRegister(m.Uploads, m.UploadBytes, m.UploadDuration, m.MultipartUploads, m.AuthRequests,
		m.AuthzDecisions, m.BackendRequests, m.BackendRequestDuration, m.ZeroCopyBytes, m.InflightUploads,
		m.Errors, m.StateErrors, m.LimitRefusals, m.TracingExportFailures, m.TracingExporterState, m.BuildInfo,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
