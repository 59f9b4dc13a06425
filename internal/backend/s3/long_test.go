package s3

import (
	"context"
	"flag"
	"testing"
	"time"

	"github.com/mizuchi-uploadr/mizuchi/internal/backend"
)

var long = flag.Bool("long", false, "run the multi-gigabyte upload tests")

// TestSixGiBSinglePutLandsWhole streams a generated 6 GiB body (never
// held anywhere) through the auto-multipart path and compares the MD5 of
// what versitygw stored. Run with -long (make test runs it in parallel
// with the rest): go test -run SixGiB -timeout 30m ./internal/backend/s3/ -long
func TestSixGiBSinglePutLandsWhole(t *testing.T) {
	if !*long {
		t.Skip("multi-gigabyte test: run with -long")
	}
	e := startEnv(t)
	const size = 6 << 30
	s := e.store(t, e.gw.Endpoint, func(o *Options) {
		o.Upload.MultipartThreshold = 50 << 20
		o.Upload.PartSize = 64 << 20
		o.Upload.ConcurrentParts = 4
		o.Memory = NewMemoryBudget(32 << 20)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	start := time.Now()
	out, err := s.PutObject(ctx, &backend.PutObjectInput{Key: "six", Body: genReader(size, 6), Size: size})
	if err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	t.Logf("6 GiB put in %v (%.0f MiB/s), ETag %s", time.Since(start).Round(time.Second),
		float64(size)/(1<<20)/time.Since(start).Seconds(), out.ETag)
	rc, ok, err := e.gw.Open(ctx, testBucket, "six")
	if err != nil || !ok {
		t.Fatalf("stored object: %v %v", ok, err)
	}
	defer rc.Close()
	if md5Of(rc) != md5Of(genReader(size, 6)) {
		t.Fatal("stored bytes differ from the generated body")
	}
	e.assertClean(t, "nothing-else")
}
