package telemetry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
)

// recordingExporter keeps every span it is given and fails if told to,
// so the breaker opens and the console fallback logs the spans.
type recordingExporter struct {
	mu    sync.Mutex
	fail  bool
	spans []sdktrace.ReadOnlySpan
}

func (r *recordingExporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.spans = append(r.spans, spans...)
	if r.fail {
		return context.DeadlineExceeded
	}
	return nil
}

func (r *recordingExporter) Shutdown(context.Context) error { return nil }

// TestNoSecretInSpansOrLogs sends known secrets through the middleware,
// the HTTP transport and the gRPC interceptor and fails if any of them
// appears in a span name, attribute, event or status (healthy exporter,
// every span recorded) or in a log line (failing exporter, the console
// fallback logs every span).
func TestNoSecretInSpansOrLogs(t *testing.T) {
	tests := []struct {
		name    string
		failing bool
	}{
		{name: "spans as exported"},
		{name: "spans as logged by the console fallback", failing: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { secretScenario(t, tt.failing) })
	}
}

func secretScenario(t *testing.T, failing bool) {
	const (
		bearer       = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.SECRETJWTSIGNATURE"
		sigv4Sig     = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924aSECRET"
		secretKey    = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEYSECRET"
		sessionToken = "FwoGZXIvYXdzEBYaDSESSIONTOKENSECRET"
		subject      = "alice.subject@example.org"
		objectKey    = "private/medical-record-SECRETKEY.pdf"
		fgaToken     = "fga-api-token-SECRET"
		cookie       = "session=COOKIESECRET"
	)
	secrets := []string{bearer, sigv4Sig, secretKey, sessionToken, subject, objectKey, fgaToken, "COOKIESECRET", "SECRETJWTSIGNATURE"}

	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
	}))
	defer backend.Close()

	log, buf := newLogger()
	exp := &recordingExporter{fail: failing}
	tr, err := newTracing(t.Context(), config.Tracing{
		Enabled:  true,
		Fallback: "console",
		Sampling: config.Sampling{Strategy: "always"},
		Batch:    config.Batch{MaxQueueSize: 1024, MaxExportBatchSize: 64, ScheduledDelayMillis: 1},
	}, TracingOptions{Logger: log, Resilience: Resilience{MaxAttempts: 1, BreakerThreshold: 1, BreakerCooldown: time.Hour}}, exp)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: WrapTransport(nil, tr.Provider(), tr.Propagator())}
	icpt := UnaryClientInterceptor(tr.Provider(), tr.Propagator())
	tracer := tr.Provider().Tracer("test")

	h := Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		SetRoute(ctx, "uploads", "PutObject")
		SetObjectKey(ctx, objectKey)
		_, auth := tracer.Start(ctx, SpanAuthJWT)
		auth.SetAttributes(AttrAuthMethod.String("jwt"), AttrAuthResult.String("ok"),
			AttrEndUserHash.String(SubjectHash(tr.SubjectKey(), subject)))
		auth.End()
		ServerSpan(ctx).SetAttributes(AttrEndUserHash.String(SubjectHash(tr.SubjectKey(), subject)))

		presigned := backend.URL + "/bucket/" + url.PathEscape(objectKey) +
			"?X-Amz-Credential=AKIA%2F" + url.QueryEscape(secretKey) + "&X-Amz-Signature=" + sigv4Sig +
			"&X-Amz-Security-Token=" + sessionToken
		req, _ := http.NewRequestWithContext(ctx, http.MethodPut, presigned, strings.NewReader("data"))
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIA/x, Signature="+sigv4Sig)
		req.Header.Set("X-Amz-Security-Token", sessionToken)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
		}
		// A failing call: its error text repeats the URL.
		bad, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+refusedAddr(t)+"/jwks?token="+bearer, nil)
		if resp, err := client.Do(bad); err == nil {
			resp.Body.Close()
		}
		gctx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+fgaToken)
		_ = icpt(gctx, "/openfga.v1.OpenFGAService/Check", nil, nil, nil,
			func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error { return nil })
		w.WriteHeader(http.StatusOK)
	}), tr.MiddlewareOptions())

	target := "http://mizuchi.example/uploads/" + url.PathEscape(objectKey) +
		"?X-Amz-Signature=" + sigv4Sig + "&X-Amz-Security-Token=" + sessionToken
	req := httptest.NewRequest(http.MethodPut, target, strings.NewReader("payload"))
	req.Header.Set("Authorization", "Bearer "+bearer)
	req.Header.Set("X-Amz-Security-Token", sessionToken)
	req.Header.Set("Cookie", cookie)
	req.Header.Set("traceparent", knownParent)
	req.Header.Set("tracestate", "vendor=ok")
	rw := httptest.NewRecorder()
	h.ServeHTTP(rw, req)
	if rw.Code != http.StatusOK {
		t.Fatalf("status %d", rw.Code)
	}
	if err := tr.Shutdown(t.Context()); err != nil {
		t.Logf("shutdown: %v", err)
	}

	exp.mu.Lock()
	spans := exp.spans
	exp.mu.Unlock()
	logs := buf.String()
	if failing {
		spans = nil
		if n := strings.Count(logs, `"msg":"span"`); n != 5 {
			t.Fatalf("console fallback logged %d spans, want 5; the log check would miss some:\n%s", n, logs)
		}
		if !strings.Contains(logs, `enduser.hash`) {
			t.Errorf("enduser.hash not logged: the test would not notice a raw subject")
		}
	} else if len(spans) != 5 {
		t.Fatalf("recorded %d spans, want server, auth, two HTTP clients and a gRPC client", len(spans))
	}
	var recorded []string
	hashSeen := false
	for _, s := range spans {
		recorded = append(recorded, s.Name(), s.Status().Description)
		for _, kv := range s.Attributes() {
			recorded = append(recorded, string(kv.Key), kv.Value.Emit())
			if kv.Key == AttrEndUserHash {
				hashSeen = true
			}
		}
		for _, ev := range s.Events() {
			recorded = append(recorded, ev.Name)
			for _, kv := range ev.Attributes {
				recorded = append(recorded, string(kv.Key), kv.Value.Emit())
			}
		}
		for _, kv := range s.Resource().Attributes() {
			recorded = append(recorded, kv.Value.Emit())
		}
	}
	if !hashSeen && !failing {
		t.Errorf("enduser.hash missing: the test would not notice a raw subject")
	}
	all := strings.Join(recorded, "\n") + "\n" + logs
	for _, s := range secrets {
		for _, form := range []string{s, url.QueryEscape(s), url.PathEscape(s)} {
			if strings.Contains(all, form) {
				t.Errorf("secret %q found in spans or logs", form)
			}
		}
	}
}
