package e2e

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mizuchi-uploadr/mizuchi/internal/auth/jwt"
)

const (
	uclSecret    = "upload-client-jwt-secret-0123456789"
	uclAccessKey = "AKIAUPLOADCLIENT"
	uclSecretKey = "upload/client+secret/key0123456789abcdef"
)

const uclConfig = `
server:
  address: "127.0.0.1:{{S3_PORT}}"
  shutdown_grace_seconds: 3
metrics:
  address: "127.0.0.1:{{METRICS_PORT}}"
logging:
  level: info
buckets:
  - name: files
    path_prefix: /files
    filesystem: { root: "{{DIR}}/files" }
  - name: secure
    path_prefix: /secure
    filesystem: { root: "{{DIR}}/secure" }
    auth:
      enabled: true
      jwt: { algorithm: HS256, secret: "` + uclSecret + `" }
  - name: signed
    path_prefix: /signed
    filesystem: { root: "{{DIR}}/signed" }
    auth:
      enabled: true
      sigv4:
        region: eu-central-1
        credentials:
          - access_key: ` + uclAccessKey + `
            secret_key: "` + uclSecretKey + `"
            subject: uploader
`

// uclRun runs "mizuchi upload" with exactly the given environment and
// returns its exit code, stdout and stderr.
func uclRun(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, mizuchiBin, append([]string{"upload"}, args...)...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("running mizuchi upload: %v", err)
		}
		code = ee.ExitCode()
	}
	return code, stdout.String(), stderr.String()
}

func uclFile(t *testing.T, dir, name string, size int) (string, []byte) {
	t.Helper()
	b := randomBytes(t, size)
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p, b
}

// uclOpenUploads lists the multipart uploads a filesystem bucket still holds.
func uclOpenUploads(t *testing.T, root string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(root, ".mizuchi", "uploads"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range entries {
		ids = append(ids, e.Name())
	}
	return ids
}

func TestUploadClientAgainstTheBinary(t *testing.T) {
	t.Parallel()
	m := startMizuchi(t, uclConfig)
	src := t.TempDir()
	small, smallData := uclFile(t, src, "notes.txt", 1234)
	big, bigData := uclFile(t, src, "big.bin", 20<<20+12345) // 5 parts of 5 MiB
	multipart := []string{"--part-size", "5MiB", "--multipart-threshold", "8MiB", "--concurrency", "3"}
	token, err := jwt.Mint(jwt.MintOptions{Subject: "alice", Secret: []byte(uclSecret), TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name       string
		env        []string
		args       []string
		wantCode   int
		stored     map[string][]byte // path under m.Dir → content
		wantStdout []string
		wantStderr string
	}{
		{name: "small file anonymous", args: []string{small, m.URL + "/files/docs/"}, wantCode: 0,
			stored: map[string][]byte{"files/docs/notes.txt": smallData}, wantStdout: []string{"files/docs/notes.txt\t1234\t\"" + md5hex(smallData) + "\""}},
		{name: "multipart anonymous", args: append(append([]string{}, multipart...), big, m.URL+"/files/blobs/renamed.bin"), wantCode: 0,
			stored: map[string][]byte{"files/blobs/renamed.bin": bigData}, wantStdout: []string{"files/blobs/renamed.bin\t20983865\t\"", "-5\""}},
		{name: "two files at once", args: []string{small, big, m.URL + "/files/both"}, wantCode: 0,
			stored: map[string][]byte{"files/both/notes.txt": smallData, "files/both/big.bin": bigData}},
		{name: "no such bucket", args: []string{small, m.URL + "/nowhere/"}, wantCode: 1, wantStderr: "NoSuchBucket"},
		{name: "traversal key refused", args: []string{small, m.URL + "/files/../secure/x"}, wantCode: 1, wantStderr: "InvalidArgument"},
		{name: "jwt bucket without token", args: []string{small, m.URL + "/secure/"}, wantCode: 3, wantStderr: "(HTTP 401)"},
		{name: "jwt bucket with a bad token", args: []string{"--token", token + "x", small, m.URL + "/secure/"}, wantCode: 3},
		{name: "jwt bucket with token flag", args: append(append([]string{"--token", token}, multipart...), big, m.URL+"/secure/t/"), wantCode: 0,
			stored: map[string][]byte{"secure/t/big.bin": bigData}},
		{name: "jwt bucket with MIZUCHI_TOKEN", env: []string{"MIZUCHI_TOKEN=" + token}, args: []string{small, m.URL + "/secure/env/"}, wantCode: 0,
			stored: map[string][]byte{"secure/env/notes.txt": smallData}},
		{name: "sigv4 bucket multipart, key needing escapes", env: []string{"AWS_ACCESS_KEY_ID=" + uclAccessKey, "AWS_SECRET_ACCESS_KEY=" + uclSecretKey},
			args: append(append([]string{"--region", "eu-central-1"}, multipart...), big, m.URL+"/signed/a dir/ü+(1)=x.bin"), wantCode: 0,
			stored: map[string][]byte{"signed/a dir/ü+(1)=x.bin": bigData}},
		{name: "sigv4 bucket small with flags", args: []string{"--access-key", uclAccessKey, "--secret-key", uclSecretKey, "--region", "eu-central-1", small, m.URL + "/signed/"}, wantCode: 0,
			stored: map[string][]byte{"signed/notes.txt": smallData}},
		{name: "sigv4 wrong secret", args: []string{"--access-key", uclAccessKey, "--secret-key", "wrong", "--region", "eu-central-1", small, m.URL + "/signed/"}, wantCode: 3, wantStderr: "SignatureDoesNotMatch"},
		{name: "server down", args: []string{"--retries", "1", small, "http://127.0.0.1:1/files/"}, wantCode: 4},
		{name: "usage", args: []string{small}, wantCode: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := uclRun(t, tt.env, tt.args...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.wantCode, stdout, stderr)
			}
			for _, want := range tt.wantStdout {
				if !strings.Contains(stdout, want) {
					t.Errorf("stdout %q lacks %q", stdout, want)
				}
			}
			if !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("stderr %q lacks %q", stderr, tt.wantStderr)
			}
			if tt.wantCode != 2 && strings.Contains(stderr, "\r") {
				t.Errorf("progress line drawn although stderr is not a terminal: %q", stderr)
			}
			for path, want := range tt.stored {
				assertFile(t, filepath.Join(m.Dir, path), want)
			}
		})
	}
	for _, root := range []string{"files", "secure", "signed"} {
		if open := uclOpenUploads(t, filepath.Join(m.Dir, root)); len(open) != 0 {
			t.Errorf("%s: multipart uploads left open: %v", root, open)
		}
	}
	if files := visibleFiles(t, filepath.Join(m.Dir, "secure")); len(files) == 0 {
		t.Fatal("nothing stored in the JWT bucket")
	}
}

// uclStallProxy forwards TCP connections to target, but stops forwarding a
// connection's request bytes once it has carried more than limit of them:
// an upload whose parts hang mid-body while small requests (create,
// abort) still go through.
type uclStallProxy struct {
	ln      net.Listener
	target  string
	limit   int64
	stalled chan struct{}
	once    sync.Once
}

func uclStartStallProxy(t *testing.T, target string, limit int64) *uclStallProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &uclStallProxy{ln: ln, target: target, limit: limit, stalled: make(chan struct{})}
	t.Cleanup(func() { ln.Close() })
	go p.serve()
	return p
}

func (p *uclStallProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.handle(c)
	}
}

func (p *uclStallProxy) handle(client net.Conn) {
	defer client.Close()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer server.Close()
	go func() {
		_, _ = io.Copy(client, server)
		client.Close()
	}()
	var sent atomic.Int64
	buf := make([]byte, 32<<10)
	for {
		n, err := client.Read(buf)
		if n > 0 {
			if sent.Add(int64(n)) > p.limit {
				p.once.Do(func() { close(p.stalled) })
				continue // swallowed: the server waits for the rest of the body
			}
			if _, werr := server.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func TestUploadClientInterruptAbortsTheMultipartUpload(t *testing.T) {
	t.Parallel()
	m := startMizuchi(t, uclConfig)
	proxy := uclStartStallProxy(t, strings.TrimPrefix(m.URL, "http://"), 2<<20)
	src := t.TempDir()
	big, _ := uclFile(t, src, "big.bin", 30<<20)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, mizuchiBin, "upload", "--part-size", "5MiB", "--multipart-threshold", "5MiB",
		"--concurrency", "2", big, "http://"+proxy.ln.Addr().String()+"/files/int/")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-proxy.stalled:
	case <-time.After(time.Minute):
		t.Fatal("upload never reached the stall")
	}
	// The upload is open on the server and parts are hanging mid-body.
	if open := uclOpenUploads(t, filepath.Join(m.Dir, "files")); len(open) != 1 {
		t.Fatalf("open uploads before the interrupt: %v", open)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 130 {
		t.Fatalf("exit %v, want 130\nstderr: %s", err, stderr.String())
	}
	if stdout.Len() != 0 || !strings.Contains(stderr.String(), "interrupted") {
		t.Fatalf("stdout %q, stderr %q", stdout.String(), stderr.String())
	}
	if open := uclOpenUploads(t, filepath.Join(m.Dir, "files")); len(open) != 0 {
		t.Fatalf("multipart upload left open after the interrupt: %v", open)
	}
	if _, err := os.Stat(filepath.Join(m.Dir, "files", "int", "big.bin")); !os.IsNotExist(err) {
		t.Fatalf("object exists after the interrupt: %v", err)
	}
}

func TestUploadClientOverHTTPSWithCAFile(t *testing.T) {
	t.Parallel()
	certDir := t.TempDir()
	caFile, certFile, keyFile, _ := cliCerts(t, certDir)
	cfg := strings.Replace(uclConfig, "  shutdown_grace_seconds: 3\n",
		"  shutdown_grace_seconds: 3\n  tls: { cert_file: \""+certFile+"\", key_file: \""+keyFile+"\" }\n", 1)
	m := startMizuchi(t, cfg)
	url := strings.Replace(m.URL, "http://", "https://", 1)
	src := t.TempDir()
	small, smallData := uclFile(t, src, "small.txt", 999)
	big, bigData := uclFile(t, src, "big.bin", 12<<20+1)

	code, stdout, stderr := uclRun(t, nil, "--ca-file", caFile, "--part-size", "5MiB", "--multipart-threshold", "8MiB",
		small, big, url+"/files/tls/")
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	assertFile(t, filepath.Join(m.Dir, "files/tls/small.txt"), smallData)
	assertFile(t, filepath.Join(m.Dir, "files/tls/big.bin"), bigData)
	if !strings.Contains(stdout, "files/tls/big.bin\t12582913\t\"") || !strings.Contains(stdout, "-3\"") {
		t.Fatalf("stdout %q", stdout)
	}

	code, _, stderr = uclRun(t, nil, small, url+"/files/untrusted/")
	if code != 1 || !strings.Contains(stderr, "certificate") {
		t.Fatalf("untrusted server: exit %d, stderr %q; want 1 and a certificate error", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(m.Dir, "files/untrusted")); !os.IsNotExist(err) {
		t.Fatalf("something stored without a trusted connection: %v", err)
	}
}
