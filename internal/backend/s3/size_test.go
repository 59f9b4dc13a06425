package s3

import (
	"bytes"
	"testing"

	"github.com/mizuchi-uploadr/mizuchi/internal/backend"
)

// CompleteMultipartUpload reports the assembled object's size (the store
// does not answer it; upload events need it), key prefix included.
func TestCompleteReportsTheSize(t *testing.T) {
	e := startEnv(t)
	s := e.store(t, e.gw.Endpoint, func(o *Options) { o.Config.KeyPrefix = "tenant/" })
	ctx := ctxT(t)
	c, err := s.CreateMultipartUpload(ctx, &backend.CreateMultipartUploadInput{Key: "sized"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.UploadPart(ctx, &backend.UploadPartInput{Key: "sized", UploadID: c.UploadID, PartNumber: 1,
		Body: bytes.NewReader([]byte("twelve bytes")), Size: 12})
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.CompleteMultipartUpload(ctx, &backend.CompleteMultipartUploadInput{Key: "sized", UploadID: c.UploadID,
		Parts: []backend.CompletedPart{{PartNumber: 1, ETag: p.ETag}}})
	if err != nil {
		t.Fatal(err)
	}
	if out.Size != 12 {
		t.Errorf("Size = %d, want 12", out.Size)
	}
}
