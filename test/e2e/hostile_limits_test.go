package e2e

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/versitygw"
)

// hlCTConfig has one anonymous filesystem bucket that takes images and
// plain text only; tlsBlock (indented for server:) may turn on TLS.
func hlCTConfig(tlsBlock string) string {
	return `server:
  address: "127.0.0.1:{{S3_PORT}}"
  shutdown_grace_seconds: 2
` + tlsBlock + `
metrics:
  address: "127.0.0.1:{{METRICS_PORT}}"
buckets:
  - name: ct
    path_prefix: /ct
    filesystem: { root: "{{DIR}}/ct" }
    upload: { allowed_content_types: ["image/*", "text/plain"], min_part_size: 1024 }
`
}

// hlStoredType is the Content-Type stored with key in the ct bucket.
func hlStoredType(t *testing.T, m *Mizuchi, key string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(m.Dir, "ct/.mizuchi/meta", key))
	if err != nil {
		t.Fatalf("metadata of %s: %v", key, err)
	}
	var rec struct{ Metadata struct{ ContentType string } }
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	return rec.Metadata.ContentType
}

// TestHostileContentTypeIsOneAllowedMediaType sends Content-Type values
// that a string match once let through to a bucket allowing image/* and
// text/plain: each is refused with 400 before the body is sent (the
// request carries Expect: 100-continue and the body never goes), for
// PutObject and CreateMultipartUpload alike.
func TestHostileContentTypeIsOneAllowedMediaType(t *testing.T) {
	t.Parallel()
	m := startMizuchi(t, hlCTConfig(""))
	refused := []struct {
		name   string
		values []string
	}{
		{"list after an allowed wildcard type", []string{"image/x, text/html"}},
		{"empty parameter, then a list", []string{"text/plain;,text/html"}},
		{"parameter, then a list", []string{"image/png; q=1, text/html"}},
		{"comma in a quoted parameter", []string{`text/plain; x="a,text/html"`}},
		{"two Content-Type headers", []string{"image/png", "text/html"}},
		{"no subtype", []string{"image"}},
		{"wildcard as the type", []string{"image/*"}},
		{"prefix of the wildcard's type", []string{"imagex/png"}},
		{"exact entry as a prefix", []string{"text/plainx"}},
		{"non-breaking space after the subtype", []string{"image/png\u00a0"}},
		{"two types separated by a space", []string{"image/png text/html"}},
		{"not allowed", []string{"text/html"}},
		{"missing", nil},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.values != nil {
				h["Content-Type"] = tt.values
			}
			azExpect(t, m.URL, "PUT", "/ct/put.html", h, 64).want(t, "PutObject", 400, "InvalidArgument")
			azExpect(t, m.URL, "POST", "/ct/mp.html?uploads", h, 0).want(t, "CreateMultipartUpload", 400, "InvalidArgument")
		})
	}
	if files := visibleFiles(t, filepath.Join(m.Dir, "ct")); len(files) != 0 {
		t.Fatalf("refused uploads left %v", files)
	}

	// What is allowed is stored, with the type as sent.
	for key, ct := range map[string]string{"a.png": "IMAGE/PNG", "b.txt": "text/plain; charset=utf-8", "c.svg": "image/svg+xml"} {
		resp, body := rawRequest(t, "PUT", m.URL+"/ct/"+key, strings.NewReader("data"), http.Header{"Content-Type": {ct}})
		if resp.StatusCode != 200 {
			t.Fatalf("PUT %s as %q: %d %s", key, ct, resp.StatusCode, body)
		}
		if got := hlStoredType(t, m, key); got != ct {
			t.Fatalf("%s stored as %q, want %q", key, got, ct)
		}
	}
	// Multipart: the type of the object is the one given at Create; a
	// part's Content-Type is not stored and not checked.
	r := azDo(t, "POST", m.URL+"/ct/mp.png?uploads", "", nil)
	r.want(t, "create without a type", 400, "InvalidArgument")
	resp, body := rawRequest(t, "POST", m.URL+"/ct/mp.png?uploads", nil, http.Header{"Content-Type": {"image/png"}})
	if resp.StatusCode != 200 {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	var created struct{ UploadId string }
	if err := xml.Unmarshal([]byte(body), &created); err != nil {
		t.Fatal(err)
	}
	resp, body = rawRequest(t, "PUT", m.URL+"/ct/mp.png?partNumber=1&uploadId="+created.UploadId, strings.NewReader("part"), http.Header{"Content-Type": {"text/html"}})
	if resp.StatusCode != 200 {
		t.Fatalf("part: %d %s", resp.StatusCode, body)
	}
	doc := fmt.Sprintf("<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>%s</ETag></Part></CompleteMultipartUpload>", resp.Header.Get("ETag"))
	azDo(t, "POST", m.URL+"/ct/mp.png?uploadId="+created.UploadId, "", []byte(doc)).want(t, "complete", 200, "")
	if got := hlStoredType(t, m, "mp.png"); got != "image/png" {
		t.Fatalf("multipart object stored as %q, want image/png", got)
	}
}

const (
	hlStore    = "hostile-limits"
	hlLimit    = 10 << 20
	hlPartSize = 6 << 20
)

// hlSizeConfig has two buckets limited to 10 MiB per object: "fs" on the
// directory root and "s3" on versitygw.
func hlSizeConfig(gw *versitygw.Server, root string) string {
	// The replicas and the restarted process open each other's upload
	// ids: they share the key.
	return fmt.Sprintf(`server:
  address: "127.0.0.1:{{S3_PORT}}"
  shutdown_grace_seconds: 2
  upload_id_keys: ["hostile-limits-upload-id-key-0123456789abcdef"]
metrics:
  address: "127.0.0.1:{{METRICS_PORT}}"
logging:
  level: debug
buckets:
  - name: fs
    path_prefix: /fs
    filesystem: { root: %q }
    upload: { max_object_size: %d }
  - name: s3
    path_prefix: /s3
    s3:
      bucket: %s
      region: us-east-1
      endpoint: %s
      force_path_style: true
      access_key: %s
      secret_key: %s
    upload: { max_object_size: %d, multipart_threshold: 8MiB, part_size: 5MiB }
`, root, hlLimit, hlStore, gw.Endpoint, gw.AccessKey, gw.SecretKey, hlLimit)
}

// hlUpload is a multipart upload through Mizuchi with the ETags of its
// parts.
type hlUpload struct {
	bucket, key, id string
	etags           map[int]string
}

func hlCreate(t *testing.T, m *Mizuchi, bucket, key string) *hlUpload {
	t.Helper()
	r := azDo(t, "POST", m.URL+"/"+bucket+"/"+key+"?uploads", "", nil)
	r.want(t, "create "+bucket+"/"+key, 200, "")
	var created struct{ UploadId string }
	if err := xml.Unmarshal([]byte(r.Body), &created); err != nil || created.UploadId == "" {
		t.Fatalf("no upload id in %q: %v", r.Body, err)
	}
	return &hlUpload{bucket: bucket, key: key, id: created.UploadId, etags: map[int]string{}}
}

func (u *hlUpload) url(m *Mizuchi) string { return m.URL + "/" + u.bucket + "/" + u.key }

func (u *hlUpload) part(t *testing.T, m *Mizuchi, n int, data []byte) {
	t.Helper()
	resp, body := rawRequest(t, "PUT", fmt.Sprintf("%s?partNumber=%d&uploadId=%s", u.url(m), n, u.id), bytes.NewReader(data), nil)
	if resp.StatusCode != 200 {
		t.Fatalf("part %d of %s: %d %s", n, u.url(m), resp.StatusCode, body)
	}
	u.etags[n] = resp.Header.Get("ETag")
}

func (u *hlUpload) complete(t *testing.T, m *Mizuchi, parts ...int) azResult {
	t.Helper()
	var b strings.Builder
	b.WriteString("<CompleteMultipartUpload>")
	for _, n := range parts {
		fmt.Fprintf(&b, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", n, u.etags[n])
	}
	b.WriteString("</CompleteMultipartUpload>")
	return azDo(t, "POST", u.url(m)+"?uploadId="+u.id, "", []byte(b.String()))
}

// hlRestart stops the binary and starts it again on the same
// configuration, ports and directories: whatever it kept in memory is
// gone.
func hlRestart(t *testing.T, m *Mizuchi) *Mizuchi {
	t.Helper()
	if err := m.Proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-m.Proc.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("mizuchi did not stop")
	}
	return runMizuchi(t, m.Dir, m.URL, m.MetricsURL, []string{"serve", "--config", filepath.Join(m.Dir, "config.yaml")})
}

// TestHostileMultipartObjectSize: max_object_size limits the object, not
// only each request. Three 6 MiB parts do not complete into an 18 MiB
// object on a bucket limited to 10 MiB, on either backend, even when
// the process that saw the parts is gone (restart between the parts and
// the Complete) or is another replica: the sizes come from the
// backend's own parts.
func TestHostileMultipartObjectSize(t *testing.T) {
	t.Parallel()
	gw := versitygw.Start(t)
	gw.CreateBucket(t, hlStore)
	root := filepath.Join(t.TempDir(), "fs")
	m := startMizuchi(t, hlSizeConfig(gw, root))

	stored := map[string]func(key string) ([]byte, bool){
		"fs": func(key string) ([]byte, bool) {
			b, err := os.ReadFile(filepath.Join(root, key))
			return b, err == nil
		},
		"s3": func(key string) ([]byte, bool) {
			b, ok, err := gw.Get(t.Context(), hlStore, key)
			if err != nil {
				t.Fatal(err)
			}
			return b, ok
		},
	}
	openUploads := map[string]func() int{
		"fs": func() int {
			entries, _ := os.ReadDir(filepath.Join(root, ".mizuchi/uploads"))
			return len(entries)
		},
		"s3": func() int { return gw.OpenUploads(t, hlStore) },
	}
	parts := [][]byte{randomBytes(t, hlPartSize), randomBytes(t, hlPartSize), randomBytes(t, hlPartSize)}

	big, aborted := map[string]*hlUpload{}, map[string]*hlUpload{}
	for _, b := range []string{"fs", "s3"} {
		// A part alone over the limit is refused before its body is sent.
		u := hlCreate(t, m, b, "big.bin")
		path := fmt.Sprintf("/%s/big.bin?partNumber=4&uploadId=%s", b, u.id)
		azExpect(t, m.URL, "PUT", path, nil, hlLimit+1).want(t, b+": part over the limit", 400, "EntityTooLarge")
		azExpect(t, m.URL, "PUT", path, http.Header{
			"X-Amz-Content-Sha256":         {"STREAMING-UNSIGNED-PAYLOAD-TRAILER"},
			"Content-Encoding":             {"aws-chunked"},
			"X-Amz-Decoded-Content-Length": {fmt.Sprint(hlLimit + 1)},
		}, 100).want(t, b+": aws-chunked part over the limit", 400, "EntityTooLarge")
		for i, p := range parts {
			u.part(t, m, i+1, p)
		}
		big[b] = u
		a := hlCreate(t, m, b, "aborted.bin")
		a.part(t, m, 1, parts[0])
		a.part(t, m, 2, parts[1])
		aborted[b] = a
	}

	m = hlRestart(t, m)
	// A second replica on the same directory and store bucket.
	replica := startMizuchi(t, hlSizeConfig(gw, root))

	for _, b := range []string{"fs", "s3"} {
		t.Run(b, func(t *testing.T) {
			u := big[b]
			u.complete(t, m, 1, 2, 3).want(t, "18 MiB in three parts", 400, "EntityTooLarge")
			if _, ok := stored[b]("big.bin"); ok {
				t.Fatal("an object was stored by a refused Complete")
			}
			// The upload is still open: its parts are listed, and a
			// Complete within the limit succeeds.
			r := azDo(t, "GET", u.url(m)+"?uploadId="+u.id, "", nil)
			r.want(t, "ListParts after the refusal", 200, "")
			if n := strings.Count(r.Body, "<Part>"); n != 3 {
				t.Fatalf("%d parts listed after the refusal, want 3:\n%s", n, r.Body)
			}
			u.complete(t, m, 1).want(t, "6 MiB in one part", 200, "")
			if got, ok := stored[b]("big.bin"); !ok || !bytes.Equal(got, parts[0]) {
				t.Fatalf("after the Complete within the limit: stored=%v, %d bytes, want part 1", ok, len(got))
			}

			a := aborted[b]
			a.complete(t, m, 1, 2).want(t, "12 MiB in two parts", 400, "EntityTooLarge")
			azDo(t, "DELETE", a.url(m)+"?uploadId="+a.id, "", nil).want(t, "abort after the refusal", 204, "")
			if _, ok := stored[b]("aborted.bin"); ok {
				t.Fatal("an object was stored for the aborted upload")
			}
			// Parts sent through one replica count on the other.
			o := hlCreate(t, m, b, "replica.bin")
			o.part(t, m, 1, parts[0])
			o.part(t, m, 2, parts[1])
			o.complete(t, replica, 1, 2).want(t, "12 MiB completed through another replica", 400, "EntityTooLarge")
			azDo(t, "DELETE", o.url(replica)+"?uploadId="+o.id, "", nil).want(t, "abort through the other replica", 204, "")
			if _, ok := stored[b]("replica.bin"); ok {
				t.Fatal("an object was stored through the other replica")
			}

			if n := openUploads[b](); n != 0 {
				t.Fatalf("%d multipart uploads left open", n)
			}
		})
	}
}

// TestHostileExpectOtherThanContinue pins what happens to an Expect
// value other than 100-continue, which S3 ignores: over HTTP/1.1 Go's
// server answers 417 Expectation Failed itself and closes the
// connection, before Mizuchi sees the request (so nothing is stored);
// over HTTP/2 the header is ignored and the upload is served as on S3.
// See docs/API.md ("Expect").
func TestHostileExpectOtherThanContinue(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, certFile, keyFile, pool := cliCerts(t, dir)
	plain := startMizuchi(t, hlCTConfig(""))
	secure := startMizuchi(t, hlCTConfig(fmt.Sprintf("  tls: { cert_file: %q, key_file: %q }", certFile, keyFile)))
	addr := strings.TrimPrefix(plain.URL, "http://")

	send := func(t *testing.T, key, expect string) (*http.Response, string) {
		t.Helper()
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		fmt.Fprintf(c, "PUT /ct/%s HTTP/1.1\r\nHost: %s\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nExpect: %s\r\n\r\nhello", key, addr, expect)
		br := bufio.NewReader(c)
		for {
			resp, err := http.ReadResponse(br, &http.Request{Method: "PUT"})
			if err != nil {
				t.Fatalf("Expect %q: %v", expect, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusContinue {
				return resp, string(b)
			}
		}
	}
	t.Run("HTTP/1.1", func(t *testing.T) {
		for _, expect := range []string{"100-continue", "100-Continue", "100-continue, x-extension"} {
			if resp, body := send(t, "continue.txt", expect); resp.StatusCode != 200 {
				t.Fatalf("Expect %q: %d %s, want 200", expect, resp.StatusCode, body)
			}
		}
		for _, expect := range []string{"x-extension", "200-ok", "continue"} {
			resp, _ := send(t, "other.txt", expect)
			if resp.StatusCode != http.StatusExpectationFailed || !resp.Close {
				t.Fatalf("Expect %q: %d (close %v), want 417 with the connection closed", expect, resp.StatusCode, resp.Close)
			}
		}
		if _, err := os.Stat(filepath.Join(plain.Dir, "ct/other.txt")); err == nil {
			t.Fatal("a request answered 417 was stored")
		}
	})
	t.Run("HTTP/2", func(t *testing.T) {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
		defer tr.CloseIdleConnections()
		url := strings.Replace(secure.URL, "http://", "https://", 1) + "/ct/h2.txt"
		req, err := http.NewRequest("PUT", url, strings.NewReader("hello"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "text/plain")
		req.Header.Set("Expect", "x-extension")
		resp, err := (&http.Client{Transport: tr, Timeout: 20 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 || resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s, want HTTP/2 200", resp.Proto, resp.StatusCode, body)
		}
		assertFile(t, filepath.Join(secure.Dir, "ct/h2.txt"), []byte("hello"))
	})
}
