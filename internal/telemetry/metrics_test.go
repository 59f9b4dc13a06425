package telemetry

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// populate gives every labelled metric one child so it is gathered.
func populate(m *Metrics) {
	m.Uploads.WithLabelValues("b", "PutObject", "200").Inc()
	m.UploadBytes.WithLabelValues("b").Add(1024)
	m.UploadDuration.WithLabelValues("b", "PutObject").Observe(0.01)
	m.MultipartUploads.WithLabelValues("b", "completed").Inc()
	m.AuthRequests.WithLabelValues("b", "jwt", "ok").Inc()
	m.AuthzDecisions.WithLabelValues("b", "opa", "allow", "false").Inc()
	m.BackendRequests.WithLabelValues("b", "PutObject", "200").Inc()
	m.BackendRequestDuration.WithLabelValues("b", "PutObject", "200").Observe(0.01)
	m.ZeroCopyBytes.WithLabelValues("splice").Add(1)
	m.InflightUploads.WithLabelValues("b").Set(0)
	m.Errors.WithLabelValues("b", "AccessDenied").Inc()
	m.TracingExportFailures.Add(0)
	setExporterState(m, StateDisabled)
	m.MultipartCleanupAborted.WithLabelValues("b").Add(0)
	m.MultipartCleanupRuns.WithLabelValues("b", "ok").Inc()
}

func TestMetricsPassPromtoolLint(t *testing.T) {
	reg := prometheus.NewRegistry()
	populate(NewMetrics(reg, BuildInfo{Version: "1.0.0", Commit: "abc123"}))
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

func TestEveryMetricOfTheSpecExists(t *testing.T) {
	spec := []struct {
		name   string
		typ    dto.MetricType
		labels []string
	}{
		{"mizuchi_uploads_total", dto.MetricType_COUNTER, []string{"bucket", "operation", "status"}},
		{"mizuchi_upload_bytes_total", dto.MetricType_COUNTER, []string{"bucket"}},
		{"mizuchi_upload_duration_seconds", dto.MetricType_HISTOGRAM, []string{"bucket", "operation"}},
		{"mizuchi_multipart_uploads_total", dto.MetricType_COUNTER, []string{"bucket", "status"}},
		{"mizuchi_auth_requests_total", dto.MetricType_COUNTER, []string{"bucket", "method", "result"}},
		{"mizuchi_authz_decisions_total", dto.MetricType_COUNTER, []string{"bucket", "engine", "decision", "cached"}},
		{"mizuchi_backend_requests_total", dto.MetricType_COUNTER, []string{"bucket", "operation", "status"}},
		{"mizuchi_backend_request_duration_seconds", dto.MetricType_HISTOGRAM, []string{"bucket", "operation", "status"}},
		{"mizuchi_zero_copy_bytes_total", dto.MetricType_COUNTER, []string{"mode"}},
		{"mizuchi_inflight_uploads", dto.MetricType_GAUGE, []string{"bucket"}},
		{"mizuchi_errors_total", dto.MetricType_COUNTER, []string{"bucket", "code"}},
		{"mizuchi_tracing_export_failures_total", dto.MetricType_COUNTER, nil},
		{"mizuchi_tracing_exporter_state", dto.MetricType_GAUGE, []string{"state"}},
		{"mizuchi_build_info", dto.MetricType_GAUGE, []string{"version", "commit", "goversion"}},
		{"mizuchi_multipart_cleanup_aborted_total", dto.MetricType_COUNTER, []string{"bucket"}},
		{"mizuchi_multipart_cleanup_runs_total", dto.MetricType_COUNTER, []string{"bucket", "result"}},
		{"go_goroutines", dto.MetricType_GAUGE, nil},
		{"process_cpu_seconds_total", dto.MetricType_COUNTER, nil},
	}
	reg := prometheus.NewRegistry()
	populate(NewMetrics(reg, BuildInfo{Version: "1.0.0", Commit: "abc123"}))
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*dto.MetricFamily{}
	for _, f := range families {
		byName[f.GetName()] = f
	}
	for _, want := range spec {
		t.Run(want.name, func(t *testing.T) {
			f, ok := byName[want.name]
			if !ok {
				t.Fatalf("metric missing")
			}
			if f.GetType() != want.typ {
				t.Errorf("type = %v, want %v", f.GetType(), want.typ)
			}
			var got []string
			for _, l := range f.GetMetric()[0].GetLabel() {
				got = append(got, l.GetName())
			}
			w := slices.Clone(want.labels)
			slices.Sort(w)
			slices.Sort(got)
			if !slices.Equal(got, w) {
				t.Errorf("labels = %v, want %v", got, w)
			}
		})
	}
}

func TestUploadBucketsSpanOneKiBToFiveGiB(t *testing.T) {
	// A 1 KiB upload on loopback takes about a millisecond, 5 GiB over a
	// slow link up to an hour: both ends must fall inside distinct buckets.
	if durationBuckets[0] > 0.001 || durationBuckets[len(durationBuckets)-1] < 3600 {
		t.Errorf("upload duration buckets %v do not cover 1ms..1h", durationBuckets)
	}
}

func TestMetricsHandlerServesExposition(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, BuildInfo{Version: "1.2.3", Commit: "abc"})
	m.Uploads.WithLabelValues("b", "PutObject", "200").Inc()
	srv := httptest.NewServer(NewMetricsServer("", reg).Handler)
	defer srv.Close()
	tests := []struct {
		name   string
		path   string
		status int
		want   []string
	}{
		{name: "metrics", path: MetricsPath, status: 200, want: []string{
			`mizuchi_uploads_total{bucket="b",operation="PutObject",status="200"} 1`,
			`mizuchi_build_info{commit="abc",goversion="go`, "go_goroutines", "process_cpu_seconds_total",
		}},
		{name: "other paths are not found", path: "/", status: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Get(srv.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d", resp.StatusCode)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(body), w) {
					t.Errorf("exposition lacks %q", w)
				}
			}
		})
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}
