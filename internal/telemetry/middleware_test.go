package telemetry

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

const (
	knownTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	knownSpanID  = "00f067aa0ba902b7"
	knownParent  = "00-" + knownTraceID + "-" + knownSpanID + "-01"
)

func TestServerSpanNamesAndAttributes(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		target     string
		recordKeys bool
		route      func(r *http.Request)
		status     int
		wantName   string
		want       map[attribute.Key]any
		absent     []attribute.Key
		wantError  bool
	}{
		{
			name: "put object routed", method: http.MethodPut, target: "/uploads/dir/a.txt?x-id=PutObject",
			route: func(r *http.Request) {
				SetRoute(r.Context(), "uploads", "PutObject")
				SetObjectKey(r.Context(), "dir/a.txt")
			},
			status:   200,
			wantName: "PUT /uploads",
			want: map[attribute.Key]any{
				AttrHTTPRequestMethod: "PUT", AttrHTTPRoute: "/uploads/{key}", AttrBucket: "uploads",
				AttrOperation: "PutObject", AttrHTTPResponseStatusCode: int64(200), AttrURLScheme: "http",
				AttrServerAddress: "example.com", AttrNetworkProtocolVersion: "1.1",
			},
			absent: []attribute.Key{AttrURLPath, "url.full", "url.query", AttrObjectKey},
		},
		{
			name: "object keys recorded when enabled", method: http.MethodPut, target: "/uploads/dir/a.txt?partNumber=1",
			recordKeys: true,
			route: func(r *http.Request) {
				SetRoute(r.Context(), "uploads", "UploadPart")
				SetObjectKey(r.Context(), "dir/a.txt")
			},
			status:   200,
			wantName: "PUT /uploads",
			want:     map[attribute.Key]any{AttrURLPath: "/uploads/dir/a.txt", AttrObjectKey: "dir/a.txt"},
			absent:   []attribute.Key{"url.full", "url.query"},
		},
		{
			name: "bucket level route", method: http.MethodHead, target: "/uploads",
			route:    func(r *http.Request) { SetRoute(r.Context(), "uploads", "HeadBucket") },
			status:   200,
			wantName: "HEAD /uploads",
			want:     map[attribute.Key]any{AttrHTTPRoute: "/uploads"},
		},
		{
			name: "unrouted keeps method name", method: http.MethodGet, target: "/nowhere/x",
			status: 404, wantName: "GET",
			want:   map[attribute.Key]any{AttrHTTPResponseStatusCode: int64(404)},
			absent: []attribute.Key{AttrHTTPRoute, AttrURLPath, AttrErrorType},
		},
		{
			name: "server error marks span", method: http.MethodPost, target: "/uploads/a?uploads",
			route:     func(r *http.Request) { SetRoute(r.Context(), "uploads", "CreateMultipartUpload") },
			status:    503,
			wantName:  "POST /uploads",
			want:      map[attribute.Key]any{AttrErrorType: "503", AttrHTTPResponseStatusCode: int64(503)},
			wantError: true,
		},
		{
			name: "unknown method", method: "FROB", target: "/uploads/a",
			status: 405, wantName: "HTTP",
			want: map[attribute.Key]any{AttrHTTPRequestMethod: "_OTHER"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp, rec := newRecorder(t)
			h := Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.route != nil {
					tt.route(r)
				}
				w.WriteHeader(tt.status)
			}), MiddlewareOptions{Provider: tp, RecordObjectKeys: tt.recordKeys})
			req := httptest.NewRequest(tt.method, "http://example.com"+tt.target, strings.NewReader("body"))
			rw := httptest.NewRecorder()
			h.ServeHTTP(rw, req)
			if rw.Code != tt.status {
				t.Fatalf("status = %d", rw.Code)
			}
			s := onlySpan(t, rec)
			if s.Name() != tt.wantName {
				t.Errorf("name = %q, want %q", s.Name(), tt.wantName)
			}
			if s.SpanKind() != trace.SpanKindServer {
				t.Errorf("kind = %v", s.SpanKind())
			}
			got := attrMap(s.Attributes())
			for k, want := range tt.want {
				if v, ok := got[k]; !ok || v.AsInterface() != want {
					t.Errorf("attribute %s = %v, want %v", k, v.AsInterface(), want)
				}
			}
			for _, k := range tt.absent {
				if v, ok := got[k]; ok {
					t.Errorf("attribute %s present (%v)", k, v.AsInterface())
				}
			}
			if (s.Status().Code == codes.Error) != tt.wantError {
				t.Errorf("status = %v, want error %v", s.Status(), tt.wantError)
			}
		})
	}
}

func TestIncomingTraceContext(t *testing.T) {
	tests := []struct {
		name        string
		traceparent string
		wantParent  bool
	}{
		{name: "valid header continues the trace", traceparent: knownParent, wantParent: true},
		{name: "garbage starts a new root", traceparent: "not-a-traceparent"},
		{name: "all-zero trace id starts a new root", traceparent: "00-00000000000000000000000000000000-00f067aa0ba902b7-01"},
		{name: "all-zero span id starts a new root", traceparent: "00-" + knownTraceID + "-0000000000000000-01"},
		{name: "version ff starts a new root", traceparent: "ff-" + knownTraceID + "-" + knownSpanID + "-01"},
		{name: "truncated starts a new root", traceparent: "00-" + knownTraceID[:10]},
		{name: "uppercase hex starts a new root", traceparent: "00-" + strings.ToUpper(knownTraceID) + "-" + knownSpanID + "-01"},
		{name: "absent starts a new root"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp, rec := newRecorder(t)
			h := Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusOK)
			}), MiddlewareOptions{Provider: tp})
			req := httptest.NewRequest(http.MethodPut, "http://example.com/uploads/a", nil)
			if tt.traceparent != "" {
				req.Header.Set("traceparent", tt.traceparent)
				req.Header.Set("tracestate", "vendor=value")
			}
			rw := httptest.NewRecorder()
			h.ServeHTTP(rw, req)
			if rw.Code != http.StatusOK {
				t.Fatalf("status = %d: a bad traceparent must never fail a request", rw.Code)
			}
			s := onlySpan(t, rec)
			if tt.wantParent {
				if got := s.SpanContext().TraceID().String(); got != knownTraceID {
					t.Errorf("trace id = %s, want %s", got, knownTraceID)
				}
				if got := s.Parent().SpanID().String(); got != knownSpanID || !s.Parent().IsRemote() {
					t.Errorf("parent = %s remote=%v", got, s.Parent().IsRemote())
				}
				if got := s.SpanContext().TraceState().Get("vendor"); got != "value" {
					t.Errorf("tracestate vendor = %q", got)
				}
				return
			}
			if s.Parent().IsValid() {
				t.Errorf("span has parent %v, want a new root", s.Parent())
			}
			if !s.SpanContext().IsValid() {
				t.Errorf("span context invalid")
			}
		})
	}
}

func TestDisabledMiddlewarePassesTraceContextThrough(t *testing.T) {
	var got trace.SpanContext
	var hadState bool
	h := Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = trace.SpanContextFromContext(r.Context())
		hadState = requestSpanFrom(r.Context()) != nil
		// Helpers are safe no-ops without a server span.
		SetRoute(r.Context(), "b", "PutObject")
		SetObjectKey(r.Context(), "k")
		RecordUploadWait(r.Context(), time.Second, time.Second)
	}), MiddlewareOptions{Provider: noop.NewTracerProvider()})
	if _, ok := h.(*passThroughMiddleware); !ok {
		t.Fatalf("disabled tracing built %T, want the pass-through middleware", h)
	}
	req := httptest.NewRequest(http.MethodPut, "http://example.com/b/k", nil)
	req.Header.Set("traceparent", knownParent)
	h.ServeHTTP(httptest.NewRecorder(), req)
	if got.TraceID().String() != knownTraceID || got.SpanID().String() != knownSpanID {
		t.Errorf("context = %v, want the incoming trace context", got)
	}
	if hadState {
		t.Errorf("pass-through middleware created span state")
	}
}

func TestRecordUploadWait(t *testing.T) {
	tp, rec := newRecorder(t)
	h := Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		RecordUploadWait(r.Context(), 1500*time.Millisecond, 250*time.Millisecond)
		ServerSpan(r.Context()).SetAttributes(AttrEndUserHash.String(SubjectHash([]byte("k"), "alice")))
	}), MiddlewareOptions{Provider: tp})
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPut, "/b/k", nil))
	got := attrMap(onlySpan(t, rec).Attributes())
	if v := got[AttrUploadClientWait].AsFloat64(); v != 1.5 {
		t.Errorf("client wait = %v", v)
	}
	if v := got[AttrUploadBackendWait].AsFloat64(); v != 0.25 {
		t.Errorf("backend wait = %v", v)
	}
	if v := got[AttrEndUserHash].AsString(); len(v) != 32 {
		t.Errorf("enduser.hash = %q", v)
	}
}

func TestSubjectHash(t *testing.T) {
	tests := []struct {
		name    string
		key     string
		subject string
		other   string
		otherK  string
	}{
		{name: "different subjects differ", key: "k1", subject: "alice", other: "bob", otherK: "k1"},
		{name: "different keys differ", key: "k1", subject: "alice", other: "alice", otherK: "k2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := SubjectHash([]byte(tt.key), tt.subject)
			b := SubjectHash([]byte(tt.otherK), tt.other)
			if a == b {
				t.Errorf("hashes equal: %s", a)
			}
			if a != SubjectHash([]byte(tt.key), tt.subject) {
				t.Errorf("hash not deterministic")
			}
			if len(a) != 32 || strings.Contains(a, tt.subject) {
				t.Errorf("hash = %q", a)
			}
		})
	}
}

func TestStatusRecorderUnwraps(t *testing.T) {
	tp, _ := newRecorder(t)
	h := Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("flush through middleware: %v", err)
		}
	}), MiddlewareOptions{Provider: tp})
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPut, "/b/k", nil))
}
