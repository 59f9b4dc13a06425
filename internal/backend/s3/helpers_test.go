package s3

import (
	"bytes"
	"context"
	"crypto/md5"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
	"github.com/mizuchi-uploadr/mizuchi/internal/telemetry"
	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/versitygw"
)

func TestMain(m *testing.M) {
	// The tools live in the project's cache; make test puts it on PATH.
	if home, err := os.UserHomeDir(); err == nil {
		os.Setenv("PATH", os.Getenv("PATH")+string(os.PathListSeparator)+home+"/.cache/mizuchi/tools/bin")
	}
	os.Exit(m.Run())
}

const testBucket = "store"

type env struct {
	gw      *versitygw.Server
	metrics *telemetry.Metrics
}

func startEnvB(b *testing.B) *env {
	b.Helper()
	gw := versitygw.Start(b)
	gw.CreateBucket(b, testBucket)
	return &env{gw: gw, metrics: telemetry.NewMetrics(prometheus.NewRegistry(), telemetry.BuildInfo{})}
}

func (e *env) storeB(b *testing.B, mod func(*Options)) *Store {
	b.Helper()
	o := Options{
		Config: config.S3Backend{
			Bucket: testBucket, Region: e.gw.Region, Endpoint: e.gw.Endpoint, ForcePathStyle: true,
			AccessKey: e.gw.AccessKey, SecretKey: e.gw.SecretKey,
		},
		Upload: config.Upload{MultipartThreshold: 1 << 30, PartSize: 16 << 20, ConcurrentParts: 4, SpoolDir: b.TempDir()},
	}
	if mod != nil {
		mod(&o)
	}
	s, err := New(context.Background(), o)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

func startEnv(t *testing.T) *env {
	t.Helper()
	gw := versitygw.Start(t)
	gw.CreateBucket(t, testBucket)
	return &env{gw: gw, metrics: telemetry.NewMetrics(prometheus.NewRegistry(), telemetry.BuildInfo{})}
}

// store builds a Store on endpoint (the gateway, or a proxy in front).
func (e *env) store(t *testing.T, endpoint string, mod func(*Options)) *Store {
	t.Helper()
	o := Options{
		Config: config.S3Backend{
			Bucket: testBucket, Region: e.gw.Region, Endpoint: endpoint, ForcePathStyle: true,
			AccessKey: e.gw.AccessKey, SecretKey: e.gw.SecretKey,
		},
		Upload: config.Upload{
			MultipartThreshold: 50 << 20, PartSize: 5 << 20, ConcurrentParts: 4,
			MaxMemoryBuffer: 32 << 20, SpoolDir: t.TempDir(),
		},
		BucketName: "uploads",
		Metrics:    e.metrics,
		RetryBase:  10 * time.Millisecond,
		RetryMax:   50 * time.Millisecond,
	}
	if mod != nil {
		mod(&o)
	}
	s, err := New(context.Background(), o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(n), byte(n >> 8), byte(n >> 16)})
	_, _ = r.Read(b)
	return b
}

// genReader streams n pseudo-random bytes without storing them.
func genReader(n int64, seed byte) io.Reader {
	return io.LimitReader(rand.NewChaCha8([32]byte{seed}), n)
}

func md5Of(r io.Reader) [16]byte {
	h := md5.New()
	_, _ = io.Copy(h, r)
	var s [16]byte
	copy(s[:], h.Sum(nil))
	return s
}

// assertClean checks directly on the gateway that key does not exist and
// no multipart upload is open.
func (e *env) assertClean(t *testing.T, key string) {
	t.Helper()
	// The store may still be finishing the abandoned request: a
	// truncated body turning into an object would show up late.
	time.Sleep(500 * time.Millisecond)
	if n := e.gw.OpenUploads(t, testBucket); n != 0 {
		t.Errorf("%d multipart uploads left open on the store", n)
	}
	if _, ok, err := e.gw.Get(context.Background(), testBucket, key); err != nil || ok {
		t.Errorf("object %q exists=%v (err %v), want none", key, ok, err)
	}
}

func assertStored(t *testing.T, e *env, key string, want []byte) {
	t.Helper()
	got := e.gw.Object(t, testBucket, key)
	if !bytes.Equal(got, want) {
		t.Fatalf("stored %d bytes differ from the %d sent", len(got), len(want))
	}
}

func mustNotContain(t *testing.T, msg string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			t.Errorf("message %q leaks %q", msg, s)
		}
	}
}
