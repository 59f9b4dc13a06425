package s3

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mizuchi-uploadr/mizuchi/internal/backend"
	"github.com/mizuchi-uploadr/mizuchi/internal/checksum"
	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

const (
	defaultPartSize = 64 << 20
	// maxSinglePut is S3's limit for one PutObject.
	maxSinglePut = 5 << 30
	abortTimeout = 30 * time.Second
)

func (s *Store) threshold() int64 {
	if t := int64(s.opts.Upload.MultipartThreshold); t > 0 {
		return t
	}
	return maxSinglePut
}

// partSize is upload.part_size, raised (to a whole MiB) when the object
// would otherwise need more than 10000 parts.
func (s *Store) partSize(size int64) int64 {
	ps := int64(s.opts.Upload.PartSize)
	if ps <= 0 {
		ps = defaultPartSize
	}
	if min := (size + backend.MaxPartNumber - 1) / backend.MaxPartNumber; ps < min {
		ps = (min + 1<<20 - 1) &^ (1<<20 - 1)
	}
	return ps
}

func isClientErr(err error) bool {
	var ce *clientBodyError
	return errors.As(err, &ce)
}

// source reads the client's body for an auto-multipart upload: it marks
// read failures as the client's and verifies, over the whole stream, the
// digests the client declared (they cannot be forwarded per part).
type source struct {
	r      io.Reader
	n      int64
	hashes []verify
}

type verify struct {
	h   hash.Hash
	ok  func([]byte) bool
	err *s3err.Error
}

func newSource(r io.Reader, ig backend.Integrity) *source {
	src := &source{r: r}
	if ig.ContentMD5 != "" {
		want := ig.ContentMD5
		src.hashes = append(src.hashes, verify{md5.New(), func(sum []byte) bool {
			return base64.StdEncoding.EncodeToString(sum) == want
		}, s3err.ErrBadDigest})
	}
	if ig.Checksum.Value != "" {
		if h := checksum.New(ig.Checksum.Algorithm); h != nil {
			want := ig.Checksum.Value
			src.hashes = append(src.hashes, verify{h, func(sum []byte) bool { return checksum.Equal(sum, want) },
				s3err.ErrBadDigest.WithMessage("The %s you specified did not match the calculated checksum.", checksum.Header(ig.Checksum.Algorithm))})
		}
	}
	if ig.SHA256 != "" && ig.SHA256 != "UNSIGNED-PAYLOAD" {
		want := ig.SHA256
		src.hashes = append(src.hashes, verify{sha256.New(), func(sum []byte) bool {
			return hex.EncodeToString(sum) == want
		}, s3err.ErrXAmzContentSHA256Mismatch})
	}
	return src
}

func (s *source) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 {
		s.n += int64(n)
		for _, v := range s.hashes {
			v.h.Write(p[:n])
		}
	}
	if err != nil && err != io.EOF {
		return n, &clientBodyError{err: err}
	}
	return n, err
}

// finish confirms the body ends here (a verifying reader of the handler
// reports a mismatch only at EOF) and checks the declared digests.
func (s *source) finish() error {
	var one [1]byte
	for {
		n, err := s.Read(one[:])
		if n > 0 {
			return s3err.ErrIncompleteBody.WithMessage("The request body is longer than its Content-Length.")
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	for _, v := range s.hashes {
		if !v.ok(v.h.Sum(nil)) {
			return v.err
		}
	}
	return nil
}

// putLarge stores a PutObject as a multipart upload on the store. On any
// failure, and when ctx ends (client gone), the store's upload is aborted
// so neither an orphaned upload nor a partial object remains.
func (s *Store) putLarge(ctx context.Context, in *backend.PutObjectInput) (out *backend.PutObjectOutput, err error) {
	id, err := s.create(ctx, in.Key, in.Metadata, "", "")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			err = s.errs.mapErr(ctx, err)
			s.abort(ctx, in.Key, id, err)
		}
	}()
	src := newSource(in.Body, in.Integrity)
	ps := s.partSize(in.Size)
	var parts []backend.CompletedPart
	if s.opts.Upload.ConcurrentParts > 1 {
		parts, err = s.sendBuffered(ctx, in.Key, id, src, in.Size, ps)
	} else {
		parts, err = s.sendStreamed(ctx, in.Key, id, src, in.Size, ps)
	}
	if err != nil {
		return nil, err
	}
	if err = src.finish(); err != nil {
		return nil, err
	}
	if err = ctx.Err(); err != nil {
		return nil, &canceledError{cause: err, ctxErr: err}
	}
	done, err := s.complete(ctx, in.Key, id, parts)
	if err != nil {
		return nil, err
	}
	return &backend.PutObjectOutput{ETag: done.ETag, VersionID: done.VersionID, Checksum: done.Checksum}, nil
}

// abort discards the store's upload with a context of its own: the
// request's may already be cancelled. It is retried; a failure is logged
// loudly since it leaves an upload for the store's lifecycle rules.
func (s *Store) abort(ctx context.Context, key, id string, cause error) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	defer cancel()
	err := s.AbortMultipartUpload(actx, &backend.AbortMultipartUploadInput{Key: key, UploadID: id})
	if err != nil && !errors.Is(err, s3err.ErrNoSuchUpload) {
		s.opts.Logger.Error("could not abort backend multipart upload", "bucket", s.opts.BucketName,
			"error", err, "cause", cause)
		return
	}
	s.opts.Logger.Debug("aborted backend multipart upload", "bucket", s.opts.BucketName, "cause", cause)
}

func partCount(size, ps int64) int {
	if size == 0 {
		return 1
	}
	return int((size + ps - 1) / ps)
}

// sendStreamed sends the parts one after the other straight from the
// client's stream (concurrent_parts 1): nothing is buffered, nothing can
// be retried.
func (s *Store) sendStreamed(ctx context.Context, key, id string, src *source, size, ps int64) ([]backend.CompletedPart, error) {
	n := partCount(size, ps)
	parts := make([]backend.CompletedPart, 0, n)
	for i := range n {
		pn := int32(i + 1)
		psize := min(ps, size-int64(i)*ps)
		etag, cs, err := s.uploadStreamed(ctx, key, id, pn, io.LimitReader(src, psize), psize, backend.Integrity{})
		if err != nil {
			return nil, err
		}
		parts = append(parts, backend.CompletedPart{PartNumber: pn, ETag: etag, Checksum: cs})
	}
	return parts, nil
}

// sendBuffered reads part after part into buffers and sends up to
// concurrent_parts of them at once, each retried on its own.
func (s *Store) sendBuffered(ctx context.Context, key, id string, src *source, size, ps int64) ([]backend.CompletedPart, error) {
	n := partCount(size, ps)
	parts := make([]backend.CompletedPart, n)
	parent := ctx
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	fail := func(err error) {
		once.Do(func() { first = err; cancel(err) })
	}
	slots := make(chan struct{}, s.opts.Upload.ConcurrentParts)
loop:
	for i := range n {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			break loop
		}
		psize := min(ps, size-int64(i)*ps)
		buf, err := fillPart(ctx, s.opts.Memory, s.opts.Upload.SpoolDir, src, psize)
		if err != nil {
			<-slots
			fail(err)
			break
		}
		wg.Add(1)
		go func(i int, buf *partBuffer) {
			defer wg.Done()
			defer func() { <-slots }()
			defer buf.release()
			pn := int32(i + 1)
			etag, cs, err := s.uploadBuffered(ctx, key, id, pn, buf)
			if err != nil {
				fail(err)
				return
			}
			parts[i] = backend.CompletedPart{PartNumber: pn, ETag: etag, Checksum: cs}
		}(i, buf)
	}
	wg.Wait()
	if err := parent.Err(); err != nil {
		cause := first
		if cause == nil {
			cause = err
		}
		return nil, &canceledError{cause: cause, ctxErr: err}
	}
	if first != nil {
		return nil, first
	}
	return parts, nil
}

// partTimeout bounds one attempt at sending a buffered part: a store that
// stalls costs at most this before the part is retried.
func (s *Store) partTimeout(size int64) time.Duration {
	return s.opts.StallTimeout + time.Duration(size>>20)*time.Second
}

// uploadBuffered sends a buffered part, retrying it; a spooled part goes
// out by sendfile when the stack allows (zerocopy.go).
func (s *Store) uploadBuffered(ctx context.Context, key, id string, pn int32, buf *partBuffer) (string, backend.Checksum, error) {
	return s.uploadBufferedWith(ctx, key, id, pn, buf, backend.Integrity{})
}

func (s *Store) uploadBufferedWith(ctx context.Context, key, id string, pn int32, buf *partBuffer, ig backend.Integrity) (string, backend.Checksum, error) {
	var out *s3.UploadPartOutput
	var fb *fileBody
	err := s.retry(ctx, "UploadPart", func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, s.partTimeout(buf.size))
		defer cancel()
		r, err := buf.reader()
		if err != nil {
			return err
		}
		input := s.uploadPartInput(key, id, pn, buf.size, ig)
		if buf.size > 0 {
			input.Body = r
		}
		if buf.file != nil {
			fb = &fileBody{f: buf.file, size: buf.size}
			ctx = withFileBody(ctx, fb)
		}
		out, err = s.api.UploadPart(ctx, input)
		return err
	})
	if err != nil {
		return "", backend.Checksum{}, err
	}
	mode := modeBuffered
	if fb != nil && fb.sent {
		mode = modeSendfile
	}
	s.countBytes(mode, buf.size)
	return aws.ToString(out.ETag), checksumOf(out.ChecksumCRC32, out.ChecksumCRC32C, out.ChecksumCRC64NVME, out.ChecksumSHA1, out.ChecksumSHA256), nil
}
