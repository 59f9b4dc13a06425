package openfga_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	openfgav1 "github.com/openfga/api/proto/openfga/v1"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/mizuchi-uploadr/mizuchi/internal/authz/openfga"
	"github.com/mizuchi-uploadr/mizuchi/internal/config"
)

const wantTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func tracedContext() context.Context {
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	return trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled,
	}))
}

// recordingFGA answers every check with allowed and records the
// traceparent it was sent.
type recordingFGA struct {
	openfgav1.UnimplementedOpenFGAServiceServer
	got chan string
}

func (r *recordingFGA) Check(ctx context.Context, _ *openfgav1.CheckRequest) (*openfgav1.CheckResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	v := ""
	if tp := md.Get("traceparent"); len(tp) > 0 {
		v = tp[0]
	}
	r.got <- v
	return &openfgav1.CheckResponse{Allowed: true}, nil
}

func TestGRPCCallsCarryTraceContext(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	rec := &recordingFGA{got: make(chan string, 1)}
	openfgav1.RegisterOpenFGAServiceServer(srv, rec)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)

	a, err := openfga.New(context.Background(), openfga.Options{Config: config.OpenFGA{
		URL: l.Addr().String(), StoreID: "01ARZ3NDEKTSV4RRFFQ69G5FAV",
		User: "user:{subject}", Relation: "writer", Object: "bucket:{bucket}",
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if ok, err := a.Authorize(tracedContext(), input("alice", "a.txt")); !ok || err != nil {
		t.Fatalf("got (%v, %v)", ok, err)
	}
	if got := <-rec.got; got != wantTraceparent {
		t.Fatalf("traceparent = %q", got)
	}
}

func TestHTTPCallsCarryTraceContext(t *testing.T) {
	got := make(chan string, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("traceparent")
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/stores/01ARZ3NDEKTSV4RRFFQ69G5FAV/check":
			_, _ = w.Write([]byte(`{"allowed": true}`))
		case "/stores/01ARZ3NDEKTSV4RRFFQ69G5FAV/batch-check":
			_, _ = w.Write([]byte(`{"result": {"0": {"allowed": false}, "1": {"allowed": true}}}`))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	for _, objects := range [][]string{nil, {"prefix:{bucket}/{prefix}"}} {
		a, err := openfga.New(context.Background(), openfga.Options{
			Config: config.OpenFGA{
				Transport: "http", URL: srv.URL, StoreID: "01ARZ3NDEKTSV4RRFFQ69G5FAV",
				User: "user:{subject}", Relation: "writer", Object: "bucket:{bucket}",
			},
			Objects: objects,
		})
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := a.Authorize(tracedContext(), input("alice", "a/b.txt")); !ok || err != nil {
			t.Fatalf("objects %v: got (%v, %v)", objects, ok, err)
		}
		if h := <-got; h != wantTraceparent {
			t.Fatalf("objects %v: traceparent = %q", objects, h)
		}
		_ = a.Close()
	}
}

func TestBatchCheckResultsCombine(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		status    int
		wantAllow bool
		wantErr   bool
	}{
		{name: "all denied", body: `{"result":{"0":{"allowed":false},"1":{"allowed":false}}}`},
		{name: "one allowed", body: `{"result":{"0":{"allowed":false},"1":{"allowed":true}}}`, wantAllow: true},
		{name: "allowed despite an undecided one", body: `{"result":{"0":{"error":{"message":"boom"}},"1":{"allowed":true}}}`, wantAllow: true},
		{name: "denied and undecided", body: `{"result":{"0":{"error":{"message":"boom"}},"1":{"allowed":false}}}`, wantErr: true},
		{name: "result missing", body: `{"result":{"0":{"allowed":false}}}`, wantErr: true},
		{name: "unknown correlation id only", body: `{"result":{"7":{"allowed":true}}}`, wantErr: true},
		{name: "not json", body: `<html>`, wantErr: true},
		{name: "server error", body: `{"code":"internal_error"}`, status: 500, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.status != 0 {
					w.WriteHeader(tt.status)
				}
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			a, err := openfga.New(context.Background(), openfga.Options{
				Config: config.OpenFGA{
					Transport: "http", URL: srv.URL, StoreID: "01ARZ3NDEKTSV4RRFFQ69G5FAV",
					User: "user:{subject}", Relation: "writer", Object: "bucket:{bucket}",
				},
				Objects: []string{"prefix:{bucket}/{prefix}"},
			})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			ok, err := a.Authorize(context.Background(), input("alice", "a/b.txt"))
			if ok != tt.wantAllow || (err != nil) != tt.wantErr {
				t.Fatalf("got (%v, %v), want allow=%v error=%v", ok, err, tt.wantAllow, tt.wantErr)
			}
		})
	}
}
