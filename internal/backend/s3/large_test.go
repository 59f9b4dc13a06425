package s3

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"testing"

	"github.com/mizuchi-uploadr/mizuchi/internal/backend"
	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

func TestLargePutBecomesMultipartAndLandsWhole(t *testing.T) {
	e := startEnv(t)
	data := randBytes(23<<20 + 4321)
	sum := md5.Sum(data)
	cases := []struct {
		name   string
		conc   int
		memory int64
	}{
		{name: "streamed parts", conc: 1},
		{name: "parallel parts in memory", conc: 4, memory: 64 << 20},
		{name: "parallel parts spooled", conc: 4, memory: 0},
		{name: "parallel parts memory then spool", conc: 3, memory: 10 << 20},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := e.store(t, e.gw.Endpoint, func(o *Options) {
				o.Upload.MultipartThreshold = 8 << 20
				o.Upload.ConcurrentParts = tc.conc
				o.Memory = NewMemoryBudget(tc.memory)
			})
			key := fmt.Sprintf("big-%d-%d", tc.conc, tc.memory)
			out, err := s.PutObject(ctxT(t), &backend.PutObjectInput{Key: key, Body: bytes.NewReader(data),
				Size: int64(len(data)), Integrity: backend.Integrity{ContentMD5: base64.StdEncoding.EncodeToString(sum[:])}})
			if err != nil {
				t.Fatalf("PutObject: %v", err)
			}
			if want := "-5\""; len(out.ETag) < 3 || out.ETag[len(out.ETag)-3:] != want {
				t.Errorf("ETag %s is not a 5-part multipart ETag", out.ETag)
			}
			assertStored(t, e, key, data)
			if n := e.gw.OpenUploads(t, testBucket); n != 0 {
				t.Errorf("%d uploads left open", n)
			}
		})
	}
}

func TestLargePutWithWrongDigestLeavesNothing(t *testing.T) {
	e := startEnv(t)
	data := randBytes(12 << 20)
	wrong := md5.Sum([]byte("x"))
	for _, conc := range []int{1, 4} {
		t.Run(fmt.Sprint(conc), func(t *testing.T) {
			s := e.store(t, e.gw.Endpoint, func(o *Options) {
				o.Upload.MultipartThreshold = 8 << 20
				o.Upload.ConcurrentParts = conc
			})
			_, err := s.PutObject(ctxT(t), &backend.PutObjectInput{Key: "wrong", Body: bytes.NewReader(data),
				Size: int64(len(data)), Integrity: backend.Integrity{ContentMD5: base64.StdEncoding.EncodeToString(wrong[:])}})
			if !errors.Is(err, s3err.ErrBadDigest) {
				t.Fatalf("err = %v, want BadDigest", err)
			}
			e.assertClean(t, "wrong")
		})
	}
}

func TestLargePutWithShortBodyLeavesNothing(t *testing.T) {
	e := startEnv(t)
	data := randBytes(10 << 20)
	for _, conc := range []int{1, 4} {
		t.Run(fmt.Sprint(conc), func(t *testing.T) {
			s := e.store(t, e.gw.Endpoint, func(o *Options) {
				o.Upload.MultipartThreshold = 8 << 20
				o.Upload.ConcurrentParts = conc
			})
			_, err := s.PutObject(ctxT(t), &backend.PutObjectInput{Key: "short", Body: bytes.NewReader(data),
				Size: int64(len(data)) + 1})
			if !errors.Is(err, s3err.ErrIncompleteBody) {
				t.Fatalf("err = %v, want IncompleteBody", err)
			}
			e.assertClean(t, "short")
		})
	}
}

func TestPartSizeGrowsToStayWithinTenThousandParts(t *testing.T) {
	s := &Store{opts: Options{}}
	s.opts.Upload.PartSize = 5 << 20
	if got := s.partSize(100 << 30); got*10000 < 100<<30 || got%(1<<20) != 0 {
		t.Fatalf("partSize(100GiB) = %d", got)
	}
	if got := s.partSize(1 << 30); got != 5<<20 {
		t.Fatalf("partSize(1GiB) = %d, want the configured 5MiB", got)
	}
}
