package e2e

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/testproc"
)

// mizuchiBin is the binary under test, built by TestMain.
var mizuchiBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mizuchi-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	mizuchiBin = filepath.Join(dir, "mizuchi")
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	build := exec.Command("go", "build", "-o", mizuchiBin, "./cmd/mizuchi")
	build.Dir = root
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building mizuchi:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Mizuchi is a running mizuchi binary.
type Mizuchi struct {
	URL        string
	MetricsURL string
	Dir        string
	Proc       *testproc.Proc
}

// startMizuchi writes config (with {{S3_PORT}} and {{METRICS_PORT}}
// replaced by free ports, {{DIR}} by the working directory) and runs
// `mizuchi serve --config` in a fresh working directory.
func startMizuchi(t *testing.T, config string, env ...string) *Mizuchi {
	t.Helper()
	dir := t.TempDir()
	port, mport := testproc.FreePort(t), testproc.FreePort(t)
	r := strings.NewReplacer("{{S3_PORT}}", fmt.Sprint(port), "{{METRICS_PORT}}", fmt.Sprint(mport), "{{DIR}}", dir)
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(r.Replace(config)), 0o600); err != nil {
		t.Fatal(err)
	}
	return runMizuchi(t, dir, fmt.Sprintf("http://127.0.0.1:%d", port), fmt.Sprintf("http://127.0.0.1:%d", mport),
		[]string{"serve", "--config", path}, env...)
}

func runMizuchi(t *testing.T, dir, url, metricsURL string, args []string, env ...string) *Mizuchi {
	t.Helper()
	p := testproc.StartDir(t, dir, mizuchiBin, args, env...)
	testproc.WaitHTTP(t, p, url+"/healthz", 15*time.Second)
	return &Mizuchi{URL: url, MetricsURL: metricsURL, Dir: dir, Proc: p}
}

// s3Client returns an aws-sdk-go-v2 client for a Mizuchi endpoint.
// Anonymous when accessKey is empty.
func s3Client(t *testing.T, endpoint, accessKey, secretKey string, opts ...func(*s3.Options)) *s3.Client {
	t.Helper()
	cfg := aws.Config{Region: "us-east-1"}
	if accessKey == "" {
		cfg.Credentials = aws.AnonymousCredentials{}
	} else {
		cfg.Credentials = credentials.NewStaticCredentialsProvider(accessKey, secretKey, "")
	}
	return s3.NewFromConfig(cfg, append([]func(*s3.Options){func(o *s3.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.UsePathStyle = true
		o.RetryMaxAttempts = 1
	}}, opts...)...)
}

// rawRequest sends a request exactly as given (path not normalised).
func rawRequest(t *testing.T, method, url string, body io.Reader, header http.Header) (*http.Response, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}
