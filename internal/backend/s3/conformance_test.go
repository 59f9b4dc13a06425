package s3

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/mizuchi-uploadr/mizuchi/internal/backend"
	"github.com/mizuchi-uploadr/mizuchi/internal/backend/backendtest"
)

// inspector reads versitygw directly, under the Store's key prefix.
type inspector struct {
	e      *env
	prefix string
}

func (i inspector) Object(ctx context.Context, key string) ([]byte, bool, error) {
	return i.e.gw.Get(ctx, testBucket, i.prefix+key)
}

func (i inspector) OpenUploads(ctx context.Context) (int, error) {
	return i.e.gw.CountUploads(ctx, testBucket)
}

func (i inspector) Metadata(ctx context.Context, key string) (backend.Metadata, bool, error) {
	out, err := i.e.gw.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(testBucket), Key: aws.String(i.prefix + key)})
	if err != nil {
		var nf *types.NotFound
		if errors.As(err, &nf) {
			return backend.Metadata{}, false, nil
		}
		return backend.Metadata{}, false, err
	}
	md := backend.Metadata{
		ContentType:        aws.ToString(out.ContentType),
		ContentDisposition: aws.ToString(out.ContentDisposition),
		ContentEncoding:    aws.ToString(out.ContentEncoding),
		ContentLanguage:    aws.ToString(out.ContentLanguage),
		CacheControl:       aws.ToString(out.CacheControl),
		Expires:            aws.ToString(out.ExpiresString),
		User:               out.Metadata,
		StorageClass:       string(out.StorageClass),
	}
	return md, true, nil
}

func TestConformanceOnVersitygw(t *testing.T) {
	e := startEnv(t)
	const prefix = "kp/"
	backendtest.Run(t, func(t *testing.T) backend.Backend {
		return e.store(t, e.gw.Endpoint, func(o *Options) { o.Config.KeyPrefix = prefix })
	}, backendtest.Options{Inspect: inspector{e: e, prefix: prefix}})
}
