package telemetry

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/jaeger"
)

// TestSpansArriveInJaeger exports over OTLP/gRPC and OTLP/HTTP to a real
// Jaeger and reads the trace back from its query API under the trace id
// the client sent, with the expected parent/child structure, while the
// backend sees the same trace id in its request headers.
func TestSpansArriveInJaeger(t *testing.T) {
	j := jaeger.Start(t)
	tests := []struct {
		name        string
		protocol    string
		endpoint    string
		compression string
		traceID     string
	}{
		{name: "grpc", protocol: "grpc", endpoint: "http://" + j.OTLPGRPC, compression: "gzip", traceID: "0af7651916cd43dd8448eb211c80319c"},
		{name: "http/protobuf", protocol: "http/protobuf", endpoint: "http://" + j.OTLPHTTP, compression: "none", traceID: "1bf7651916cd43dd8448eb211c80319d"},
		{name: "http/protobuf with path and gzip", protocol: "http/protobuf", endpoint: "http://" + j.OTLPHTTP + "/v1/traces", compression: "gzip", traceID: "2cf7651916cd43dd8448eb211c80319e"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var backendSaw string
			backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				backendSaw = r.Header.Get("traceparent")
				mu.Unlock()
			}))
			defer backend.Close()

			m := newTestMetrics(t)
			tr, err := NewTracing(t.Context(), config.Tracing{
				Enabled:     true,
				ServiceName: "mizuchi-test",
				OTLP:        config.OTLP{Endpoint: tt.endpoint, Protocol: tt.protocol, TimeoutSeconds: 5, Compression: tt.compression},
				Sampling:    config.Sampling{Strategy: "parent_based", Ratio: 0},
				Batch:       config.Batch{MaxQueueSize: 256, MaxExportBatchSize: 64, ScheduledDelayMillis: 50},
			}, TracingOptions{Metrics: m, Version: "9.9.9"})
			if err != nil {
				t.Fatal(err)
			}
			client := &http.Client{Transport: WrapTransport(nil, tr.Provider(), tr.Propagator())}
			h := Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ctx := r.Context()
				SetRoute(ctx, "uploads", "PutObject")
				_, auth := tr.Provider().Tracer("auth").Start(ctx, SpanAuthJWT)
				auth.SetAttributes(AttrEndUserHash.String(SubjectHash(tr.SubjectKey(), "alice")))
				auth.End()
				req, _ := http.NewRequestWithContext(ctx, http.MethodPut, backend.URL+"/bucket/key", strings.NewReader("data"))
				resp, err := client.Do(req)
				if err != nil {
					t.Errorf("backend call: %v", err)
					return
				}
				resp.Body.Close()
			}), tr.MiddlewareOptions())

			req := httptest.NewRequest(http.MethodPut, "http://mizuchi.test/uploads/key", strings.NewReader("data"))
			// Sampled parent: parent_based with ratio 0 must still record it.
			req.Header.Set("traceparent", "00-"+tt.traceID+"-"+knownSpanID+"-01")
			h.ServeHTTP(httptest.NewRecorder(), req)
			if err := tr.Shutdown(t.Context()); err != nil {
				t.Fatalf("shutdown (flush): %v", err)
			}

			spans := j.TraceN(t, tt.traceID, 3)
			byName := map[string]jaeger.Span{}
			for _, s := range spans {
				if s.TraceID != tt.traceID {
					t.Errorf("span %s in trace %s", s.OperationName, s.TraceID)
				}
				if s.Service != "mizuchi-test" {
					t.Errorf("span %s service %q", s.OperationName, s.Service)
				}
				byName[s.OperationName] = s
			}
			server, ok := byName["PUT /uploads"]
			if !ok {
				t.Fatalf("no server span; got %v", names(spans))
			}
			if server.ParentSpanID() != knownSpanID {
				t.Errorf("server span parent = %q, want the caller's %s", server.ParentSpanID(), knownSpanID)
			}
			if v, _ := server.Tag("http.route"); v != "/uploads/{key}" {
				t.Errorf("http.route = %v", v)
			}
			for _, child := range []string{SpanAuthJWT, "PUT"} {
				s, ok := byName[child]
				if !ok {
					t.Fatalf("no %s span; got %v", child, names(spans))
				}
				if s.ParentSpanID() != server.SpanID {
					t.Errorf("%s parent = %s, want server span %s", child, s.ParentSpanID(), server.SpanID)
				}
			}
			mu.Lock()
			saw := backendSaw
			mu.Unlock()
			if want := "00-" + tt.traceID + "-" + byName["PUT"].SpanID + "-01"; saw != want {
				t.Errorf("backend saw traceparent %q, want %q", saw, want)
			}
			if st := tr.State(); st != StateOK {
				t.Errorf("exporter state %s", st)
			}
		})
	}
}

func names(spans []jaeger.Span) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.OperationName)
	}
	return out
}
