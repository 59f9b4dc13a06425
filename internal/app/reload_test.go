package app

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
	"github.com/mizuchi-uploadr/mizuchi/internal/telemetry"
)

// reloadApp starts an App from a config file holding the given buckets.
func reloadApp(t testing.TB, buckets string) (*App, string, *bytes.Buffer) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	writeConfig(t, path, dir, buckets)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	a, err := New(context.Background(), cfg, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a, path, &logs
}

func writeConfig(t testing.TB, path, dir, buckets string) {
	t.Helper()
	yml := "server: { address: \"127.0.0.1:0\" }\nmetrics: { enabled: false }\nbuckets:\n" +
		strings.ReplaceAll(buckets, "{{DIR}}", dir)
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
}

const bucketA = `  - name: a
    path_prefix: /a
    filesystem: { root: "{{DIR}}/a" }
`

const bucketB = `  - name: b
    path_prefix: /b
    filesystem: { root: "{{DIR}}/b" }
`

func put(t *testing.T, h http.Handler, path string) int {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPut, path, strings.NewReader("hello")))
	return rec.Code
}

func reloads(a *App, result string) float64 {
	return testutil.ToFloat64(a.reloads.Reloads.WithLabelValues(result))
}

// A reload swaps the generation for new requests, while the replaced one
// stays open until the last request holding it returns.
func TestReloadSwapsAndClosesTheOldGenerationAfterItsLastRequest(t *testing.T) {
	a, path, _ := reloadApp(t, bucketA)
	h := a.Handler()
	if code := put(t, h, "/b/k"); code != http.StatusNotFound {
		t.Fatalf("bucket b before the reload: %d, want 404", code)
	}

	old := a.acquire() // a request in flight
	closed := false
	old.closers = append(old.closers, func() error { closed = true; return nil })

	writeConfig(t, path, filepath.Dir(path), bucketA+bucketB)
	if err := a.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if code := put(t, h, "/b/k"); code != http.StatusOK {
		t.Fatalf("bucket b after the reload: %d, want 200", code)
	}
	if a.gen.Load() == old {
		t.Fatal("the generation was not replaced")
	}
	select {
	case <-old.closed:
		t.Fatal("the old generation was closed while a request still held it")
	default:
	}
	// The request in flight still sees its own configuration.
	if code := put(t, old.handler, "/b/k"); code != http.StatusNotFound {
		t.Fatalf("bucket b through the old generation: %d, want 404", code)
	}
	old.release()
	<-old.closed
	if !closed {
		t.Fatal("the old generation's closers did not run")
	}
	if got := reloads(a, telemetry.ReloadSuccess); got != 1 {
		t.Fatalf("reloads{success} = %v, want 1", got)
	}
}

// An invalid configuration changes nothing, and every problem is logged.
func TestReloadOfAnInvalidConfigKeepsTheRunningOne(t *testing.T) {
	a, path, logs := reloadApp(t, bucketA)
	before := a.gen.Load()
	if err := os.WriteFile(path, []byte("buckets:\n  - name: a\n    path_prefix: nope\n  - name: a\n    path_prefix: /c\n    filesystem: { root: /tmp/x }\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(context.Background()); err == nil {
		t.Fatal("an invalid configuration was accepted")
	}
	if a.gen.Load() != before {
		t.Fatal("the generation changed")
	}
	select {
	case <-before.closed:
		t.Fatal("the running generation was closed")
	default:
	}
	if code := put(t, a.Handler(), "/a/k"); code != http.StatusOK {
		t.Fatalf("bucket a after the refused reload: %d, want 200", code)
	}
	if got := reloads(a, telemetry.ReloadFailure); got != 1 {
		t.Fatalf("reloads{failure} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(a.reloads.LastSuccess); got != 0 {
		t.Fatalf("last reload success = %v, want 0", got)
	}
	for _, want := range []string{"buckets[0].path_prefix", "buckets[1].name", "buckets[0]"} {
		if !strings.Contains(logs.String(), "key="+want) {
			t.Errorf("the log does not name %s:\n%s", want, logs)
		}
	}
}

// A bucket that cannot be built (its root is a file) fails the reload as a
// whole: no generation is half replaced.
func TestReloadThatCannotBuildABucketKeepsTheRunningOne(t *testing.T) {
	a, path, _ := reloadApp(t, bucketA)
	before := a.gen.Load()
	dir := filepath.Dir(path)
	if err := os.WriteFile(filepath.Join(dir, "b"), []byte("a file, not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, path, dir, bucketA+bucketB)
	if err := a.Reload(context.Background()); err == nil {
		t.Fatal("the reload succeeded with a bucket that cannot be built")
	}
	if a.gen.Load() != before {
		t.Fatal("the generation changed")
	}
	if got := reloads(a, telemetry.ReloadFailure); got != 1 {
		t.Fatalf("reloads{failure} = %v, want 1", got)
	}
}

func TestRestartOnlyChangesAreNamed(t *testing.T) {
	parse := func(yml string) *config.Config {
		c, err := config.Parse([]byte(yml), "t.yaml", func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	b := "buckets: [{ name: a, path_prefix: /a, filesystem: { root: /tmp/a } }]\n"
	running := parse("server: { address: \"127.0.0.1:1\" }\n" + b)
	next := parse("server: { address: \"127.0.0.1:2\", body_idle_timeout_seconds: 5 }\nlogging: { level: debug }\n" + b)
	got := strings.Join(restartOnlyChanges(running, next), ",")
	if got != "server.address,logging" {
		t.Fatalf("restart-only changes %q, want server.address,logging", got)
	}
	if got := restartOnlyChanges(running, running); len(got) != 0 {
		t.Fatalf("no change reported %v", got)
	}
}

// The SigV4 replay cache outlives a reload: a signature accepted before
// it is refused after it.
func TestReloadKeepsTheReplayCache(t *testing.T) {
	bucket := `  - name: a
    path_prefix: /a
    filesystem: { root: "{{DIR}}/a" }
    auth:
      enabled: true
      sigv4:
        replay_protection: true
        credentials: [{ access_key: AKIAREPLAY, secret_key: replay-secret, subject: alice }]
`
	a, path, _ := reloadApp(t, bucket)
	req := httptest.NewRequest(http.MethodPut, "http://example/a/k", strings.NewReader("hello"))
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	creds := aws.Credentials{AccessKeyID: "AKIAREPLAY", SecretAccessKey: "replay-secret"}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, "UNSIGNED-PAYLOAD", "s3", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	send := func() int {
		r := req.Clone(context.Background())
		r.Body = io.NopCloser(strings.NewReader("hello"))
		rec := httptest.NewRecorder()
		a.Handler().ServeHTTP(rec, r)
		return rec.Code
	}
	if code := send(); code != http.StatusOK {
		t.Fatalf("first use: %d, want 200", code)
	}
	if code := send(); code != http.StatusForbidden {
		t.Fatalf("replay before the reload: %d, want 403", code)
	}
	writeConfig(t, path, filepath.Dir(path), bucket)
	if err := a.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if code := send(); code != http.StatusForbidden {
		t.Fatalf("replay after the reload: %d, want 403", code)
	}
}

// Turning HTTPS off needs a restart: a reload that does it keeps the
// running certificate for new handshakes instead of leaving none.
func TestReloadThatDisablesTLSKeepsTheCertificate(t *testing.T) {
	a, path, _ := reloadApp(t, bucketA)
	dir := filepath.Dir(path)
	running := &tls.Config{MinVersion: tls.VersionTLS12}
	a.cfg.Server.TLS = config.TLS{CertFile: "c.pem", KeyFile: "k.pem"} // as if started with HTTPS
	a.gen.Load().tls = running
	writeConfig(t, path, dir, bucketA)
	if err := a.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, err := a.serverTLS().GetConfigForClient(&tls.ClientHelloInfo{})
	if err != nil || got != running {
		t.Fatalf("new handshakes get %v, %v; want the running configuration", got, err)
	}
}
