package openfga_test

import (
	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/testproc"

	"context"
	"testing"
	"time"

	"github.com/mizuchi-uploadr/mizuchi/internal/authz"
	"github.com/mizuchi-uploadr/mizuchi/internal/authz/openfga"
	"github.com/mizuchi-uploadr/mizuchi/internal/config"
	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/openfgaserver"
)

func input(subject, key string) *authz.Input {
	return &authz.Input{
		Subject:  subject,
		Action:   authz.ActionUpload,
		Resource: authz.Resource{Bucket: "uploads", Key: key},
		Context:  authz.Context{Method: "PUT", Path: "/uploads/" + key, AuthMethod: "jwt"},
	}
}

func startServer(t *testing.T) *openfgaserver.Server {
	return openfgaserver.Start(t,
		openfgaserver.Tuple{User: "user:alice", Relation: "writer", Object: "bucket:uploads"},
		openfgaserver.Tuple{User: "user:bob", Relation: "writer", Object: "prefix:uploads/bob/shared/"},
	)
}

func newAuthorizer(t *testing.T, srv *openfgaserver.Server, transport string, mod func(*openfga.Options)) *openfga.Authorizer {
	t.Helper()
	url := srv.GRPCAddr
	if transport == openfga.TransportHTTP {
		url = srv.HTTPURL
	}
	opts := openfga.Options{
		Config: config.OpenFGA{
			Transport: transport, URL: url, StoreID: srv.StoreID, ModelID: srv.ModelID,
			User: "user:{subject}", Relation: "writer", Object: "bucket:{bucket}",
		},
		Timeout: 5 * time.Second,
	}
	if mod != nil {
		mod(&opts)
	}
	a, err := openfga.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a
}

func TestOpenFGADecisions(t *testing.T) {
	srv := startServer(t)
	bucketAndPrefix := func(o *openfga.Options) { o.Objects = []string{"prefix:{bucket}/{prefix}"} }
	ownPrefixContextual := func(o *openfga.Options) {
		o.Config.Object = "prefix:{bucket}/{prefix}"
		o.Config.ContextualTuples = []config.Tuple{{User: "user:{subject}", Relation: "writer", Object: "prefix:{bucket}/{subject}/"}}
	}
	tests := []struct {
		name    string
		mod     func(*openfga.Options)
		subject string
		key     string
		want    bool
	}{
		{name: "bucket writer", subject: "alice", key: "any/thing.txt", want: true},
		{name: "no tuple", subject: "carol", key: "carol/a.txt", want: false},
		{name: "prefix writer asked for the bucket", subject: "bob", key: "bob/shared/a.txt", want: false},
		{name: "batch: prefix writer", mod: bucketAndPrefix, subject: "bob", key: "bob/shared/a.txt", want: true},
		{name: "batch: outside the prefix", mod: bucketAndPrefix, subject: "bob", key: "bob/private/a.txt", want: false},
		{name: "batch: bucket writer", mod: bucketAndPrefix, subject: "alice", key: "x.txt", want: true},
		{name: "contextual tuple: own prefix", mod: ownPrefixContextual, subject: "carol", key: "carol/a.txt", want: true},
		{name: "contextual tuple: other prefix", mod: ownPrefixContextual, subject: "carol", key: "dave/a.txt", want: false},
		{name: "subject naming a userset", subject: "alice#writer", key: "a.txt", want: false},
		{name: "subject with type separator", subject: "bucket:uploads", key: "a.txt", want: false},
		{name: "key with space in object", mod: bucketAndPrefix, subject: "bob", key: "bob/shared dir/a.txt", want: false},
		// OpenFGA object ids cannot hold ':' or '#': no tuple can grant such a
		// prefix, so it is denied without asking.
		{name: "prefix with colon", mod: bucketAndPrefix, subject: "bob", key: "bob/shared/2024:01/a.txt", want: false},
		{name: "prefix with hash", mod: bucketAndPrefix, subject: "bob", key: "bob/shared#x/a.txt", want: false},
		// ... but a key that no template uses does not matter.
		{name: "unused key with colon", subject: "alice", key: "2024:01#x.txt", want: true},
	}
	for _, transport := range []string{openfga.TransportGRPC, openfga.TransportHTTP} {
		for _, tt := range tests {
			t.Run(transport+"/"+tt.name, func(t *testing.T) {
				a := newAuthorizer(t, srv, transport, tt.mod)
				got, err := a.Authorize(context.Background(), input(tt.subject, tt.key))
				if err != nil {
					t.Fatal(err)
				}
				if got != tt.want {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			})
		}
	}
}

func TestOpenFGAWithoutModelIDUsesLatestModel(t *testing.T) {
	srv := startServer(t)
	for _, transport := range []string{openfga.TransportGRPC, openfga.TransportHTTP} {
		a := newAuthorizer(t, srv, transport, func(o *openfga.Options) { o.Config.ModelID = "" })
		if ok, err := a.Authorize(context.Background(), input("alice", "a.txt")); !ok || err != nil {
			t.Fatalf("%s: got (%v, %v)", transport, ok, err)
		}
	}
}

func TestOpenFGAFailsClosedWhenServerCannotAnswer(t *testing.T) {
	stopped := startServer(t)
	stopped.Stop(t)
	hang := testproc.BlackHole(t).Addr
	tests := []struct {
		name      string
		transport string
		url       string
		objects   []string
	}{
		{name: "grpc, server stopped", transport: "grpc", url: stopped.GRPCAddr},
		{name: "grpc batch, server stopped", transport: "grpc", url: stopped.GRPCAddr, objects: []string{"prefix:{bucket}/{prefix}"}},
		{name: "http, server stopped", transport: "http", url: stopped.HTTPURL},
		{name: "http batch, server stopped", transport: "http", url: stopped.HTTPURL, objects: []string{"prefix:{bucket}/{prefix}"}},
		{name: "grpc, never answers", transport: "grpc", url: hang},
		{name: "http, never answers", transport: "http", url: "http://" + hang},
		{name: "http batch, never answers", transport: "http", url: "http://" + hang, objects: []string{"prefix:{bucket}/{prefix}"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := openfga.New(context.Background(), openfga.Options{
				Config: config.OpenFGA{
					Transport: tt.transport, URL: tt.url, StoreID: stopped.StoreID,
					User: "user:{subject}", Relation: "writer", Object: "bucket:{bucket}",
				},
				Objects: tt.objects,
				Timeout: 300 * time.Millisecond,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			got, err := a.Authorize(context.Background(), input("alice", "a/b.txt"))
			if err == nil || got {
				t.Fatalf("got (%v, %v), want an error and no allow", got, err)
			}
			t.Logf("error: %v", err)
		})
	}
}

func TestOpenFGAErrorsFromTheServerAreErrors(t *testing.T) {
	srv := startServer(t)
	for _, transport := range []string{openfga.TransportGRPC, openfga.TransportHTTP} {
		for name, mod := range map[string]func(*openfga.Options){
			"unknown relation":  func(o *openfga.Options) { o.Config.Relation = "owner" },
			"unknown store":     func(o *openfga.Options) { o.Config.StoreID = "01ARZ3NDEKTSV4RRFFQ69G5FAV" },
			"batch, bad object": func(o *openfga.Options) { o.Objects = []string{"folder:{bucket}"} },
		} {
			t.Run(transport+"/"+name, func(t *testing.T) {
				a := newAuthorizer(t, srv, transport, mod)
				got, err := a.Authorize(context.Background(), input("carol", "a.txt"))
				if err == nil || got {
					t.Fatalf("got (%v, %v), want an error", got, err)
				}
				t.Logf("error: %v", err)
				if containsSubject(err.Error()) {
					t.Fatalf("error quotes the subject: %v", err)
				}
			})
		}
	}
}

func containsSubject(s string) bool {
	for i := 0; i+5 <= len(s); i++ {
		if s[i:i+5] == "carol" {
			return true
		}
	}
	return false
}

func TestNewRejectsBadOptions(t *testing.T) {
	good := config.OpenFGA{URL: "127.0.0.1:8081", StoreID: "01ARZ3NDEKTSV4RRFFQ69G5FAV", User: "user:{subject}", Relation: "writer", Object: "bucket:{bucket}"}
	tests := []struct {
		name string
		mod  func(*config.OpenFGA)
	}{
		{name: "no url", mod: func(c *config.OpenFGA) { c.URL = "" }},
		{name: "no store", mod: func(c *config.OpenFGA) { c.StoreID = "" }},
		{name: "no user", mod: func(c *config.OpenFGA) { c.User = "" }},
		{name: "no object", mod: func(c *config.OpenFGA) { c.Object = "" }},
		{name: "unknown transport", mod: func(c *config.OpenFGA) { c.Transport = "carrier-pigeon" }},
		{name: "grpc with http url", mod: func(c *config.OpenFGA) { c.URL = "http://127.0.0.1:8080" }},
		{name: "http without url scheme", mod: func(c *config.OpenFGA) { c.Transport = "http" }},
		{name: "incomplete contextual tuple", mod: func(c *config.OpenFGA) { c.ContextualTuples = []config.Tuple{{User: "user:x"}} }},
		{name: "tls with http", mod: func(c *config.OpenFGA) { c.Transport, c.URL, c.TLS = "http", "https://127.0.0.1:8080", true }},
		{name: "ca_file with http url", mod: func(c *config.OpenFGA) {
			c.Transport, c.URL, c.CAFile = "http", "http://127.0.0.1:8080", "/etc/ssl/ca.pem"
		}},
		{name: "ca_file without tls", mod: func(c *config.OpenFGA) { c.CAFile = "/etc/ssl/ca.pem" }},
		{name: "ca_file missing", mod: func(c *config.OpenFGA) { c.TLS, c.CAFile = true, "/nonexistent/ca.pem" }},
		{name: "ca_file missing over https", mod: func(c *config.OpenFGA) {
			c.Transport, c.URL, c.CAFile = "http", "https://127.0.0.1:8080", "/nonexistent/ca.pem"
		}},
		{name: "token with a newline", mod: func(c *config.OpenFGA) { c.APIToken = "abc\ndef" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.mod(&cfg)
			if _, err := openfga.New(context.Background(), openfga.Options{Config: cfg}); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestPrefix(t *testing.T) {
	tests := []struct {
		name, key, want string
	}{
		{name: "nested", key: "a/b/c.txt", want: "a/b/"},
		{name: "top level", key: "c.txt", want: ""},
		{name: "trailing slash", key: "a/b/", want: "a/b/"},
		{name: "leading slash", key: "/c", want: "/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := openfga.Prefix(tt.key); got != tt.want {
				t.Fatalf("Prefix(%q) = %q, want %q", tt.key, got, tt.want)
			}
		})
	}
}

func BenchmarkCheckGRPC(b *testing.B) {
	srv := openfgaserver.Start(b, openfgaserver.Tuple{User: "user:alice", Relation: "writer", Object: "bucket:uploads"})
	a, err := openfga.New(context.Background(), openfga.Options{Config: config.OpenFGA{
		URL: srv.GRPCAddr, StoreID: srv.StoreID, ModelID: srv.ModelID,
		User: "user:{subject}", Relation: "writer", Object: "bucket:{bucket}",
	}})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	in := input("alice", "a/b.txt")
	for b.Loop() {
		if ok, err := a.Authorize(context.Background(), in); !ok || err != nil {
			b.Fatal("not allowed")
		}
	}
}
