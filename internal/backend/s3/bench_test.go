package s3

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mizuchi-uploadr/mizuchi/internal/backend"
)

// BenchmarkPutObject compares a PutObject through the Store with the same
// PutObject sent by a plain SDK client straight to versitygw.
//
//	go test -run '^$' -bench PutObject -benchtime 5x ./internal/backend/s3/
func BenchmarkPutObject(b *testing.B) {
	e := startEnvB(b)
	data := randBytes(64 << 20)
	ctx := context.Background()
	b.Run("direct", func(b *testing.B) {
		c := e.gw.Client()
		b.SetBytes(int64(len(data)))
		for i := 0; b.Loop(); i++ {
			_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(testBucket), Key: aws.String(fmt.Sprint("d", i)),
				Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data)))})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, mode := range []struct {
		name string
		mod  func(*Options)
	}{
		{"store/single", nil},
		{"store/multipart-streamed", func(o *Options) {
			o.Upload.MultipartThreshold = 8 << 20
			o.Upload.PartSize = 16 << 20
			o.Upload.ConcurrentParts = 1
		}},
		{"store/multipart-4-spooled-sendfile", func(o *Options) {
			o.Upload.MultipartThreshold = 8 << 20
			o.Upload.PartSize = 16 << 20
			o.Memory = NewMemoryBudget(0)
		}},
		{"store/multipart-4-spooled-buffered", func(o *Options) {
			o.Upload.MultipartThreshold = 8 << 20
			o.Upload.PartSize = 16 << 20
			o.Memory = NewMemoryBudget(0)
			off := false
			o.ZeroCopy.Enabled = &off
		}},
	} {
		b.Run(mode.name, func(b *testing.B) {
			s := e.storeB(b, mode.mod)
			b.SetBytes(int64(len(data)))
			for i := 0; b.Loop(); i++ {
				if _, err := s.PutObject(ctx, &backend.PutObjectInput{Key: fmt.Sprint("s", i), Body: bytes.NewReader(data), Size: int64(len(data))}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
