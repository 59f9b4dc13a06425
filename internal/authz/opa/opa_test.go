package opa_test

import (
	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/testproc"

	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/mizuchi-uploadr/mizuchi/internal/authz"
	"github.com/mizuchi-uploadr/mizuchi/internal/authz/opa"
	"github.com/mizuchi-uploadr/mizuchi/internal/config"
	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/opaserver"
)

const samplePolicyFile = "../../../examples/policy.rego"

func samplePolicy(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(samplePolicyFile)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func input(subject, action, key, authMethod string, claims map[string]any) *authz.Input {
	return &authz.Input{
		Subject:  subject,
		Action:   action,
		Resource: authz.Resource{Bucket: "uploads", Key: key},
		Context: authz.Context{
			Method: "PUT", Path: "/uploads/" + key, IP: "127.0.0.1",
			ContentLength: 5, ContentType: "text/plain", Claims: claims, AuthMethod: authMethod,
		},
	}
}

// samplePolicyCases are the decisions of examples/policy.rego.
var samplePolicyCases = []struct {
	name string
	in   *authz.Input
	want bool
}{
	{name: "own prefix", in: input("alice", authz.ActionUpload, "alice/a.txt", "jwt", map[string]any{"sub": "alice"}), want: true},
	{name: "own prefix multipart part", in: input("alice", authz.ActionUploadPart, "alice/big.bin", "sigv4", nil), want: true},
	{name: "someone else's prefix", in: input("alice", authz.ActionUpload, "bob/a.txt", "jwt", map[string]any{"sub": "alice"}), want: false},
	{name: "prefix without slash", in: input("alice", authz.ActionUpload, "alice-evil/a.txt", "jwt", nil), want: false},
	{name: "top level key", in: input("alice", authz.ActionUpload, "a.txt", "jwt", nil), want: false},
	{name: "anonymous", in: input("anonymous", authz.ActionUpload, "anonymous/a.txt", "anonymous", nil), want: false},
	{name: "subject with slash", in: input("alice/x", authz.ActionUpload, "alice/x/a.txt", "jwt", nil), want: false},
	{name: "unknown action", in: input("alice", "delete", "alice/a.txt", "jwt", nil), want: false},
	{name: "admin claim", in: input("root", authz.ActionUpload, "bob/a.txt", "jwt", map[string]any{"admin": true}), want: true},
	{name: "admin claim as string", in: input("root", authz.ActionUpload, "bob/a.txt", "jwt", map[string]any{"admin": "true"}), want: false},
	{name: "admin claim false", in: input("root", authz.ActionUpload, "bob/a.txt", "jwt", map[string]any{"admin": false}), want: false},
}

func TestSamplePolicyDecisions(t *testing.T) {
	srv := opaserver.Start(t, samplePolicy(t))
	remote, err := opa.NewRemote(opa.RemoteOptions{URL: srv.URL, PolicyPath: "mizuchi/allow"})
	if err != nil {
		t.Fatal(err)
	}
	embedded, err := opa.NewEmbedded(context.Background(), opa.EmbeddedOptions{PolicyFile: samplePolicyFile})
	if err != nil {
		t.Fatal(err)
	}
	engines := []struct {
		name string
		a    authz.Authorizer
	}{{"remote", remote}, {"embedded", embedded}}
	for _, e := range engines {
		for _, tt := range samplePolicyCases {
			t.Run(e.name+"/"+tt.name, func(t *testing.T) {
				got, err := e.a.Authorize(context.Background(), tt.in)
				if err != nil {
					t.Fatal(err)
				}
				if got != tt.want {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			})
		}
	}
	if n := srv.Decisions(); n != int64(len(samplePolicyCases)) {
		t.Fatalf("server saw %d decisions, want %d", n, len(samplePolicyCases))
	}
}

func TestRemoteResultOtherThanTrueIsDeny(t *testing.T) {
	srv := opaserver.Start(t, `package mizuchi

stringy := "true"

number := 1

falsy := false
`)
	tests := []struct {
		name string
		path string
	}{
		{name: "string result", path: "mizuchi/stringy"},
		{name: "number result", path: "mizuchi/number"},
		{name: "false", path: "mizuchi/falsy"},
		{name: "undefined document", path: "mizuchi/missing"},
		{name: "undefined package", path: "nothing/here"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := opa.NewRemote(opa.RemoteOptions{URL: srv.URL, PolicyPath: tt.path})
			if err != nil {
				t.Fatal(err)
			}
			got, err := r.Authorize(context.Background(), input("alice", authz.ActionUpload, "alice/a", "jwt", nil))
			if err != nil || got {
				t.Fatalf("got (%v, %v), want a deny", got, err)
			}
		})
	}
}

func TestRemoteFailsClosedWhenServerCannotAnswer(t *testing.T) {
	stopped := opaserver.Start(t, samplePolicy(t))
	stopped.Stop(t)
	status500 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"code":"internal_error"}`, http.StatusInternalServerError)
	}))
	t.Cleanup(status500.Close)
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"result": tru`))
	}))
	t.Cleanup(garbage.Close)

	tests := []struct {
		name string
		url  string
	}{
		{name: "server stopped, connection refused", url: stopped.DirectURL},
		{name: "server stopped behind proxy", url: stopped.URL},
		{name: "server never answers", url: "http://" + testproc.BlackHole(t).Addr},
		{name: "server error status", url: status500.URL},
		{name: "malformed response", url: garbage.URL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := opa.NewRemote(opa.RemoteOptions{URL: tt.url, PolicyPath: "mizuchi/allow", Timeout: 300 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			got, err := r.Authorize(context.Background(), input("alice", authz.ActionUpload, "alice/a.txt", "jwt", nil))
			if err == nil || got {
				t.Fatalf("got (%v, %v), want an error and no allow", got, err)
			}
		})
	}
}

func TestNewRemoteRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opts opa.RemoteOptions
	}{
		{name: "no url", opts: opa.RemoteOptions{PolicyPath: "a/b"}},
		{name: "not http", opts: opa.RemoteOptions{URL: "ftp://x", PolicyPath: "a/b"}},
		{name: "no policy path", opts: opa.RemoteOptions{URL: "http://127.0.0.1:8181"}},
		{name: "dot dot", opts: opa.RemoteOptions{URL: "http://127.0.0.1:8181", PolicyPath: "a/../b"}},
		{name: "query", opts: opa.RemoteOptions{URL: "http://127.0.0.1:8181", PolicyPath: "a/b?pretty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := opa.NewRemote(tt.opts); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestRemoteInjectsTraceContext(t *testing.T) {
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("traceparent")
		_, _ = w.Write([]byte(`{"result": true}`))
	}))
	t.Cleanup(srv.Close)
	r, err := opa.NewRemote(opa.RemoteOptions{URL: srv.URL, PolicyPath: "mizuchi/allow"})
	if err != nil {
		t.Fatal(err)
	}
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled,
	}))
	if ok, err := r.Authorize(ctx, input("alice", authz.ActionUpload, "alice/a", "jwt", nil)); !ok || err != nil {
		t.Fatalf("got (%v, %v)", ok, err)
	}
	if h := <-got; h != "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" {
		t.Fatalf("traceparent = %q", h)
	}
}

func writePolicy(t *testing.T, src string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "p.rego")
	if err := os.WriteFile(f, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestNewEmbeddedRejectsBrokenPolicy(t *testing.T) {
	tests := []struct {
		name string
		opts opa.EmbeddedOptions
	}{
		{name: "missing file", opts: opa.EmbeddedOptions{PolicyFile: filepath.Join(t.TempDir(), "none.rego")}},
		{name: "syntax error", opts: opa.EmbeddedOptions{PolicyFile: writePolicy(t, "package mizuchi\nallow if {")}},
		// Rego v0 syntax (no "if") does not compile as v1.
		{name: "v0 syntax", opts: opa.EmbeddedOptions{PolicyFile: writePolicy(t, "package mizuchi\nallow { true }\n")}},
		{name: "bad query", opts: opa.EmbeddedOptions{PolicyFile: samplePolicyFile, Query: "data.mizuchi.allow ==="}},
		{name: "no file", opts: opa.EmbeddedOptions{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := opa.NewEmbedded(context.Background(), tt.opts); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestEmbeddedEvaluationErrorIsAnError(t *testing.T) {
	// Two complete definitions with different values conflict at run time.
	f := writePolicy(t, `package mizuchi

allow := true if input.subject == "alice"

allow := false if startswith(input.subject, "a")
`)
	e, err := opa.NewEmbedded(context.Background(), opa.EmbeddedOptions{PolicyFile: f})
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.Authorize(context.Background(), input("alice", authz.ActionUpload, "alice/a", "jwt", nil))
	if err == nil || got {
		t.Fatalf("got (%v, %v), want an error", got, err)
	}
	// Undefined is a deny, not an error.
	got, err = e.Authorize(context.Background(), input("bob", authz.ActionUpload, "bob/a", "jwt", nil))
	if err != nil || got {
		t.Fatalf("undefined: got (%v, %v), want a deny", got, err)
	}
}

func TestEmbeddedSeesTheSameInputDocumentAsRemote(t *testing.T) {
	// The policy allows only when every field has the expected value and type.
	policy := `package mizuchi

allow if {
	input.subject == "alice"
	input.action == "upload"
	input.resource == {"bucket": "uploads", "key": "alice/a.txt"}
	input.context.method == "PUT"
	input.context.path == "/uploads/alice/a.txt"
	input.context.ip == "127.0.0.1"
	input.context.content_length == 5
	input.context.content_type == "text/plain"
	input.context.auth_method == "jwt"
	input.context.claims == {"sub": "alice", "groups": ["a", "b"], "n": 1.5}
}

null_claims if input.context.claims == null
`
	srv := opaserver.Start(t, policy)
	remote, err := opa.NewRemote(opa.RemoteOptions{URL: srv.URL, PolicyPath: "mizuchi/allow"})
	if err != nil {
		t.Fatal(err)
	}
	remoteNull, err := opa.NewRemote(opa.RemoteOptions{URL: srv.URL, PolicyPath: "mizuchi/null_claims"})
	if err != nil {
		t.Fatal(err)
	}
	f := writePolicy(t, policy)
	embedded, err := opa.NewEmbedded(context.Background(), opa.EmbeddedOptions{PolicyFile: f})
	if err != nil {
		t.Fatal(err)
	}
	embeddedNull, err := opa.NewEmbedded(context.Background(), opa.EmbeddedOptions{PolicyFile: f, Query: "data.mizuchi.null_claims"})
	if err != nil {
		t.Fatal(err)
	}
	in := input("alice", authz.ActionUpload, "alice/a.txt", "jwt", map[string]any{"sub": "alice", "groups": []any{"a", "b"}, "n": 1.5})
	for name, a := range map[string]authz.Authorizer{"remote": remote, "embedded": embedded} {
		if ok, err := a.Authorize(context.Background(), in); !ok || err != nil {
			t.Errorf("%s: got (%v, %v), want allow", name, ok, err)
		}
	}
	noClaims := input("alice", authz.ActionUpload, "alice/a.txt", "sigv4", nil)
	for name, a := range map[string]authz.Authorizer{"remote": remoteNull, "embedded": embeddedNull} {
		if ok, err := a.Authorize(context.Background(), noClaims); !ok || err != nil {
			t.Errorf("%s: nil claims: got (%v, %v), want claims == null", name, ok, err)
		}
	}
}

func TestCacheHitsDoNotReachTheServer(t *testing.T) {
	srv := opaserver.Start(t, samplePolicy(t))
	remote, err := opa.NewRemote(opa.RemoteOptions{URL: srv.URL, PolicyPath: "mizuchi/allow"})
	if err != nil {
		t.Fatal(err)
	}
	c := authz.NewCache(remote, authz.CacheOptions{TTL: time.Minute, Engine: "opa", Bucket: "uploads"})
	ctx := context.Background()
	allowIn := input("alice", authz.ActionUpload, "alice/a.txt", "jwt", map[string]any{"sub": "alice"})
	denyIn := input("alice", authz.ActionUpload, "bob/a.txt", "jwt", map[string]any{"sub": "alice"})
	for range 5 {
		if ok, err := c.Authorize(ctx, allowIn); !ok || err != nil {
			t.Fatalf("allow: got (%v, %v)", ok, err)
		}
		if ok, err := c.Authorize(ctx, denyIn); ok || err != nil {
			t.Fatalf("deny: got (%v, %v)", ok, err)
		}
	}
	if n := srv.Decisions(); n != 2 {
		t.Fatalf("server saw %d decisions, want 2", n)
	}

	// Many concurrent identical checks of a new input: one server call.
	newIn := input("alice", authz.ActionCreateMultipart, "alice/b.bin", "jwt", map[string]any{"sub": "alice"})
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			if _, err := c.Authorize(ctx, newIn); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := srv.Decisions(); n != 3 {
		t.Fatalf("server saw %d decisions, want 3", n)
	}

	// Once the server is gone, cached decisions still answer and new
	// inputs fail closed, uncached.
	srv.Stop(t)
	if ok, err := c.Authorize(ctx, allowIn); !ok || err != nil {
		t.Fatalf("cached allow after stop: got (%v, %v)", ok, err)
	}
	other := input("alice", authz.ActionUpload, "alice/c.txt", "jwt", map[string]any{"sub": "alice"})
	for range 2 {
		if ok, err := c.Authorize(ctx, other); ok || err == nil {
			t.Fatalf("engine down: got (%v, %v), want error", ok, err)
		}
	}
}

func BenchmarkEmbeddedEvaluation(b *testing.B) {
	e, err := opa.NewEmbedded(context.Background(), opa.EmbeddedOptions{PolicyFile: samplePolicyFile})
	if err != nil {
		b.Fatal(err)
	}
	in := input("alice", authz.ActionUpload, "alice/photos/a.jpg", "jwt", map[string]any{"sub": "alice", "iss": "https://issuer.example"})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := e.Authorize(ctx, in); !ok || err != nil {
			b.Fatal("not allowed")
		}
	}
}

func BenchmarkRemoteDecision(b *testing.B) {
	srv := opaserver.Start(b, samplePolicy(b))
	r, err := opa.NewRemote(opa.RemoteOptions{URL: srv.DirectURL, PolicyPath: "mizuchi/allow"})
	if err != nil {
		b.Fatal(err)
	}
	in := input("alice", authz.ActionUpload, "alice/photos/a.jpg", "jwt", map[string]any{"sub": "alice"})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := r.Authorize(ctx, in); !ok || err != nil {
			b.Fatal("not allowed")
		}
	}
}

func TestNewChoosesEngineFromConfig(t *testing.T) {
	srv := opaserver.Start(t, samplePolicy(t))
	tests := []struct {
		name string
		cfg  config.OPA
	}{
		{name: "remote", cfg: config.OPA{URL: srv.URL, PolicyPath: "mizuchi/allow", TimeoutSeconds: 2}},
		{name: "embedded", cfg: config.OPA{PolicyFile: samplePolicyFile, Query: "data.mizuchi.allow", TimeoutSeconds: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := opa.New(context.Background(), opa.Options{Config: tt.cfg})
			if err != nil {
				t.Fatal(err)
			}
			before := srv.Decisions()
			ok, err := a.Authorize(context.Background(), input("alice", authz.ActionUpload, "alice/a", "jwt", nil))
			if !ok || err != nil {
				t.Fatalf("got (%v, %v)", ok, err)
			}
			remote := srv.Decisions() > before
			if remote != (tt.name == "remote") {
				t.Fatalf("server called: %v", remote)
			}
		})
	}
}
