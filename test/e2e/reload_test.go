package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/versitygw"
)

const (
	rlStore    = "reload-store"
	rlKeptKey  = "AKIARELOADKEPT000001"
	rlKeptSec  = "kept-secret-0123456789abcdef0123456789"
	rlGoneKey  = "AKIARELOADGONE000001"
	rlGoneSec  = "gone-secret-0123456789abcdef0123456789"
	rlBigSize  = 300 << 20
	rlBigGate  = 100 << 20
	rlBigKey   = "big/300mib.bin"
	rlSmallObj = "hello after the reload"
)

// rlConfig is the configuration before (extra == false) and after the
// reload: the second one removes the access key rlGoneKey and adds the
// bucket "extra".
func rlConfig(gw *versitygw.Server, extra bool) string {
	creds := fmt.Sprintf(`        - { access_key: %s, secret_key: %s, subject: kept }
`, rlKeptKey, rlKeptSec)
	if !extra {
		creds += fmt.Sprintf(`        - { access_key: %s, secret_key: %s, subject: gone }
`, rlGoneKey, rlGoneSec)
	}
	cfg := fmt.Sprintf(`server:
  address: 127.0.0.1:{{S3_PORT}}
metrics:
  address: 127.0.0.1:{{METRICS_PORT}}
buckets:
  - name: files
    path_prefix: /files
    s3:
      bucket: %s
      region: us-east-1
      endpoint: %s
      force_path_style: true
      access_key: %s
      secret_key: %s
    upload:
      multipart_threshold: 16MiB
      part_size: 16MiB
      concurrent_parts: 2
    auth:
      enabled: true
      sigv4:
        credentials:
%s`, rlStore, gw.Endpoint, gw.AccessKey, gw.SecretKey, creds)
	if extra {
		cfg += fmt.Sprintf(`  - name: extra
    path_prefix: /extra
    filesystem: { root: "{{DIR}}/extra" }
    auth:
      enabled: true
      sigv4:
        credentials:
          - { access_key: %s, secret_key: %s, subject: kept }
`, rlKeptKey, rlKeptSec)
	}
	return cfg
}

// rlPut sends a header-signed PutObject with an unsigned payload, as the
// SDKs do over TLS, so the body may be any reader.
func rlPut(t *testing.T, url, ak, sk string, body io.Reader, size int64) (*http.Request, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, url, body)
	if err != nil {
		return nil, err
	}
	req.ContentLength = size
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	creds := aws.Credentials{AccessKeyID: ak, SecretAccessKey: sk}
	return req, cliSigner().SignHTTP(context.Background(), creds, req, "UNSIGNED-PAYLOAD", "s3", "us-east-1", time.Now())
}

func rlSmallPut(t *testing.T, url, ak, sk string) (int, string) {
	t.Helper()
	req, err := rlPut(t, url, ak, sk, strings.NewReader(rlSmallObj), int64(len(rlSmallObj)))
	if err != nil {
		t.Fatal(err)
	}
	return cliDo(t, req)
}

// TestReloadDuringA300MiBUpload starts a 300 MiB upload, signed with an
// access key, into versitygw through the built binary and holds it after
// 100 MiB. `mizuchi reload` then applies a configuration that removes
// that key and adds a bucket: the new bucket accepts uploads at once and
// the removed key is refused, while the upload in flight, which started
// with the old configuration, completes byte-exact. A SIGHUP with an
// invalid configuration afterwards changes nothing and is counted.
func TestReloadDuringA300MiBUpload(t *testing.T) {
	t.Parallel()
	gw := versitygw.Start(t)
	gw.CreateBucket(t, rlStore)
	m, pidFile := startMizuchiPID(t, rlConfig(gw, false))

	if code, body := rlSmallPut(t, m.URL+"/extra/a.txt", rlKeptKey, rlKeptSec); code != http.StatusNotFound {
		t.Fatalf("bucket extra before the reload: %d %s, want 404 NoSuchBucket", code, body)
	}

	big := newGatedBody(rlBigSize, rlBigGate, 42)
	req, err := rlPut(t, m.URL+"/files/"+rlBigKey, rlGoneKey, rlGoneSec, big, rlBigSize)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		resp, err := (&http.Client{Timeout: 10 * time.Minute}).Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("status %s: %s", resp.Status, b)
			}
		}
		errc <- err
	}()
	big.waitGate(t, errc)

	rewriteConfig(t, m, rlConfig(gw, true))
	mizuchiReload(t, pidFile)
	waitReloads(t, m, "success", 1)

	if code, body := rlSmallPut(t, m.URL+"/extra/a.txt", rlKeptKey, rlKeptSec); code != http.StatusOK {
		t.Fatalf("the added bucket: %d %s, want 200", code, body)
	}
	if code, body := rlSmallPut(t, m.URL+"/files/b.txt", rlGoneKey, rlGoneSec); code != http.StatusForbidden || !strings.Contains(body, "InvalidAccessKeyId") {
		t.Fatalf("the removed key: %d %s, want 403 InvalidAccessKeyId", code, body)
	}
	if code, body := rlSmallPut(t, m.URL+"/files/c.txt", rlKeptKey, rlKeptSec); code != http.StatusOK {
		t.Fatalf("the kept key: %d %s, want 200", code, body)
	}

	close(big.open)
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("the upload started before the reload failed: %v\n%s", err, m.Proc.Output())
		}
	case <-time.After(10 * time.Minute):
		t.Fatal("the upload started before the reload did not finish")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rc, ok, err := gw.Open(ctx, rlStore, rlBigKey)
	if err != nil || !ok {
		t.Fatalf("the 300 MiB object is not in the store: %v", err)
	}
	h := sha256.New()
	n, err := io.Copy(h, rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	if n != rlBigSize || hex.EncodeToString(h.Sum(nil)) != big.sha256() {
		t.Fatalf("stored %d bytes that differ from the %d sent", n, rlBigSize)
	}
	if open := gw.OpenUploads(t, rlStore); open != 0 {
		t.Fatalf("%d multipart uploads left open", open)
	}

	// An invalid configuration: nothing changes, the failure is counted
	// and every problem is logged.
	rewriteConfig(t, m, rlConfig(gw, false)+`  - name: files
    path_prefix: /files
    filesystem: { root: "{{DIR}}/dup" }
`)
	if err := m.Proc.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitReloads(t, m, "failure", 1)
	if got := azMetric(t, m.MetricsURL, "mizuchi_config_last_reload_success"); got != 0 {
		t.Fatalf("mizuchi_config_last_reload_success = %v, want 0", got)
	}
	if got := azMetric(t, m.MetricsURL, "mizuchi_config_reloads_total", `result="success"`); got != 1 {
		t.Fatalf("reloads{success} = %v, want still 1", got)
	}
	if code, body := rlSmallPut(t, m.URL+"/extra/d.txt", rlKeptKey, rlKeptSec); code != http.StatusOK {
		t.Fatalf("the added bucket after the refused reload: %d %s, want 200", code, body)
	}
	if code, body := rlSmallPut(t, m.URL+"/files/e.txt", rlGoneKey, rlGoneSec); code != http.StatusForbidden {
		t.Fatalf("the removed key after the refused reload: %d %s, want 403", code, body)
	}
	out := m.Proc.Output()
	for _, want := range []string{`"key":"buckets[1].name"`, `"key":"buckets[1].path_prefix"`, "configuration reload refused"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log does not say %s:\n%s", want, out)
		}
	}
	if m.Proc.Exited() {
		t.Fatal("mizuchi exited")
	}
}

// TestReloadOnWatchedFiles: with server.watch_config, replacing a file the
// configuration names (an OPA policy) and then the configuration file
// itself each reload the server without a signal.
func TestReloadOnWatchedFiles(t *testing.T) {
	t.Parallel()
	policy := filepath.Join(t.TempDir(), "policy.rego")
	writeAtomic(t, policy, []byte("package mizuchi\n\ndefault allow := false\n"))
	cfg := func(more bool) string {
		c := fmt.Sprintf(`server:
  address: 127.0.0.1:{{S3_PORT}}
  watch_config: true
metrics:
  address: 127.0.0.1:{{METRICS_PORT}}
buckets:
  - name: files
    path_prefix: /files
    filesystem: { root: "{{DIR}}/files" }
    authz:
      enabled: true
      opa: { policy_file: %q, cache_ttl_seconds: 0 }
`, policy)
		if more {
			c += `  - name: more
    path_prefix: /more
    filesystem: { root: "{{DIR}}/more" }
`
		}
		return c
	}
	m := startMizuchi(t, cfg(false))
	put := func(path string) int {
		resp, body := rawRequest(t, http.MethodPut, m.URL+path, strings.NewReader("hello"), nil)
		_ = body
		return resp.StatusCode
	}
	if code := put("/files/a.txt"); code != http.StatusForbidden {
		t.Fatalf("before the policy change: %d, want 403", code)
	}
	writeAtomic(t, policy, []byte("package mizuchi\n\ndefault allow := true\n"))
	waitReloads(t, m, "success", 1)
	if code := put("/files/a.txt"); code != http.StatusOK {
		t.Fatalf("after the policy change: %d, want 200", code)
	}
	if code := put("/more/b.txt"); code != http.StatusNotFound {
		t.Fatalf("bucket more before the config change: %d, want 404", code)
	}
	rewriteConfig(t, m, cfg(true))
	waitReloads(t, m, "success", 2)
	if code := put("/more/b.txt"); code != http.StatusOK {
		t.Fatalf("bucket more after the config change: %d, want 200", code)
	}
	if got := azMetric(t, m.MetricsURL, "mizuchi_config_reloads_total", `result="failure"`); got != 0 {
		t.Fatalf("%v failed reloads", got)
	}
}
