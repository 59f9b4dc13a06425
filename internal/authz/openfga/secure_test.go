package openfga_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	openfgav1 "github.com/openfga/api/proto/openfga/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/mizuchi-uploadr/mizuchi/internal/authz/openfga"
	"github.com/mizuchi-uploadr/mizuchi/internal/config"
	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/openfgaserver"
)

const presharedKey = "mizuchi-test-preshared-key-0123456789"

var secureTuples = []openfgaserver.Tuple{
	{User: "user:alice", Relation: "writer", Object: "bucket:uploads"},
	{User: "user:bob", Relation: "writer", Object: "prefix:uploads/bob/shared/"},
}

// secureConfig is the connection to srv over transport, with TLS when the
// server has a CA.
func secureConfig(srv *openfgaserver.Server, transport string) config.OpenFGA {
	cfg := config.OpenFGA{
		Transport: transport, URL: srv.GRPCAddr, StoreID: srv.StoreID, ModelID: srv.ModelID,
		User: "user:{subject}", Relation: "writer", Object: "bucket:{bucket}",
		APIToken: presharedKey, CAFile: srv.CAFile,
	}
	if transport == openfga.TransportHTTP {
		cfg.URL = srv.HTTPURL
	} else {
		cfg.TLS = srv.CAFile != ""
	}
	return cfg
}

func newSecure(t *testing.T, cfg config.OpenFGA, objects ...string) *openfga.Authorizer {
	t.Helper()
	a, err := openfga.New(context.Background(), openfga.Options{Config: cfg, Objects: objects, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a
}

func TestOpenFGAOverTLSWithPresharedKey(t *testing.T) {
	srv := openfgaserver.StartWith(t, openfgaserver.Options{PresharedKey: presharedKey, TLS: true}, secureTuples...)
	if !strings.HasPrefix(srv.HTTPURL, "https://") || srv.CAFile == "" {
		t.Fatalf("server not on TLS: %s", srv.HTTPURL)
	}
	otherCA := openfgaserver.NewCA(t).CertFile
	decisions := []struct {
		name    string
		objects []string
		subject string
		key     string
		want    bool
	}{
		{name: "allow", subject: "alice", key: "a.txt", want: true},
		{name: "deny", subject: "carol", key: "a.txt", want: false},
		{name: "batch allow", objects: []string{"prefix:{bucket}/{prefix}"}, subject: "bob", key: "bob/shared/a.txt", want: true},
		{name: "batch deny", objects: []string{"prefix:{bucket}/{prefix}"}, subject: "bob", key: "bob/private/a.txt", want: false},
	}
	failures := []struct {
		name string
		mod  func(*config.OpenFGA)
	}{
		{name: "wrong token", mod: func(c *config.OpenFGA) { c.APIToken = "not-the-key" }},
		{name: "no token", mod: func(c *config.OpenFGA) { c.APIToken = "" }},
		{name: "system roots only", mod: func(c *config.OpenFGA) { c.CAFile = "" }},
		{name: "another CA", mod: func(c *config.OpenFGA) { c.CAFile = otherCA }},
	}
	for _, transport := range []string{openfga.TransportGRPC, openfga.TransportHTTP} {
		for _, d := range decisions {
			t.Run(transport+"/"+d.name, func(t *testing.T) {
				a := newSecure(t, secureConfig(srv, transport), d.objects...)
				got, err := a.Authorize(context.Background(), input(d.subject, d.key))
				if err != nil || got != d.want {
					t.Fatalf("got (%v, %v), want %v", got, err, d.want)
				}
			})
		}
		for _, f := range failures {
			for _, objects := range [][]string{nil, {"prefix:{bucket}/{prefix}"}} {
				name := transport + "/" + f.name
				if objects != nil {
					name += "/batch"
				}
				t.Run(name, func(t *testing.T) {
					cfg := secureConfig(srv, transport)
					f.mod(&cfg)
					a := newSecure(t, cfg, objects...)
					got, err := a.Authorize(context.Background(), input("alice", "a.txt"))
					if err == nil || got {
						t.Fatalf("got (%v, %v), want an error", got, err)
					}
					t.Logf("error: %v", err)
					if strings.Contains(err.Error(), presharedKey) || strings.Contains(err.Error(), "not-the-key") {
						t.Fatalf("error quotes the token: %v", err)
					}
				})
			}
		}
	}
}

func TestOpenFGAPresharedKeyOverPlaintext(t *testing.T) {
	srv := openfgaserver.StartWith(t, openfgaserver.Options{PresharedKey: presharedKey}, secureTuples...)
	for _, transport := range []string{openfga.TransportGRPC, openfga.TransportHTTP} {
		t.Run(transport+"/token", func(t *testing.T) {
			a := newSecure(t, secureConfig(srv, transport))
			if got, err := a.Authorize(context.Background(), input("alice", "a.txt")); err != nil || !got {
				t.Fatalf("got (%v, %v), want allowed", got, err)
			}
		})
		t.Run(transport+"/no token", func(t *testing.T) {
			cfg := secureConfig(srv, transport)
			cfg.APIToken = ""
			a := newSecure(t, cfg)
			if got, err := a.Authorize(context.Background(), input("alice", "a.txt")); err == nil || got {
				t.Fatalf("got (%v, %v), want an error", got, err)
			}
		})
	}
}

func TestOpenFGAPlaintextClientToTLSServerFails(t *testing.T) {
	srv := openfgaserver.StartWith(t, openfgaserver.Options{TLS: true}, secureTuples...)
	cfg := secureConfig(srv, openfga.TransportGRPC)
	cfg.TLS, cfg.CAFile = false, ""
	a := newSecure(t, cfg)
	if got, err := a.Authorize(context.Background(), input("alice", "a.txt")); err == nil || got {
		t.Fatalf("got (%v, %v), want an error", got, err)
	}
}

// authRecorder answers every check with allowed and records the
// authorization metadata it was sent.
type authRecorder struct {
	openfgav1.UnimplementedOpenFGAServiceServer
	got chan string
}

func (r *authRecorder) record(ctx context.Context) {
	md, _ := metadata.FromIncomingContext(ctx)
	v := ""
	if a := md.Get("authorization"); len(a) > 0 {
		v = a[0]
	}
	r.got <- v
}

func (r *authRecorder) Check(ctx context.Context, _ *openfgav1.CheckRequest) (*openfgav1.CheckResponse, error) {
	r.record(ctx)
	return &openfgav1.CheckResponse{Allowed: true}, nil
}

func (r *authRecorder) BatchCheck(ctx context.Context, _ *openfgav1.BatchCheckRequest) (*openfgav1.BatchCheckResponse, error) {
	r.record(ctx)
	return &openfgav1.BatchCheckResponse{Result: map[string]*openfgav1.BatchCheckSingleResult{
		"0": {CheckResult: &openfgav1.BatchCheckSingleResult_Allowed{Allowed: true}},
	}}, nil
}

func TestBearerHeaderOnEveryCall(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	rec := &authRecorder{got: make(chan string, 1)}
	openfgav1.RegisterOpenFGAServiceServer(gs, rec)
	go func() { _ = gs.Serve(l) }()
	t.Cleanup(gs.Stop)

	hgot := make(chan string, 1)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hgot <- r.Header.Get("Authorization")
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, "/batch-check") {
			_, _ = w.Write([]byte(`{"result": {"0": {"allowed": true}}}`))
			return
		}
		_, _ = w.Write([]byte(`{"allowed": true}`))
	}))
	t.Cleanup(hs.Close)

	const store = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
	tests := []struct {
		name      string
		transport string
		token     string
		client    *http.Client
		objects   []string
		want      string
	}{
		{name: "grpc check", transport: "grpc", token: "k1", want: "Bearer k1"},
		{name: "grpc batch", transport: "grpc", token: "k1", objects: []string{"prefix:{bucket}/{prefix}"}, want: "Bearer k1"},
		{name: "grpc without token", transport: "grpc", want: ""},
		{name: "http check", transport: "http", token: "k2", want: "Bearer k2"},
		{name: "http batch", transport: "http", token: "k2", objects: []string{"prefix:{bucket}/{prefix}"}, want: "Bearer k2"},
		{name: "http, caller's client", transport: "http", token: "k3", client: &http.Client{}, want: "Bearer k3"},
		{name: "http batch, caller's client", transport: "http", token: "k3", client: &http.Client{}, objects: []string{"prefix:{bucket}/{prefix}"}, want: "Bearer k3"},
		{name: "http without token", transport: "http", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url, got := l.Addr().String(), rec.got
			if tt.transport == "http" {
				url, got = hs.URL, hgot
			}
			a, err := openfga.New(context.Background(), openfga.Options{
				Config: config.OpenFGA{
					Transport: tt.transport, URL: url, StoreID: store, APIToken: tt.token,
					User: "user:{subject}", Relation: "writer", Object: "bucket:{bucket}",
				},
				Objects:    tt.objects,
				HTTPClient: tt.client,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			if ok, err := a.Authorize(context.Background(), input("alice", "a/b.txt")); !ok || err != nil {
				t.Fatalf("got (%v, %v)", ok, err)
			}
			if h := <-got; h != tt.want {
				t.Fatalf("authorization = %q, want %q", h, tt.want)
			}
		})
	}
}

func BenchmarkCheckSecure(b *testing.B) {
	srv := openfgaserver.StartWith(b, openfgaserver.Options{PresharedKey: presharedKey, TLS: true}, secureTuples...)
	for _, transport := range []string{openfga.TransportGRPC, openfga.TransportHTTP} {
		b.Run(transport, func(b *testing.B) {
			a, err := openfga.New(context.Background(), openfga.Options{Config: secureConfig(srv, transport)})
			if err != nil {
				b.Fatal(err)
			}
			defer a.Close()
			in := input("alice", "a/b.txt")
			for b.Loop() {
				if ok, err := a.Authorize(context.Background(), in); !ok || err != nil {
					b.Fatalf("got (%v, %v)", ok, err)
				}
			}
		})
	}
}
