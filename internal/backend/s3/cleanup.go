package s3

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/mizuchi-uploadr/mizuchi/internal/backend"
	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

// Budgets of the cleanup's store calls, retries included.
const (
	cleanupListTimeout  = time.Minute
	cleanupAbortTimeout = 30 * time.Second
)

// Cleanup is backend.Cleaner. It lists the store bucket's multipart
// uploads with Prefix = the key prefix, page by page, and aborts those
// initiated (by the store's clock) before olderThan ago. Only keys that
// start with the key prefix count, whatever the store answers (a store
// that ignores Prefix lists everything), minus those under
// CleanupSkipPrefixes. Listing and aborting are retried like any
// replayable call; an upload that is gone when aborted (completed or
// aborted meanwhile) is not an error. Memory: one page (≤ 1000 uploads).
func (s *Store) Cleanup(ctx context.Context, olderThan time.Duration) (backend.CleanupResult, error) {
	cutoff := time.Now().Add(-olderThan)
	prefix := s.opts.Config.KeyPrefix
	var res backend.CleanupResult
	var errs []error
	in := &s3.ListMultipartUploadsInput{Bucket: s.bucket}
	if s.cleanupPageSize > 0 {
		in.MaxUploads = aws.Int32(s.cleanupPageSize)
	}
	if prefix != "" {
		in.Prefix = aws.String(prefix)
	}
	// seen holds the upload ids of the key a page ended on, which the
	// next page lists again (see below).
	var seen map[string]bool
	for {
		out, err := s.listUploads(ctx, in)
		if err != nil {
			errs = append(errs, fmt.Errorf("list multipart uploads: %w", err))
			break
		}
		for _, u := range out.Uploads {
			key, id := aws.ToString(u.Key), aws.ToString(u.UploadId)
			if !s.ownsKey(key) || id == "" || seen[id] {
				continue
			}
			if u.Initiated == nil || !u.Initiated.Before(cutoff) {
				res.Kept++
				continue
			}
			switch err := s.abortStored(ctx, key, id); {
			case err == nil:
				res.Aborted++
			case errors.Is(err, s3err.ErrNoSuchUpload):
				// Completed or aborted meanwhile.
			default:
				errs = append(errs, fmt.Errorf("abort multipart upload: %w", err))
			}
			if ctx.Err() != nil {
				return res, errors.Join(append(errs, ctx.Err())...)
			}
		}
		if !aws.ToBool(out.IsTruncated) {
			break
		}
		// The next page starts after the last key but one of this page,
		// with the key marker alone: the last key's remaining uploads
		// are listed again (its ids seen here are skipped), and no
		// upload-id marker is needed, which stores interpret differently
		// (versitygw refuses S3's own NextUploadIdMarker) and which may
		// name an upload just aborted. A page of one key only falls back
		// to S3's markers.
		last, prev := lastKeys(out.Uploads)
		if last == "" {
			last = aws.ToString(out.NextKeyMarker)
		}
		seen = map[string]bool{}
		for _, u := range out.Uploads {
			if aws.ToString(u.Key) == last {
				seen[aws.ToString(u.UploadId)] = true
			}
		}
		switch {
		case prev != "":
			in.KeyMarker, in.UploadIdMarker = aws.String(prev), nil
		case aws.ToString(out.NextKeyMarker) != "" && (aws.ToString(out.NextKeyMarker) != aws.ToString(in.KeyMarker) ||
			aws.ToString(out.NextUploadIdMarker) != aws.ToString(in.UploadIdMarker)):
			in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
		default:
			errs = append(errs, errors.New("list multipart uploads: the store answered a truncated page without a new marker"))
			return res, errors.Join(errs...)
		}
	}
	return res, errors.Join(errs...)
}

// lastKeys returns the last key of a page and the last key before it
// that differs from it ("" when the page holds one key only).
func lastKeys(uploads []types.MultipartUpload) (last, prev string) {
	if len(uploads) == 0 {
		return "", ""
	}
	last = aws.ToString(uploads[len(uploads)-1].Key)
	for i := len(uploads) - 2; i >= 0; i-- {
		if k := aws.ToString(uploads[i].Key); k != last {
			return last, k
		}
	}
	return last, ""
}

// ownsKey reports whether a stored key belongs to this bucket.
func (s *Store) ownsKey(key string) bool {
	if !strings.HasPrefix(key, s.opts.Config.KeyPrefix) {
		return false
	}
	for _, p := range s.opts.CleanupSkipPrefixes {
		if strings.HasPrefix(key, p) {
			return false
		}
	}
	return true
}

func (s *Store) listUploads(ctx context.Context, in *s3.ListMultipartUploadsInput) (*s3.ListMultipartUploadsOutput, error) {
	ctx, cancel := context.WithTimeout(ctx, cleanupListTimeout)
	defer cancel()
	var out *s3.ListMultipartUploadsOutput
	err := s.retry(ctx, "ListMultipartUploads", func(ctx context.Context) error {
		var err error
		out, err = s.api.ListMultipartUploads(ctx, in)
		return err
	})
	return out, err
}

// abortStored aborts an upload named by its stored key (prefix included).
func (s *Store) abortStored(ctx context.Context, key, id string) error {
	ctx, cancel := context.WithTimeout(ctx, cleanupAbortTimeout)
	defer cancel()
	return s.retry(ctx, "AbortMultipartUpload", func(ctx context.Context) error {
		_, err := s.api.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
			Bucket: s.bucket, Key: aws.String(key), UploadId: aws.String(id),
		})
		return err
	})
}

var _ backend.Cleaner = (*Store)(nil)
