package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func wantAPIError(t *testing.T, err error, code string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("want S3 error %s, got %v", code, err)
	}
	if ae.ErrorCode() != code {
		t.Fatalf("want S3 error %s, got %s (%s)", code, ae.ErrorCode(), ae.ErrorMessage())
	}
}

// TestBuiltinDefaultAcceptsSDKUploads runs the binary with no configuration
// at all, as a newcomer would, and uploads with the latest aws-sdk-go-v2.
func TestBuiltinDefaultAcceptsSDKUploads(t *testing.T) {
	dir := t.TempDir()
	m := runMizuchi(t, dir, "http://127.0.0.1:8080", "http://127.0.0.1:9090", nil, "MIZUCHI_CONFIG=")
	if out := m.Proc.Output(); !strings.Contains(out, "unauthenticated") || !strings.Contains(out, "loopback") {
		t.Fatalf("no warning about the unauthenticated default:\n%s", out)
	}
	ctx := context.Background()
	client := s3Client(t, m.URL, "", "")

	if _, err := client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("uploads")}); err != nil {
		t.Fatalf("HeadBucket: %v", err)
	}

	small := []byte("hello, mizuchi\n")
	out, err := client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String("uploads"), Key: aws.String("greetings/hello.txt"),
		Body: bytes.NewReader(small), ContentType: aws.String("text/plain"),
	})
	if err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	if aws.ToString(out.ETag) != `"`+md5hex(small)+`"` {
		t.Fatalf("ETag %s, want MD5 of the body", aws.ToString(out.ETag))
	}
	assertFile(t, filepath.Join(dir, "data/uploads/greetings/hello.txt"), small)

	big := randomBytes(t, 3*5<<20-12345) // three parts with the manager's 5 MiB part size
	//lint:ignore SA1019 the upload manager is what deployed Go programs use; transfermanager is still v0
	up := manager.NewUploader(client, func(u *manager.Uploader) { u.PartSize = 5 << 20; u.Concurrency = 2 })
	//lint:ignore SA1019 see above
	res, err := up.Upload(ctx, &s3.PutObjectInput{
		Bucket: aws.String("uploads"), Key: aws.String("big/blob.bin"), Body: bytes.NewReader(big),
	})
	if err != nil {
		t.Fatalf("multipart upload: %v", err)
	}
	if !strings.HasSuffix(aws.ToString(res.ETag), `-3"`) {
		t.Fatalf("multipart ETag %s does not name 3 parts", aws.ToString(res.ETag))
	}
	assertFile(t, filepath.Join(dir, "data/uploads/big/blob.bin"), big)

	// The README's examples: curl -T, and the newest AWS CLI without
	// credentials (multipart above its 8 MiB threshold).
	photo := filepath.Join(t.TempDir(), "photo.jpg")
	if err := os.WriteFile(photo, small, 0o600); err != nil {
		t.Fatal(err)
	}
	cliRun(t, nil, cliLook(t, "curl"), "-sSf", "-T", photo, m.URL+"/uploads/photos/photo.jpg")
	assertFile(t, filepath.Join(dir, "data/uploads/photos/photo.jpg"), small)
	iso := filepath.Join(t.TempDir(), "big.iso")
	if err := os.WriteFile(iso, big, 0o600); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	cliRun(t, []string{"HOME=" + home, "AWS_CONFIG_FILE=" + filepath.Join(home, "none"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "none"), "AWS_DEFAULT_REGION=us-east-1"},
		cliLook(t, "aws"), "--endpoint-url", m.URL, "--no-sign-request", "s3", "cp", "--only-show-errors", iso, "s3://uploads/isos/big.iso")
	assertFile(t, filepath.Join(dir, "data/uploads/isos/big.iso"), big)

	_, err = client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("uploads"), Key: aws.String("greetings/hello.txt")})
	wantAPIError(t, err, "MethodNotAllowed")
	_, err = client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("uploads"), Key: aws.String("greetings/hello.txt")})
	wantAPIError(t, err, "MethodNotAllowed")
	_, err = client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("uploads")})
	wantAPIError(t, err, "MethodNotAllowed")
	assertFile(t, filepath.Join(dir, "data/uploads/greetings/hello.txt"), small)

	resp, body := rawRequest(t, "GET", m.MetricsURL+"/metrics", nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `mizuchi_uploads_total{bucket="uploads",operation="PutObject",status="200"}`) ||
		!strings.Contains(body, `mizuchi_backend_requests_total{bucket="uploads",operation="UploadPart",status="200"}`) {
		t.Fatalf("metrics: %d\n%.2000s", resp.StatusCode, body)
	}
}

func assertFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("stored object: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes stored, want %d identical bytes", path, len(got), len(want))
	}
}

const twoBuckets = `
server:
  address: "127.0.0.1:{{S3_PORT}}"
  shutdown_grace_seconds: 3
metrics:
  address: "127.0.0.1:{{METRICS_PORT}}"
logging:
  level: debug
buckets:
  - name: uploads
    path_prefix: /uploads
    filesystem: { root: "{{DIR}}/uploads" }
  - name: private
    path_prefix: /private
    filesystem: { root: "{{DIR}}/private" }
`

// visibleFiles lists regular files under root, hidden bookkeeping included
// only when it is not Mizuchi's own empty directory tree.
func visibleFiles(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			files = append(files, rel)
		}
		return nil
	})
	return files
}

// sendRaw writes a raw HTTP/1.1 request (never normalised by a client
// library) and returns the status line.
func sendRaw(t *testing.T, addr, request string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("reading response to %q: %v", strings.SplitN(request, "\r\n", 2)[0], err)
	}
	return strings.TrimSpace(line)
}

func TestRawTraversalAndPrefixConfusionAreRefused(t *testing.T) {
	t.Parallel()
	m := startMizuchi(t, twoBuckets)
	addr := strings.TrimPrefix(m.URL, "http://")
	tests := []struct {
		name, path, status string
	}{
		{"dot-dot into another bucket", "/uploads/../private/x", "400"},
		{"encoded dot-dot", "/uploads/%2e%2e/private/x", "400"},
		{"encoded slash and dot-dot", "/uploads/a%2F..%2F..%2Fprivate%2Fx", "400"},
		{"backslash dot-dot", "/uploads/..%5Cprivate%5Cx", "400"},
		{"raw backslash dot-dot", "/uploads/..\\private\\x", "400"},
		{"single dot", "/uploads/./x", "400"},
		{"NUL", "/uploads/a%00b", "400"},
		{"prefix confusion", "/uploads-evil/x", "404"},
		{"encoded slash in prefix", "/uploads%2F..%2Fprivate/x", "404"},
		{"double slash before prefix", "//uploads/x", "404"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := "PUT " + tt.path + " HTTP/1.1\r\nHost: " + addr + "\r\nContent-Length: 4\r\nConnection: close\r\n\r\nevil"
			line := sendRaw(t, addr, req)
			if !strings.Contains(line, " "+tt.status+" ") {
				t.Fatalf("PUT %s: %s, want %s", tt.path, line, tt.status)
			}
		})
	}
	if files := visibleFiles(t, filepath.Join(m.Dir, "private")); len(files) != 0 {
		t.Fatalf("files stored in the private bucket: %v", files)
	}
	for _, f := range visibleFiles(t, filepath.Join(m.Dir, "uploads")) {
		t.Errorf("file stored: %s", f)
	}
}

// TestClientDisconnectMidPutLeavesNothing cuts the connection halfway
// through a body: no object, no temp file.
func TestClientDisconnectMidPutLeavesNothing(t *testing.T) {
	t.Parallel()
	m := startMizuchi(t, twoBuckets)
	addr := strings.TrimPrefix(m.URL, "http://")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "PUT /uploads/half.bin HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n", addr, 8<<20)
	if _, err := c.Write(randomBytes(t, 4<<20)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a temp file while the body streams", func() bool {
		return len(visibleFiles(t, filepath.Join(m.Dir, "uploads"))) > 0
	})
	c.(*net.TCPConn).SetLinger(0)
	c.Close()
	waitFor(t, "the upload to be cleaned up", func() bool {
		return len(visibleFiles(t, filepath.Join(m.Dir, "uploads"))) == 0 && strings.Contains(m.Proc.Output(), `"key":"half.bin"`)
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestGracefulShutdownLetsUploadsFinish sends SIGTERM while a body is
// streaming; the upload completes within the grace period and the server
// exits cleanly. A second upload that outlives the grace period is aborted
// and leaves nothing behind.
func TestGracefulShutdownLetsUploadsFinish(t *testing.T) {
	t.Parallel()
	m := startMizuchi(t, twoBuckets)
	addr := strings.TrimPrefix(m.URL, "http://")
	data := randomBytes(t, 1<<20)

	finishing, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer finishing.Close()
	stalled, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	fmt.Fprintf(finishing, "PUT /uploads/finishes.bin HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n", addr, len(data))
	finishing.Write(data[:len(data)/2])
	fmt.Fprintf(stalled, "PUT /uploads/stalls.bin HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n", addr, len(data))
	stalled.Write(data[:len(data)/2])
	waitFor(t, "both uploads in flight", func() bool {
		return len(visibleFiles(t, filepath.Join(m.Dir, "uploads"))) == 2
	})

	if err := m.Proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "shutdown to begin", func() bool { return strings.Contains(m.Proc.Output(), "shutting down") })
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("new connections still accepted during shutdown")
	}
	finishing.Write(data[len(data)/2:])
	line, err := bufio.NewReader(finishing).ReadString('\n')
	if err != nil || !strings.Contains(line, "200") {
		t.Fatalf("upload during shutdown: %q %v", line, err)
	}
	select {
	case <-m.Proc.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("server did not stop after the grace period")
	}
	if err := m.Proc.Err(); err != nil {
		t.Fatalf("exit: %v\n%s", err, m.Proc.Output())
	}
	assertFile(t, filepath.Join(m.Dir, "uploads/finishes.bin"), data)
	if files := visibleFiles(t, filepath.Join(m.Dir, "uploads")); len(files) != 2 { // the object and its metadata
		t.Fatalf("left behind: %v", files)
	}
	if _, err := os.Stat(filepath.Join(m.Dir, "uploads/stalls.bin")); err == nil {
		t.Fatal("stalled upload became an object")
	}
}

// TestCORSThroughTheBinary checks that a bucket's cors section reaches the
// handler: a browser's preflight is answered and the upload's answer can be
// read by the page; a bucket without cors refuses preflights.
func TestCORSThroughTheBinary(t *testing.T) {
	t.Parallel()
	m := startMizuchi(t, twoBuckets+`    cors:
      allowed_origins: ["https://app.example"]
`)
	pre := http.Header{"Origin": {"https://app.example"}, "Access-Control-Request-Method": {"PUT"}, "Access-Control-Request-Headers": {"content-type"}}
	resp, body := rawRequest(t, "OPTIONS", m.URL+"/private/page/photo.jpg", nil, pre)
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Fatalf("preflight: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	resp, body = rawRequest(t, "OPTIONS", m.URL+"/uploads/page/photo.jpg", nil, pre)
	if resp.StatusCode != 403 || !strings.Contains(body, "AccessForbidden") {
		t.Fatalf("preflight on a bucket without cors: %d %s", resp.StatusCode, body)
	}
	resp, body = rawRequest(t, "PUT", m.URL+"/private/page/photo.jpg", strings.NewReader("jpeg"), http.Header{"Origin": {"https://app.example"}})
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		!strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "ETag") {
		t.Fatalf("cross-origin upload: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	assertFile(t, filepath.Join(m.Dir, "private/page/photo.jpg"), []byte("jpeg"))
}
