package s3api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mizuchi-uploadr/mizuchi/internal/auth"
	"github.com/mizuchi-uploadr/mizuchi/internal/authz"
	"github.com/mizuchi-uploadr/mizuchi/internal/backend/fs"
	"github.com/mizuchi-uploadr/mizuchi/internal/config"
	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
	"github.com/mizuchi-uploadr/mizuchi/internal/telemetry"
)

// headerAuth authenticates the subject named in X-Test-Subject; no header
// is a refusal.
type headerAuth struct{}

func (headerAuth) Authenticate(_ context.Context, r *http.Request) (*auth.Principal, error) {
	s := r.Header.Get("X-Test-Subject")
	if s == "" {
		return nil, s3err.ErrAccessDenied
	}
	return &auth.Principal{Subject: s, Method: auth.MethodJWT}, nil
}

// policy allows subjects to write under "<subject>/" and counts calls.
type policy struct {
	mu    sync.Mutex
	calls []authz.Input
	err   error
}

func (p *policy) Authorize(_ context.Context, in *authz.Input) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, *in)
	if p.err != nil {
		return false, p.err
	}
	return strings.HasPrefix(in.Resource.Key, in.Subject+"/"), nil
}

func (p *policy) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.calls)
}

type fixture struct {
	srv     *httptest.Server
	root    string
	policy  *policy
	metrics *telemetry.Metrics
	reg     *prometheus.Registry
	handler *Handler
}

func newFixture(t *testing.T, upload config.Upload, opts ...func(*Options)) *fixture {
	t.Helper()
	root := t.TempDir()
	store, err := fs.New(fs.Options{Root: root, MinPartSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	f := &fixture{root: root, policy: &policy{}, reg: reg, metrics: telemetry.NewMetrics(reg, telemetry.BuildInfo{})}
	o := Options{
		Buckets: []*Bucket{{Name: "b", Prefix: "/b", Backend: store, Auth: headerAuth{}, Authz: f.policy, Upload: upload, Region: "eu-west-1"}},
		Metrics: f.metrics,
	}
	for _, opt := range opts {
		opt(&o)
	}
	f.handler = NewHandler(o)
	f.srv = httptest.NewServer(f.handler)
	t.Cleanup(f.srv.Close)
	return f
}

// recordingBody notes whether anything read it.
type recordingBody struct {
	r    io.Reader
	read atomic.Bool
}

func (b *recordingBody) Read(p []byte) (int, error) {
	b.read.Store(true)
	return b.r.Read(p)
}

func (f *fixture) do(t *testing.T, method, path, subject string, body io.Reader, size int64, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.ContentLength = size
	}
	if subject != "" {
		req.Header.Set("X-Test-Subject", subject)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	tr := &http.Transport{ExpectContinueTimeout: 5 * time.Second}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.Header.Get("x-amz-request-id") == "" {
		t.Fatalf("%s %s: no x-amz-request-id", method, path)
	}
	return resp, string(b)
}

func errorCode(t *testing.T, body string) string {
	t.Helper()
	var e struct {
		Code      string
		RequestId string
	}
	if err := xml.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("error body is not S3 XML: %v\n%s", err, body)
	}
	if e.RequestId == "" {
		t.Fatalf("error body without RequestId: %s", body)
	}
	return e.Code
}

func TestRefusedUploadsNeverReadTheBody(t *testing.T) {
	f := newFixture(t, config.Upload{MaxObjectSize: 1 << 20, AllowedContentTypes: []string{"image/*"}})
	tests := []struct {
		name    string
		path    string
		subject string
		size    int64
		ctype   string
		status  int
		code    string
	}{
		{"unauthenticated", "/b/alice/x.png", "", 10, "image/png", 403, "AccessDenied"},
		{"policy deny", "/b/bob/x.png", "alice", 10, "image/png", 403, "AccessDenied"},
		{"too large from Content-Length", "/b/alice/x.png", "alice", 2 << 20, "image/png", 400, "EntityTooLarge"},
		{"content type not allowed", "/b/alice/x.exe", "alice", 10, "application/x-msdownload", 400, "InvalidArgument"},
		{"traversal", "/b/alice/../bob/x.png", "alice", 10, "image/png", 400, "InvalidArgument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := &recordingBody{r: bytes.NewReader(make([]byte, tt.size))}
			resp, out := f.do(t, "PUT", tt.path, tt.subject, body, tt.size, map[string]string{"Expect": "100-continue", "Content-Type": tt.ctype})
			if resp.StatusCode != tt.status || errorCode(t, out) != tt.code {
				t.Fatalf("got %d %s, want %d %s", resp.StatusCode, out, tt.status, tt.code)
			}
			if body.read.Load() {
				t.Fatal("the client sent its body although the request was refused")
			}
		})
	}
	if files := listFiles(t, f.root); len(files) != 0 {
		t.Fatalf("stored: %v", files)
	}
}

func TestPolicyInputAndEngineFailure(t *testing.T) {
	f := newFixture(t, config.Upload{})
	resp, _ := f.do(t, "PUT", "/b/alice/a.txt", "alice", strings.NewReader("abc"), 3, map[string]string{"Content-Type": "text/plain"})
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	got := f.policy.calls[0]
	want := authz.Input{Subject: "alice", Action: "upload", Resource: authz.Resource{Bucket: "b", Key: "alice/a.txt"},
		Context: authz.Context{Method: "PUT", Path: "/b/alice/a.txt", IP: "127.0.0.1", ContentLength: 3, ContentType: "text/plain", AuthMethod: "jwt"}}
	if got.Subject != want.Subject || got.Action != want.Action || got.Resource != want.Resource ||
		got.Context.Method != want.Context.Method || got.Context.Path != want.Context.Path || got.Context.IP != want.Context.IP ||
		got.Context.ContentLength != 3 || got.Context.ContentType != "text/plain" || got.Context.AuthMethod != "jwt" {
		t.Fatalf("policy input %+v, want %+v", got, want)
	}

	f.policy.err = errors.New("engine down")
	resp, out := f.do(t, "PUT", "/b/alice/b.txt", "alice", strings.NewReader("abc"), 3, nil)
	if resp.StatusCode != 503 || errorCode(t, out) != "ServiceUnavailable" || strings.Contains(out, "engine down") {
		t.Fatalf("engine failure answered %d %s", resp.StatusCode, out)
	}
	if got := testutil.ToFloat64(f.metrics.Errors.WithLabelValues("b", "ServiceUnavailable")); got != 1 {
		t.Fatalf("errors metric = %v", got)
	}
}

func TestMultipartCallsAreBoundToTheCreator(t *testing.T) {
	f := newFixture(t, config.Upload{})
	resp, out := f.do(t, "POST", "/b/alice/big.bin?uploads", "alice", nil, 0, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("create: %d %s", resp.StatusCode, out)
	}
	var created initiateMultipartUploadResult
	if err := xml.Unmarshal([]byte(out), &created); err != nil || created.UploadID == "" || created.Key != "alice/big.bin" || created.Bucket != "b" {
		t.Fatalf("create result %+v %v", created, err)
	}
	calls := f.policy.count()
	partPath := "/b/alice/big.bin?partNumber=1&uploadId=" + created.UploadID

	resp, out = f.do(t, "PUT", partPath, "bob", strings.NewReader("part"), 4, nil)
	if resp.StatusCode != 403 || errorCode(t, out) != "AccessDenied" {
		t.Fatalf("part by another subject: %d %s", resp.StatusCode, out)
	}
	resp, out = f.do(t, "PUT", "/b/alice/other.bin?partNumber=1&uploadId="+created.UploadID, "alice", strings.NewReader("part"), 4, nil)
	if resp.StatusCode != 404 || errorCode(t, out) != "NoSuchUpload" {
		t.Fatalf("part for another key: %d %s", resp.StatusCode, out)
	}
	resp, out = f.do(t, "PUT", partPath, "alice", strings.NewReader("part"), 4, nil)
	if resp.StatusCode != 200 || resp.Header.Get("ETag") == "" {
		t.Fatalf("part by the creator: %d %s", resp.StatusCode, out)
	}
	etag := resp.Header.Get("ETag")
	resp, out = f.do(t, "GET", "/b/alice/big.bin?uploadId="+created.UploadID, "alice", nil, 0, nil)
	if resp.StatusCode != 200 || !strings.Contains(out, "<PartNumber>1</PartNumber>") {
		t.Fatalf("list parts: %d %s", resp.StatusCode, out)
	}
	if f.policy.count() != calls {
		t.Fatalf("bound calls asked the policy engine %d times", f.policy.count()-calls)
	}
	doc := `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>` + etag + `</ETag></Part></CompleteMultipartUpload>`
	resp, out = f.do(t, "POST", "/b/alice/big.bin?uploadId="+created.UploadID, "bob", strings.NewReader(doc), int64(len(doc)), nil)
	if resp.StatusCode != 403 {
		t.Fatalf("complete by another subject: %d %s", resp.StatusCode, out)
	}
	resp, out = f.do(t, "POST", "/b/alice/big.bin?uploadId="+created.UploadID, "alice", strings.NewReader(doc), int64(len(doc)), nil)
	if resp.StatusCode != 200 || !strings.Contains(out, "<ETag>") {
		t.Fatalf("complete: %d %s", resp.StatusCode, out)
	}
	if got := testutil.ToFloat64(f.metrics.MultipartUploads.WithLabelValues("b", "completed")); got != 1 {
		t.Fatalf("multipart completed metric = %v", got)
	}
}

// After a restart, or on another replica with the same keys, the upload id
// still names its creator; with other keys it names nothing.
func TestUploadIDsHoldAcrossProcesses(t *testing.T) {
	const k1, k2 = "first-key-0123456789abcdef0123456789", "second-key-0123456789abcdef012345678"
	ids := func(keys ...string) func(*Options) {
		return func(o *Options) {
			u, err := NewUploadIDs(keys)
			if err != nil {
				t.Fatal(err)
			}
			o.UploadIDs = u
		}
	}
	a := newFixture(t, config.Upload{}, ids(k1))
	resp, out := a.do(t, "POST", "/b/alice/x?uploads", "alice", nil, 0, nil)
	var created initiateMultipartUploadResult
	_ = xml.Unmarshal([]byte(out), &created)
	if resp.StatusCode != 200 {
		t.Fatal(out)
	}
	// Another process on the same storage, its keys rotated: k2 seals, k1
	// still opens.
	b := newFixture(t, config.Upload{}, ids(k2, k1))
	b.handler.router = a.handler.router
	part := "/b/alice/x?partNumber=1&uploadId=" + created.UploadID
	calls := b.policy.count()
	resp, out = b.do(t, "PUT", part, "bob", strings.NewReader("p"), 1, nil)
	if resp.StatusCode != 403 || errorCode(t, out) != "AccessDenied" {
		t.Fatalf("part by bob on another process: %d %s", resp.StatusCode, out)
	}
	resp, out = b.do(t, "PUT", part, "alice", strings.NewReader("p"), 1, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("part by alice on another process: %d %s", resp.StatusCode, out)
	}
	if b.policy.count() != calls {
		t.Fatal("calls on an upload asked the policy engine")
	}
	// A process without the key that sealed it.
	c := newFixture(t, config.Upload{}, ids(k2))
	c.handler.router = a.handler.router
	resp, out = c.do(t, "PUT", part, "alice", strings.NewReader("p"), 1, nil)
	if resp.StatusCode != 404 || errorCode(t, out) != "NoSuchUpload" {
		t.Fatalf("part with an id of an unknown key: %d %s", resp.StatusCode, out)
	}
	// The backend's own id is not an upload id a client may use.
	entries, _ := os.ReadDir(filepath.Join(a.root, fs.UploadsDir))
	if len(entries) == 0 {
		t.Fatal("no staging directory")
	}
	for _, e := range entries {
		resp, out = a.do(t, "PUT", "/b/alice/x?partNumber=1&uploadId="+e.Name(), "alice", strings.NewReader("p"), 1, nil)
		if resp.StatusCode != 404 || errorCode(t, out) != "NoSuchUpload" {
			t.Fatalf("part with the backend's id: %d %s", resp.StatusCode, out)
		}
	}
}

func TestBucketProbesAndErrors(t *testing.T) {
	f := newFixture(t, config.Upload{})
	resp, _ := f.do(t, "HEAD", "/b", "alice", nil, 0, nil)
	if resp.StatusCode != 200 || resp.Header.Get("x-amz-bucket-region") != "eu-west-1" {
		t.Fatalf("HeadBucket %d %v", resp.StatusCode, resp.Header)
	}
	resp, out := f.do(t, "GET", "/b?location", "alice", nil, 0, nil)
	if resp.StatusCode != 200 || !strings.Contains(out, ">eu-west-1</LocationConstraint>") {
		t.Fatalf("GetBucketLocation %d %s", resp.StatusCode, out)
	}
	resp, out = f.do(t, "HEAD", "/b/alice/x", "alice", nil, 0, nil)
	if resp.StatusCode != 405 || out != "" {
		t.Fatalf("HeadObject %d %q", resp.StatusCode, out)
	}
	resp, out = f.do(t, "PUT", "/nope/x", "alice", strings.NewReader("x"), 1, nil)
	if resp.StatusCode != 404 || errorCode(t, out) != "NoSuchBucket" {
		t.Fatalf("unknown bucket %d %s", resp.StatusCode, out)
	}
	resp, out = f.do(t, "GET", "/", "alice", nil, 0, nil)
	if resp.StatusCode != 405 {
		t.Fatalf("ListBuckets %d %s", resp.StatusCode, out)
	}
	resp, out = f.do(t, "POST", "/b/alice/x?uploadId=nope", "alice", strings.NewReader("<CompleteMultipartUpload/>"), 26, nil)
	if resp.StatusCode != 404 || errorCode(t, out) != "NoSuchUpload" {
		t.Fatalf("complete of an unknown upload %d %s", resp.StatusCode, out)
	}
	_, out = f.do(t, "POST", "/b/alice/x?uploads", "alice", nil, 0, nil)
	var created initiateMultipartUploadResult
	_ = xml.Unmarshal([]byte(out), &created)
	resp, out = f.do(t, "POST", "/b/alice/x?uploadId="+created.UploadID, "alice", strings.NewReader("<CompleteMultipartUpload/>"), 26, nil)
	if resp.StatusCode != 400 || errorCode(t, out) != "MalformedXML" {
		t.Fatalf("empty complete %d %s", resp.StatusCode, out)
	}
	resp, out = f.do(t, "GET", "/health", "", nil, 0, nil)
	if resp.StatusCode != 200 || out != "ok" {
		t.Fatalf("health %d %q", resp.StatusCode, out)
	}
}

func TestIncompleteBodyStoresNothing(t *testing.T) {
	f := newFixture(t, config.Upload{})
	// A body that ends early: the server sees EOF before Content-Length.
	req, _ := http.NewRequest("PUT", f.srv.URL+"/b/alice/short.bin", io.MultiReader(strings.NewReader("abc"), errReader{}))
	req.ContentLength = 10
	req.Header.Set("X-Test-Subject", "alice")
	_, _ = http.DefaultClient.Do(req) // the client fails; the server must clean up
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if len(listFiles(t, f.root)) == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("left behind: %v", listFiles(t, f.root))
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("client gave up") }

// An aws-chunked body on a bucket without SigV4 is decoded: the framing
// never becomes part of the object, and the trailing checksum is checked.
func TestAWSChunkedFramingIsRemovedWithoutSigV4(t *testing.T) {
	f := newFixture(t, config.Upload{})
	data := "123456789"
	for _, tt := range []struct {
		name, crc string
		status    int
	}{
		{"good trailer", "y/Q5Jg==", 200},
		{"bad trailer", "AAAAAA==", 400},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wire := "9\r\n" + data + "\r\n0\r\nx-amz-checksum-crc32:" + tt.crc + "\r\n\r\n"
			resp, out := f.do(t, "PUT", "/b/alice/chunked-"+tt.crc[:1], "alice", strings.NewReader(wire), int64(len(wire)), map[string]string{
				"X-Amz-Content-Sha256":         "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
				"X-Amz-Decoded-Content-Length": "9",
				"X-Amz-Trailer":                "x-amz-checksum-crc32",
				"Content-Encoding":             "aws-chunked",
			})
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d: %s", resp.StatusCode, out)
			}
			if tt.status == 200 && resp.Header.Get("X-Amz-Checksum-Crc32") != tt.crc {
				t.Fatalf("checksum not echoed: %v", resp.Header)
			}
		})
	}
	files := listFiles(t, f.root)
	var objects []string
	for _, p := range files {
		if !strings.HasPrefix(p, ".mizuchi") {
			objects = append(objects, p)
		}
	}
	if len(objects) != 1 || objects[0] != "alice/chunked-y" {
		t.Fatalf("objects %v", objects)
	}
	assertContent(t, f.root+"/alice/chunked-y", data)
}

func assertContent(t *testing.T, path, want string) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil || string(got) != want {
		t.Fatalf("%s = %q, %v; want %q", path, got, err, want)
	}
}

// A client that stops sending in the middle of a body is cut off after the
// body idle timeout with RequestTimeout, and nothing is stored.
func TestStalledBodyTimesOut(t *testing.T) {
	f := newFixture(t, config.Upload{}, func(o *Options) { o.BodyIdleTimeout = 200 * time.Millisecond })
	c, err := net.Dial("tcp", strings.TrimPrefix(f.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "PUT /b/alice/stalled HTTP/1.1\r\nHost: x\r\nX-Test-Subject: alice\r\nContent-Length: 1000\r\n\r\n%s", strings.Repeat("a", 500))
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 400 || errorCode(t, string(b)) != "RequestTimeout" {
		t.Fatalf("got %d %s", resp.StatusCode, b)
	}
	if files := listFiles(t, f.root); len(files) != 0 {
		t.Fatalf("left behind: %v", files)
	}
}

func TestOversizedCompleteDocumentIsRefusedBeforeItIsRead(t *testing.T) {
	f := newFixture(t, config.Upload{})
	body := &recordingBody{r: bytes.NewReader(make([]byte, maxCompleteBody+1))}
	resp, out := f.do(t, "POST", "/b/alice/x?uploadId=abc", "alice", body, maxCompleteBody+1, map[string]string{"Expect": "100-continue"})
	if resp.StatusCode != 400 || errorCode(t, out) != "MaxMessageLengthExceeded" {
		t.Fatalf("got %d %s", resp.StatusCode, out)
	}
	if body.read.Load() {
		t.Fatal("the document was sent although it was refused")
	}
}
