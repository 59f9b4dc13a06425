package telemetry

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
	grpccodes "google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func remoteParent(t *testing.T) context.Context {
	t.Helper()
	h := http.Header{}
	h.Set("traceparent", knownParent)
	ctx := NewPropagator().Extract(context.Background(), propagation.HeaderCarrier(h))
	if !trace.SpanContextFromContext(ctx).IsValid() {
		t.Fatal("test parent invalid")
	}
	return ctx
}

func TestTransportMakesClientSpanAndInjects(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		wantError bool
	}{
		{name: "success", status: 200},
		{name: "client error is an error on a client span", status: 403, wantError: true},
		{name: "server error", status: 503, wantError: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gotParent string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				gotParent = r.Header.Get("traceparent")
				w.WriteHeader(tt.status)
			}))
			defer srv.Close()
			tp, rec := newRecorder(t)
			client := &http.Client{Transport: WrapTransport(nil, tp, nil)}
			req, _ := http.NewRequestWithContext(remoteParent(t), http.MethodPut, srv.URL+"/bucket/secret-key?partNumber=1&X-Amz-Signature=abc", nil)
			req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=x")
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if req.Header.Get("traceparent") != "" {
				t.Errorf("caller's request was modified")
			}
			s := onlySpan(t, rec)
			if s.SpanKind() != trace.SpanKindClient || s.Name() != "PUT" {
				t.Errorf("span %q kind %v", s.Name(), s.SpanKind())
			}
			if s.SpanContext().TraceID().String() != knownTraceID || s.Parent().SpanID().String() != knownSpanID {
				t.Errorf("span not a child of the incoming context")
			}
			want := "00-" + knownTraceID + "-" + s.SpanContext().SpanID().String() + "-01"
			if gotParent != want {
				t.Errorf("server saw traceparent %q, want %q", gotParent, want)
			}
			host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
			p, _ := strconv.Atoi(port)
			got := attrMap(s.Attributes())
			for k, v := range map[attribute.Key]any{
				AttrHTTPRequestMethod: "PUT", AttrServerAddress: host, AttrServerPort: int64(p),
				AttrHTTPResponseStatusCode: int64(tt.status), AttrURLScheme: "http",
			} {
				if got[k].AsInterface() != v {
					t.Errorf("%s = %v, want %v", k, got[k].AsInterface(), v)
				}
			}
			for _, k := range []attribute.Key{"url.full", AttrURLPath, "url.query"} {
				if _, ok := got[k]; ok {
					t.Errorf("attribute %s recorded", k)
				}
			}
			if (s.Status().Code == codes.Error) != tt.wantError {
				t.Errorf("status %v", s.Status())
			}
		})
	}
}

func TestTransportErrorIsClassifiedWithoutURL(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens: connection refused
	tp, rec := newRecorder(t)
	client := &http.Client{Transport: WrapTransport(nil, tp, nil)}
	resp, err := client.Get("http://" + addr + "/b/k?X-Amz-Signature=deadbeef")
	if err == nil {
		resp.Body.Close()
		t.Fatal("expected an error")
	}
	s := onlySpan(t, rec)
	if got := attrMap(s.Attributes())[AttrErrorType].AsString(); got != "connection_refused" {
		t.Errorf("error.type = %q", got)
	}
	if s.Status().Code != codes.Error || s.Status().Description != "connection_refused" {
		t.Errorf("status = %v", s.Status())
	}
}

func TestDisabledTransportStillPropagates(t *testing.T) {
	tests := []struct {
		name string
		ctx  func(t *testing.T) context.Context
		want string
	}{
		{name: "incoming context is forwarded", ctx: remoteParent, want: knownParent},
		{name: "no context, no header", ctx: func(*testing.T) context.Context { return context.Background() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got = r.Header.Get("traceparent")
			}))
			defer srv.Close()
			rt := WrapTransport(nil, noop.NewTracerProvider(), nil)
			if _, ok := rt.(*propagatingTransport); !ok {
				t.Fatalf("got %T", rt)
			}
			req, _ := http.NewRequestWithContext(tt.ctx(t), http.MethodGet, srv.URL, nil)
			resp, err := (&http.Client{Transport: rt}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got != tt.want {
				t.Errorf("traceparent = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestUnaryClientInterceptor(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		wantCode int64
	}{
		{name: "ok", wantCode: 0},
		{name: "unavailable", err: status.Error(grpccodes.Unavailable, "down"), wantCode: int64(grpccodes.Unavailable)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp, rec := newRecorder(t)
			icpt := UnaryClientInterceptor(tp, nil)
			var md metadata.MD
			ctx := metadata.AppendToOutgoingContext(remoteParent(t), "x-other", "1")
			err := icpt(ctx, "/openfga.v1.OpenFGAService/Check", nil, nil, nil,
				func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, opts ...grpc.CallOption) error {
					md, _ = metadata.FromOutgoingContext(ctx)
					return tt.err
				})
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v", err)
			}
			s := onlySpan(t, rec)
			if s.Name() != "openfga.v1.OpenFGAService/Check" || s.SpanKind() != trace.SpanKindClient {
				t.Errorf("span %q %v", s.Name(), s.SpanKind())
			}
			got := attrMap(s.Attributes())
			if got[AttrRPCService].AsString() != "openfga.v1.OpenFGAService" || got[AttrRPCMethod].AsString() != "Check" ||
				got[AttrRPCGRPCStatusCode].AsInt64() != tt.wantCode {
				t.Errorf("attributes %v", s.Attributes())
			}
			want := "00-" + knownTraceID + "-" + s.SpanContext().SpanID().String() + "-01"
			if v := md.Get("traceparent"); len(v) != 1 || v[0] != want {
				t.Errorf("metadata traceparent = %v, want %s", v, want)
			}
			if v := md.Get("x-other"); len(v) != 1 {
				t.Errorf("existing metadata lost: %v", md)
			}
		})
	}
}
