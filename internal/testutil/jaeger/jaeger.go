// Package jaeger runs a real Jaeger v2 (cmd/jaeger, an OpenTelemetry
// collector distribution) for tests: in-memory storage, OTLP receivers and
// the query API on free loopback ports. The binary is built by
// scripts/install-tools.sh from the tools/jaeger module; a missing binary
// fails the test.
package jaeger

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/testproc"
)

// Server is a running Jaeger.
type Server struct {
	// OTLPGRPC is the OTLP/gRPC receiver's host:port.
	OTLPGRPC string
	// OTLPHTTP is the OTLP/HTTP receiver's host:port (path /v1/traces).
	OTLPHTTP string
	// QueryURL is the base URL of the query API (e.g. /api/traces/{id}).
	QueryURL string
	// Proc is the jaeger process.
	Proc *testproc.Proc
}

// config is the collector configuration; the batch processor's short
// timeout makes spans searchable quickly.
const config = `service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  healthcheckv2:
    use_v2: true
    http:
      endpoint: 127.0.0.1:%d
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 10000
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:%d
    grpc:
      endpoint: 127.0.0.1:%d
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%d
      http:
        endpoint: 127.0.0.1:%d
processors:
  batch:
    timeout: 50ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`

// Start runs jaeger and waits until its receivers and query API are up.
// It is stopped when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := testproc.LookPath(t, "jaeger")
	health, query, queryGRPC := testproc.FreePort(t), testproc.FreePort(t), testproc.FreePort(t)
	otlpGRPC, otlpHTTP := testproc.FreePort(t), testproc.FreePort(t)
	path := filepath.Join(t.TempDir(), "jaeger.yaml")
	body := fmt.Sprintf(config, health, query, queryGRPC, otlpGRPC, otlpHTTP)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatalf("write jaeger config: %v", err)
	}
	p := testproc.Start(t, bin, []string{"--config", "file:" + path})
	s := &Server{
		OTLPGRPC: fmt.Sprintf("127.0.0.1:%d", otlpGRPC),
		OTLPHTTP: fmt.Sprintf("127.0.0.1:%d", otlpHTTP),
		QueryURL: fmt.Sprintf("http://127.0.0.1:%d", query),
		Proc:     p,
	}
	testproc.WaitHTTP(t, p, fmt.Sprintf("http://127.0.0.1:%d/status", health), 60*time.Second)
	testproc.WaitTCP(t, p, s.OTLPGRPC, 30*time.Second)
	testproc.WaitTCP(t, p, s.OTLPHTTP, 30*time.Second)
	testproc.WaitHTTP(t, p, s.QueryURL+"/api/services", 30*time.Second)
	return s
}

// Span is a span as the query API returns it.
type Span struct {
	TraceID       string      `json:"traceID"`
	SpanID        string      `json:"spanID"`
	OperationName string      `json:"operationName"`
	References    []Reference `json:"references"`
	Tags          []Tag       `json:"tags"`
	ProcessID     string      `json:"processID"`
	// Service is filled from the trace's processes.
	Service string `json:"-"`
}

// Reference links a span to its parent.
type Reference struct {
	RefType string `json:"refType"`
	TraceID string `json:"traceID"`
	SpanID  string `json:"spanID"`
}

// Tag is a span attribute.
type Tag struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Value any    `json:"value"`
}

// Tag returns the value of the tag key, and whether it is present.
func (s Span) Tag(key string) (any, bool) {
	for _, t := range s.Tags {
		if t.Key == key {
			return t.Value, true
		}
	}
	return nil, false
}

// ParentSpanID returns the CHILD_OF reference's span id, or "".
func (s Span) ParentSpanID() string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" {
			return r.SpanID
		}
	}
	return ""
}

type traceResponse struct {
	Data []struct {
		TraceID   string `json:"traceID"`
		Spans     []Span `json:"spans"`
		Processes map[string]struct {
			ServiceName string `json:"serviceName"`
		} `json:"processes"`
	} `json:"data"`
}

// Trace polls the query API until the trace (32 hex digits) has spans and
// returns them; it fails the test after 30 seconds.
func (s *Server) Trace(t testing.TB, traceID string) []Span {
	t.Helper()
	return s.TraceN(t, traceID, 1)
}

// TraceN is Trace waiting for at least minSpans spans: the spans of one
// trace may arrive in several batches.
func (s *Server) TraceN(t testing.TB, traceID string, minSpans int) []Span {
	t.Helper()
	minSpans = max(minSpans, 1)
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		spans, err := s.fetch(traceID)
		if err == nil && len(spans) >= minSpans {
			return spans
		}
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("%d spans", len(spans))
		}
		if s.Proc.Exited() {
			t.Fatalf("jaeger exited: %s", s.Proc.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("trace %s: fewer than %d spans in jaeger after 30s (%s)", traceID, minSpans, last)
	return nil
}

func (s *Server) fetch(traceID string) ([]Span, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.QueryURL+"/api/traces/"+traceID, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusNotFound {
		return nil, fmt.Errorf("not found yet")
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("query API: %s: %s", resp.Status, body)
	}
	var tr traceResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		return nil, fmt.Errorf("query API: %w", err)
	}
	var spans []Span
	for _, d := range tr.Data {
		for _, sp := range d.Spans {
			sp.Service = d.Processes[sp.ProcessID].ServiceName
			spans = append(spans, sp)
		}
	}
	return spans, nil
}
