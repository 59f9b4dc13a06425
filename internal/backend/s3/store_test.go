package s3

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"hash/crc32"
	"testing"

	"github.com/mizuchi-uploadr/mizuchi/internal/backend"
	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

func TestPutObjectStoresBytesAndMetadataOnTheStore(t *testing.T) {
	e := startEnv(t)
	s := e.store(t, e.gw.Endpoint, nil)
	data := randBytes(1 << 20)
	sum := md5.Sum(data)
	out, err := s.PutObject(ctxT(t), &backend.PutObjectInput{
		Key: "dir/a.bin", Body: bytes.NewReader(data), Size: int64(len(data)),
		Metadata: backend.Metadata{ContentType: "application/x-test", CacheControl: "no-cache",
			ContentDisposition: "attachment", User: map[string]string{"owner": "alice"}},
		Integrity: backend.Integrity{ContentMD5: base64.StdEncoding.EncodeToString(sum[:])},
	})
	if err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	if want := `"` + hexs(sum[:]) + `"`; out.ETag != want {
		t.Errorf("ETag %s, want %s", out.ETag, want)
	}
	assertStored(t, e, "dir/a.bin", data)
	h := e.gw.Head(t, testBucket, "dir/a.bin")
	if h == nil || *h.ContentType != "application/x-test" || h.Metadata["owner"] != "alice" || *h.CacheControl != "no-cache" {
		t.Errorf("metadata not stored: %+v", h)
	}
}

func hexs(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

func TestCorruptBodyIsRejectedByTheStore(t *testing.T) {
	e := startEnv(t)
	s := e.store(t, e.gw.Endpoint, nil)
	data := randBytes(64 << 10)
	wrong := md5.Sum([]byte("something else"))
	_, err := s.PutObject(ctxT(t), &backend.PutObjectInput{
		Key: "bad.bin", Body: bytes.NewReader(data), Size: int64(len(data)),
		Integrity: backend.Integrity{ContentMD5: base64.StdEncoding.EncodeToString(wrong[:])},
	})
	if !errors.Is(err, s3err.ErrBadDigest) {
		t.Fatalf("err = %v, want BadDigest", err)
	}
	e.assertClean(t, "bad.bin")
}

func TestKeyPrefixIsAppliedToEveryKey(t *testing.T) {
	e := startEnv(t)
	s := e.store(t, e.gw.Endpoint, func(o *Options) { o.Config.KeyPrefix = "tenant/" })
	ctx := ctxT(t)
	if _, err := s.PutObject(ctx, &backend.PutObjectInput{Key: "k", Body: bytes.NewReader([]byte("hi")), Size: 2}); err != nil {
		t.Fatal(err)
	}
	assertStored(t, e, "tenant/k", []byte("hi"))
	c, err := s.CreateMultipartUpload(ctx, &backend.CreateMultipartUploadInput{Key: "m"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.UploadPart(ctx, &backend.UploadPartInput{Key: "m", UploadID: c.UploadID, PartNumber: 1, Body: bytes.NewReader([]byte("part")), Size: 4})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CompleteMultipartUpload(ctx, &backend.CompleteMultipartUploadInput{Key: "m", UploadID: c.UploadID,
		Parts: []backend.CompletedPart{{PartNumber: 1, ETag: p.ETag}}}); err != nil {
		t.Fatal(err)
	}
	assertStored(t, e, "tenant/m", []byte("part"))
}

func TestMultipartCallsMapOneToOne(t *testing.T) {
	e := startEnv(t)
	s := e.store(t, e.gw.Endpoint, nil)
	ctx := ctxT(t)
	c, err := s.CreateMultipartUpload(ctx, &backend.CreateMultipartUploadInput{Key: "mp.bin",
		Metadata: backend.Metadata{ContentType: "text/plain"}})
	if err != nil {
		t.Fatal(err)
	}
	p1 := randBytes(5 << 20)
	p2 := randBytes(1234)
	var parts []backend.CompletedPart
	for i, b := range [][]byte{p1, p2} {
		out, err := s.UploadPart(ctx, &backend.UploadPartInput{Key: "mp.bin", UploadID: c.UploadID,
			PartNumber: int32(i + 1), Body: bytes.NewReader(b), Size: int64(len(b))})
		if err != nil {
			t.Fatalf("UploadPart %d: %v", i+1, err)
		}
		parts = append(parts, backend.CompletedPart{PartNumber: int32(i + 1), ETag: out.ETag})
	}
	lp, err := s.ListParts(ctx, &backend.ListPartsInput{Key: "mp.bin", UploadID: c.UploadID})
	if err != nil {
		t.Fatal(err)
	}
	if len(lp.Parts) != 2 || lp.Parts[0].Size != 5<<20 || lp.Parts[1].ETag != parts[1].ETag {
		t.Fatalf("ListParts = %+v", lp)
	}
	if e.gw.OpenUploads(t, testBucket) != 1 {
		t.Fatal("upload id is not the store's")
	}
	if _, err := s.CompleteMultipartUpload(ctx, &backend.CompleteMultipartUploadInput{Key: "mp.bin", UploadID: c.UploadID, Parts: parts}); err != nil {
		t.Fatal(err)
	}
	assertStored(t, e, "mp.bin", append(append([]byte{}, p1...), p2...))

	// Abort and NoSuchUpload.
	c2, err := s.CreateMultipartUpload(ctx, &backend.CreateMultipartUploadInput{Key: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AbortMultipartUpload(ctx, &backend.AbortMultipartUploadInput{Key: "x", UploadID: c2.UploadID}); err != nil {
		t.Fatal(err)
	}
	_, err = s.UploadPart(ctx, &backend.UploadPartInput{Key: "x", UploadID: c2.UploadID, PartNumber: 1, Body: bytes.NewReader([]byte("a")), Size: 1})
	if !errors.Is(err, s3err.ErrNoSuchUpload) {
		t.Fatalf("part of aborted upload: %v, want NoSuchUpload", err)
	}
	e.assertClean(t, "x")
}

func TestCheckReportsReachability(t *testing.T) {
	e := startEnv(t)
	if err := e.store(t, e.gw.Endpoint, nil).Check(ctxT(t)); err != nil {
		t.Fatalf("Check: %v", err)
	}
	missing := e.store(t, e.gw.Endpoint, func(o *Options) { o.Config.Bucket = "nope" })
	if err := missing.Check(ctxT(t)); err == nil {
		t.Fatal("Check on a missing bucket passed")
	}
	down := e.store(t, "http://127.0.0.1:1", nil)
	err := down.Check(ctxT(t))
	if !errors.Is(err, s3err.ErrServiceUnavailable) {
		t.Fatalf("Check on a dead endpoint: %v, want ServiceUnavailable", err)
	}
}

// A client that names the part checksum algorithm but sends the value in
// an aws-chunked trailer still gets the part into an upload created with
// that algorithm: the backend computes the checksum and sends it along.
func TestTrailingChecksumPartsReachAChecksumUpload(t *testing.T) {
	e := startEnv(t)
	s := e.store(t, e.gw.Endpoint, nil)
	ctx := ctxT(t)
	c, err := s.CreateMultipartUpload(ctx, &backend.CreateMultipartUploadInput{Key: "trailing.bin", ChecksumAlgorithm: "CRC32"})
	if err != nil {
		t.Fatal(err)
	}
	p1, p2 := randBytes(5<<20), randBytes(777)
	var parts []backend.CompletedPart
	for i, b := range [][]byte{p1, p2} {
		out, err := s.UploadPart(ctx, &backend.UploadPartInput{Key: "trailing.bin", UploadID: c.UploadID,
			PartNumber: int32(i + 1), Body: bytes.NewReader(b), Size: int64(len(b)),
			Integrity: backend.Integrity{Checksum: backend.Checksum{Algorithm: "CRC32"}}})
		if err != nil {
			t.Fatalf("UploadPart %d: %v", i+1, err)
		}
		h := crc32.NewIEEE()
		h.Write(b)
		if want := base64.StdEncoding.EncodeToString(h.Sum(nil)); out.Checksum.Value != want {
			t.Fatalf("part %d checksum %q, want %q", i+1, out.Checksum.Value, want)
		}
		parts = append(parts, backend.CompletedPart{PartNumber: int32(i + 1), ETag: out.ETag, Checksum: out.Checksum})
	}
	if _, err := s.CompleteMultipartUpload(ctx, &backend.CompleteMultipartUploadInput{Key: "trailing.bin", UploadID: c.UploadID, Parts: parts}); err != nil {
		t.Fatal(err)
	}
	assertStored(t, e, "trailing.bin", append(append([]byte{}, p1...), p2...))
}
