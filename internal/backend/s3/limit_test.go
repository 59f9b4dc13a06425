package s3

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/mizuchi-uploadr/mizuchi/internal/backend"
	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

// TestMaxSizePagesThroughTheStoresParts counts parts on a store that
// lists two parts per page: a Complete is refused or allowed from parts
// found on the third page.
func TestMaxSizePagesThroughTheStoresParts(t *testing.T) {
	e := startEnv(t)
	s := e.store(t, e.gw.Endpoint, nil)
	s.listPageSize = 2
	ctx := ctxT(t)
	const key = "paged.bin"
	up, err := s.CreateMultipartUpload(ctx, &backend.CreateMultipartUploadInput{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	var parts []backend.CompletedPart
	for n := int32(1); n <= 5; n++ {
		data := []byte(fmt.Sprintf("part %d of five", n)) // 14 bytes each
		out, err := s.UploadPart(ctx, &backend.UploadPartInput{Key: key, UploadID: up.UploadID, PartNumber: n, Body: bytes.NewReader(data), Size: int64(len(data))})
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, backend.CompletedPart{PartNumber: n, ETag: out.ETag})
	}
	complete := func(max int64, parts ...backend.CompletedPart) error {
		_, err := s.CompleteMultipartUpload(ctx, &backend.CompleteMultipartUploadInput{Key: key, UploadID: up.UploadID, Parts: parts, MaxSize: max})
		return err
	}
	// 70 bytes in all: the fifth part, on the third page, crosses 69.
	if err := complete(69, parts...); !errors.Is(err, s3err.ErrEntityTooLarge) {
		t.Fatalf("five parts over the limit: %v, want EntityTooLarge", err)
	}
	if err := complete(1<<20, parts[0], backend.CompletedPart{PartNumber: 6, ETag: parts[4].ETag}); !errors.Is(err, s3err.ErrInvalidPart) {
		t.Fatalf("a part past the last page: %v, want InvalidPart", err)
	}
	e.assertNoObject(t, key)
	// The fifth part alone, found on the third page, fits.
	if err := complete(14, parts[4]); err != nil {
		t.Fatalf("Complete of the last part alone: %v", err)
	}
	assertStored(t, e, key, []byte("part 5 of five"))
}

func (e *env) assertNoObject(t *testing.T, key string) {
	t.Helper()
	if _, ok, err := e.gw.Get(t.Context(), testBucket, key); err != nil || ok {
		t.Fatalf("object %q exists=%v (err %v), want none", key, ok, err)
	}
}
