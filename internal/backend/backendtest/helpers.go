package backendtest

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	mrand "math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/mizuchi-uploadr/mizuchi/internal/backend"
	"github.com/mizuchi-uploadr/mizuchi/internal/checksum"
	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

// patternReader streams size deterministic pseudo-random bytes without
// holding them in memory.
type patternReader struct {
	src  *mrand.ChaCha8
	left int64
}

func newPattern(seed byte, size int64) *patternReader {
	var s [32]byte
	s[0] = seed
	return &patternReader{src: mrand.NewChaCha8(s), left: size}
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.left == 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.left {
		b = b[:p.left]
	}
	n, _ := p.src.Read(b)
	p.left -= int64(n)
	return n, nil
}

// pattern returns the bytes newPattern(seed, size) streams.
func pattern(seed byte, size int64) []byte {
	b, _ := io.ReadAll(newPattern(seed, size))
	return b
}

// opaque hides the concrete type of a reader so that the backend sees a
// plain io.Reader, as it does with a request body.
type opaque struct{ r io.Reader }

func (o opaque) Read(b []byte) (int, error) { return o.r.Read(b) }

func md5Hex(b []byte) string { s := md5.Sum(b); return hex.EncodeToString(s[:]) }

func md5B64(b []byte) string { s := md5.Sum(b); return base64.StdEncoding.EncodeToString(s[:]) }

func sum(alg string, b []byte) []byte { h := checksum.New(alg); h.Write(b); return h.Sum(nil) }

func sumB64(alg string, b []byte) string { return checksum.Encode(sum(alg, b)) }

// multipartETag is S3's ETag of a multipart object: the hex MD5 of the
// concatenated binary MD5s of its parts, a dash and the part count.
func multipartETag(parts ...[]byte) string {
	h := md5.New()
	for _, p := range parts {
		s := md5.Sum(p)
		h.Write(s[:])
	}
	return `"` + hex.EncodeToString(h.Sum(nil)) + "-" + strconv.Itoa(len(parts)) + `"`
}

// compositeChecksum is S3's COMPOSITE checksum of a multipart object.
func compositeChecksum(alg string, parts ...[]byte) string {
	h := checksum.New(alg)
	for _, p := range parts {
		h.Write(sum(alg, p))
	}
	return checksum.Encode(h.Sum(nil)) + "-" + strconv.Itoa(len(parts))
}

// env is one subtest's backend, prefix and bookkeeping.
type env struct {
	t        *testing.T
	b        backend.Backend
	ins      Inspector
	prefix   string
	minPart  int64
	baseline int
}

func newEnv(t *testing.T, newBackend func(t *testing.T) backend.Backend, opts Options, runPrefix string) *env {
	t.Helper()
	e := &env{
		t: t, b: newBackend(t), ins: opts.Inspect, minPart: opts.MinPartSize,
		prefix: runPrefix + slug(t.Name()) + "/",
	}
	n, err := e.ins.OpenUploads(context.Background())
	if err != nil {
		t.Fatalf("OpenUploads: %v", err)
	}
	e.baseline = n
	// Registered first, so it runs after the aborts registered later.
	t.Cleanup(func() {
		n, err := e.ins.OpenUploads(context.Background())
		if err != nil {
			t.Errorf("OpenUploads: %v", err)
		} else if n != e.baseline {
			t.Errorf("open multipart uploads: %d after the test, %d before: the test left one open", n, e.baseline)
		}
	})
	return e
}

func slug(name string) string {
	if i := strings.IndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, name)
}

func (e *env) key(name string) string { return e.prefix + name }

func (e *env) ctx() context.Context { return e.t.Context() }

func (e *env) put(key string, data []byte, integ backend.Integrity) (*backend.PutObjectOutput, error) {
	return e.b.PutObject(e.ctx(), &backend.PutObjectInput{
		Key: key, Body: opaque{bytes.NewReader(data)}, Size: int64(len(data)), Integrity: integ,
	})
}

func (e *env) mustPut(key string, data []byte) *backend.PutObjectOutput {
	e.t.Helper()
	out, err := e.put(key, data, backend.Integrity{})
	if err != nil {
		e.t.Fatalf("PutObject %q: %v", key, err)
	}
	return out
}

// wantObject checks the stored bytes of key.
func (e *env) wantObject(key string, want []byte) {
	e.t.Helper()
	got, found, err := e.ins.Object(context.Background(), key)
	if err != nil {
		e.t.Fatalf("inspect %q: %v", key, err)
	}
	if !found {
		e.t.Fatalf("object %q not stored", key)
	}
	if !bytes.Equal(got, want) {
		e.t.Fatalf("object %q: stored %d bytes (md5 %s), want %d bytes (md5 %s)",
			key, len(got), md5Hex(got), len(want), md5Hex(want))
	}
}

// wantAbsent checks that nothing is stored under key.
func (e *env) wantAbsent(key string) {
	e.t.Helper()
	_, found, err := e.ins.Object(context.Background(), key)
	if err != nil {
		e.t.Fatalf("inspect %q: %v", key, err)
	}
	if found {
		e.t.Fatalf("object %q is stored although the upload failed", key)
	}
}

// create starts a multipart upload that is aborted when the test ends
// unless it was completed or aborted (NoSuchUpload then) by the test.
func (e *env) create(key string, in *backend.CreateMultipartUploadInput) string {
	e.t.Helper()
	if in == nil {
		in = &backend.CreateMultipartUploadInput{}
	}
	in.Key = key
	out, err := e.b.CreateMultipartUpload(e.ctx(), in)
	if err != nil {
		e.t.Fatalf("CreateMultipartUpload %q: %v", key, err)
	}
	if out.UploadID == "" {
		e.t.Fatal("CreateMultipartUpload returned an empty upload id")
	}
	e.t.Cleanup(func() {
		err := e.b.AbortMultipartUpload(context.Background(), &backend.AbortMultipartUploadInput{Key: key, UploadID: out.UploadID})
		if err != nil && !errors.Is(err, s3err.ErrNoSuchUpload) {
			e.t.Errorf("abort %q at cleanup: %v", key, err)
		}
	})
	return out.UploadID
}

func (e *env) part(key, id string, n int32, data []byte, integ backend.Integrity) (*backend.UploadPartOutput, error) {
	return e.b.UploadPart(e.ctx(), &backend.UploadPartInput{
		Key: key, UploadID: id, PartNumber: n,
		Body: opaque{bytes.NewReader(data)}, Size: int64(len(data)), Integrity: integ,
	})
}

func (e *env) mustPart(key, id string, n int32, data []byte) backend.CompletedPart {
	e.t.Helper()
	out, err := e.part(key, id, n, data, backend.Integrity{})
	if err != nil {
		e.t.Fatalf("UploadPart %d: %v", n, err)
	}
	if want := `"` + md5Hex(data) + `"`; out.ETag != want {
		e.t.Fatalf("UploadPart %d ETag = %s, want %s", n, out.ETag, want)
	}
	return backend.CompletedPart{PartNumber: n, ETag: out.ETag}
}

func (e *env) complete(key, id string, parts ...backend.CompletedPart) (*backend.CompleteMultipartUploadOutput, error) {
	return e.b.CompleteMultipartUpload(e.ctx(), &backend.CompleteMultipartUploadInput{Key: key, UploadID: id, Parts: parts})
}

func (e *env) abort(key, id string) error {
	return e.b.AbortMultipartUpload(e.ctx(), &backend.AbortMultipartUploadInput{Key: key, UploadID: id})
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want %v", err, want)
	}
}

func randomPrefix() string {
	return "backendtest-" + strings.ToLower(rand.Text()[:10]) + "/"
}
