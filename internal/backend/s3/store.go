package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/mizuchi-uploadr/mizuchi/internal/backend"
	"github.com/mizuchi-uploadr/mizuchi/internal/checksum"
	"github.com/mizuchi-uploadr/mizuchi/internal/config"
	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
	"github.com/mizuchi-uploadr/mizuchi/internal/telemetry"
)

// Options configure a Store.
type Options struct {
	Config config.S3Backend
	Upload config.Upload
	// BucketName is Mizuchi's name of the bucket, for metric labels.
	BucketName string
	// Metrics may be nil.
	Metrics *telemetry.Metrics
	Logger  *slog.Logger
	// TracerProvider may be nil (no spans).
	TracerProvider trace.TracerProvider
	// WrapTransport, if set, wraps the shared transport (e.g. to inject
	// W3C trace context). It must not wrap request bodies, or spooled
	// parts lose sendfile.
	WrapTransport func(http.RoundTripper) http.RoundTripper
	// ZeroCopy is server.zero_copy; omitted means on.
	ZeroCopy config.ZeroCopy
	// Memory is the process-wide budget for buffering parts in memory,
	// shared by every Store of the process. Nil creates one of
	// Upload.MaxMemoryBuffer for this Store alone.
	Memory *MemoryBudget

	// MaxConns sizes the keep-alive pool (default 256).
	MaxConns int
	// DialTimeout bounds connecting and the TLS handshake (default 10s).
	DialTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for the store's answer once
	// a request is sent (default 5m: assembling a large object is slow).
	ResponseHeaderTimeout time.Duration
	// StallTimeout fails a request whose body the store stopped reading
	// (default 60s). Buffered parts get StallTimeout plus one second per
	// MiB as their per-attempt deadline.
	StallTimeout time.Duration
	// MaxAttempts of replayable calls (default 5).
	MaxAttempts int
	// RetryBase is the first backoff (default 100ms); it doubles per
	// attempt up to RetryMax (default 5s), with full jitter.
	RetryBase, RetryMax time.Duration

	// CleanupSkipPrefixes are stored-key prefixes under Config.KeyPrefix
	// that belong to other buckets: Cleanup leaves their uploads alone.
	CleanupSkipPrefixes []string

	// API replaces the SDK client (tests).
	API API
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.TracerProvider == nil {
		o.TracerProvider = noop.NewTracerProvider()
	}
	if o.MaxConns <= 0 {
		o.MaxConns = 256
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 10 * time.Second
	}
	if o.ResponseHeaderTimeout <= 0 {
		o.ResponseHeaderTimeout = 5 * time.Minute
	}
	if o.StallTimeout <= 0 {
		o.StallTimeout = 60 * time.Second
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 5
	}
	if o.RetryBase <= 0 {
		o.RetryBase = 100 * time.Millisecond
	}
	if o.RetryMax <= 0 {
		o.RetryMax = 5 * time.Second
	}
	if o.Memory == nil {
		o.Memory = NewMemoryBudget(int64(o.Upload.MaxMemoryBuffer))
	}
}

// Store is a backend.Backend on an S3-compatible service.
type Store struct {
	opts      Options
	api       API
	transport *http.Transport
	errs      *errorMapper
	tracer    trace.Tracer
	bucket    *string
	plainHTTP bool
	// listPageSize is the ListParts page size of checkMaxSize; zero
	// means S3's largest, 1000 (tests lower it to page through few parts).
	listPageSize int32
	// cleanupPageSize is ListMultipartUploads' max-uploads (tests; 0:
	// the store's default, 1000).
	cleanupPageSize int32
}

// New builds a Store. It does not contact the store (see Check).
func New(ctx context.Context, opts Options) (*Store, error) {
	opts.defaults()
	if opts.Config.Bucket == "" {
		return nil, errors.New("s3 backend: bucket is required")
	}
	s := &Store{
		opts:   opts,
		errs:   newErrorMapper(&opts),
		tracer: opts.TracerProvider.Tracer("github.com/mizuchi-uploadr/mizuchi/internal/backend/s3"),
		bucket: aws.String(opts.Config.Bucket),
	}
	if opts.API != nil {
		s.api = opts.API
		return s, nil
	}
	cfg, tr, err := newHTTP(ctx, &opts)
	if err != nil {
		return nil, err
	}
	s.transport = tr
	var rt http.RoundTripper = tr
	if opts.WrapTransport != nil {
		rt = opts.WrapTransport(rt)
	}
	c := newClient(cfg, &opts, newHTTPClient(rt, opts.ZeroCopy.On()))
	s.api = c
	s.plainHTTP = c.Options().BaseEndpoint != nil && len(*c.Options().BaseEndpoint) > 7 && (*c.Options().BaseEndpoint)[:7] == "http://"
	return s, nil
}

func (s *Store) key(k string) *string { return aws.String(s.opts.Config.KeyPrefix + k) }

// Check reports whether the store's bucket is reachable (HeadBucket).
func (s *Store) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return s.call(ctx, "HeadBucket", func(ctx context.Context) error {
		_, err := s.api.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: s.bucket})
		return err
	})
}

// Close releases the connection pool.
func (s *Store) Close() error {
	if s.transport != nil {
		s.transport.CloseIdleConnections()
	}
	return nil
}

// PutObject streams the body to the store, or turns a body larger than
// the multipart threshold into a multipart upload.
func (s *Store) PutObject(ctx context.Context, in *backend.PutObjectInput) (*backend.PutObjectOutput, error) {
	if in.Size > s.threshold() {
		return s.putLarge(ctx, in)
	}
	body := newStreamBody(in.Body, in.Size)
	input := &s3.PutObjectInput{
		Bucket:             s.bucket,
		Key:                s.key(in.Key),
		ContentLength:      aws.Int64(in.Size),
		ContentType:        str(in.Metadata.ContentType),
		ContentDisposition: str(in.Metadata.ContentDisposition),
		ContentEncoding:    str(in.Metadata.ContentEncoding),
		ContentLanguage:    str(in.Metadata.ContentLanguage),
		CacheControl:       str(in.Metadata.CacheControl),
		Expires:            s.expires(in.Metadata.Expires),
		Metadata:           in.Metadata.User,
		Tagging:            str(in.Metadata.Tagging),
		StorageClass:       types.StorageClass(in.Metadata.StorageClass),
		ContentMD5:         str(in.Integrity.ContentMD5),
	}
	if in.Size > 0 {
		input.Body = body
	}
	setChecksum(in.Integrity.Checksum, &input.ChecksumCRC32, &input.ChecksumCRC32C, &input.ChecksumCRC64NVME, &input.ChecksumSHA1, &input.ChecksumSHA256)
	var out *s3.PutObjectOutput
	err := s.call(ctx, "PutObject", func(ctx context.Context) error {
		ctx, stop := body.watch(withPayloadHash(ctx, in.Integrity.SHA256), s.opts.StallTimeout)
		defer stop()
		var err error
		out, err = s.api.PutObject(ctx, input)
		return streamErr(ctx, body, err)
	})
	if err != nil {
		return nil, err
	}
	s.countBytes(modeBuffered, in.Size)
	return &backend.PutObjectOutput{
		ETag:      aws.ToString(out.ETag),
		VersionID: aws.ToString(out.VersionId),
		Checksum:  checksumOf(out.ChecksumCRC32, out.ChecksumCRC32C, out.ChecksumCRC64NVME, out.ChecksumSHA1, out.ChecksumSHA256),
	}, nil
}

// streamErr prefers the client's read failure or a stall over the
// transport error they caused.
func streamErr(ctx context.Context, body *streamBody, err error) error {
	if err == nil {
		return nil
	}
	if ce := body.clientErr(); ce != nil {
		return ce
	}
	if cause := context.Cause(ctx); errors.Is(cause, errStalled) {
		return fmt.Errorf("%w: %w", cause, err)
	}
	return err
}

// CreateMultipartUpload maps 1:1 to the store.
func (s *Store) CreateMultipartUpload(ctx context.Context, in *backend.CreateMultipartUploadInput) (*backend.CreateMultipartUploadOutput, error) {
	id, err := s.create(ctx, in.Key, in.Metadata, in.ChecksumAlgorithm, in.ChecksumType)
	if err != nil {
		return nil, err
	}
	return &backend.CreateMultipartUploadOutput{UploadID: id}, nil
}

func (s *Store) create(ctx context.Context, key string, md backend.Metadata, alg, typ string) (string, error) {
	input := &s3.CreateMultipartUploadInput{
		Bucket:             s.bucket,
		Key:                s.key(key),
		ContentType:        str(md.ContentType),
		ContentDisposition: str(md.ContentDisposition),
		ContentEncoding:    str(md.ContentEncoding),
		ContentLanguage:    str(md.ContentLanguage),
		CacheControl:       str(md.CacheControl),
		Expires:            s.expires(md.Expires),
		Metadata:           md.User,
		Tagging:            str(md.Tagging),
		StorageClass:       types.StorageClass(md.StorageClass),
		ChecksumAlgorithm:  types.ChecksumAlgorithm(alg),
		ChecksumType:       types.ChecksumType(typ),
	}
	var out *s3.CreateMultipartUploadOutput
	err := s.retry(ctx, "CreateMultipartUpload", func(ctx context.Context) error {
		var err error
		out, err = s.api.CreateMultipartUpload(ctx, input)
		return err
	})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.UploadId), nil
}

// UploadPart streams one client part to the store (no retry: the body
// cannot be replayed).
func (s *Store) UploadPart(ctx context.Context, in *backend.UploadPartInput) (*backend.UploadPartOutput, error) {
	if cs := in.Integrity.Checksum; cs.Algorithm != "" && cs.Value == "" && in.Size > 0 && checksum.New(cs.Algorithm) != nil {
		return s.uploadPartTrailing(ctx, in)
	}
	etag, cs, err := s.uploadStreamed(ctx, in.Key, in.UploadID, in.PartNumber, in.Body, in.Size, in.Integrity)
	if err != nil {
		return nil, err
	}
	return &backend.UploadPartOutput{ETag: etag, Checksum: cs}, nil
}

func (s *Store) uploadPartInput(key, uploadID string, pn int32, size int64, ig backend.Integrity) *s3.UploadPartInput {
	input := &s3.UploadPartInput{
		Bucket:        s.bucket,
		Key:           s.key(key),
		UploadId:      aws.String(uploadID),
		PartNumber:    aws.Int32(pn),
		ContentLength: aws.Int64(size),
		ContentMD5:    str(ig.ContentMD5),
	}
	setChecksum(ig.Checksum, &input.ChecksumCRC32, &input.ChecksumCRC32C, &input.ChecksumCRC64NVME, &input.ChecksumSHA1, &input.ChecksumSHA256)
	return input
}

func (s *Store) uploadStreamed(ctx context.Context, key, uploadID string, pn int32, r interface{ Read([]byte) (int, error) }, size int64, ig backend.Integrity) (string, backend.Checksum, error) {
	body := newStreamBody(r, size)
	input := s.uploadPartInput(key, uploadID, pn, size, ig)
	if size > 0 {
		input.Body = body
	}
	var out *s3.UploadPartOutput
	err := s.call(ctx, "UploadPart", func(ctx context.Context) error {
		ctx, stop := body.watch(withPayloadHash(ctx, ig.SHA256), s.opts.StallTimeout)
		defer stop()
		var err error
		out, err = s.api.UploadPart(ctx, input)
		return streamErr(ctx, body, err)
	})
	if err != nil {
		return "", backend.Checksum{}, err
	}
	s.countBytes(modeBuffered, size)
	return aws.ToString(out.ETag), checksumOf(out.ChecksumCRC32, out.ChecksumCRC32C, out.ChecksumCRC64NVME, out.ChecksumSHA1, out.ChecksumSHA256), nil
}

// CompleteMultipartUpload maps 1:1 to the store (retried: replayable).
func (s *Store) CompleteMultipartUpload(ctx context.Context, in *backend.CompleteMultipartUploadInput) (*backend.CompleteMultipartUploadOutput, error) {
	// Checked here because stores differ in which rule they check first
	// (versitygw reports EntityTooSmall for a short part listed early).
	for i := 1; i < len(in.Parts); i++ {
		if in.Parts[i].PartNumber <= in.Parts[i-1].PartNumber {
			return nil, s3err.ErrInvalidPartOrder
		}
	}
	if err := s.checkMaxSize(ctx, in); err != nil {
		return nil, err
	}
	out, err := s.complete(ctx, in.Key, in.UploadID, in.Parts)
	if err != nil {
		return nil, err
	}
	out.Size = s.assembledSize(ctx, in.Key, out.VersionID)
	return out, nil
}

func (s *Store) complete(ctx context.Context, key, uploadID string, parts []backend.CompletedPart) (*backend.CompleteMultipartUploadOutput, error) {
	cps := make([]types.CompletedPart, len(parts))
	for i, p := range parts {
		cps[i] = types.CompletedPart{PartNumber: aws.Int32(p.PartNumber), ETag: aws.String(p.ETag)}
		setChecksum(p.Checksum, &cps[i].ChecksumCRC32, &cps[i].ChecksumCRC32C, &cps[i].ChecksumCRC64NVME, &cps[i].ChecksumSHA1, &cps[i].ChecksumSHA256)
	}
	input := &s3.CompleteMultipartUploadInput{
		Bucket:          s.bucket,
		Key:             s.key(key),
		UploadId:        aws.String(uploadID),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: cps},
	}
	var out *s3.CompleteMultipartUploadOutput
	err := s.retry(ctx, "CompleteMultipartUpload", func(ctx context.Context) error {
		var err error
		out, err = s.api.CompleteMultipartUpload(ctx, input)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &backend.CompleteMultipartUploadOutput{
		ETag:      aws.ToString(out.ETag),
		VersionID: aws.ToString(out.VersionId),
		Checksum:  checksumOf(out.ChecksumCRC32, out.ChecksumCRC32C, out.ChecksumCRC64NVME, out.ChecksumSHA1, out.ChecksumSHA256),
		Size:      -1,
	}, nil
}

// assembledSize asks the store for the length of an object it just
// assembled (CompleteMultipartUpload does not answer it); -1 when the API
// cannot tell or the call fails: the upload itself has succeeded.
func (s *Store) assembledSize(ctx context.Context, key, versionID string) int64 {
	h, ok := s.api.(interface {
		HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	})
	if !ok {
		return -1
	}
	in := &s3.HeadObjectInput{Bucket: s.bucket, Key: s.key(key)}
	if versionID != "" {
		in.VersionId = aws.String(versionID)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := h.HeadObject(ctx, in)
	if err != nil || out.ContentLength == nil {
		return -1
	}
	return *out.ContentLength
}

// AbortMultipartUpload maps 1:1 to the store (retried: replayable).
func (s *Store) AbortMultipartUpload(ctx context.Context, in *backend.AbortMultipartUploadInput) error {
	return s.retry(ctx, "AbortMultipartUpload", func(ctx context.Context) error {
		_, err := s.api.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
			Bucket: s.bucket, Key: s.key(in.Key), UploadId: aws.String(in.UploadID),
		})
		return err
	})
}

// ListParts maps 1:1 to the store (retried: replayable).
func (s *Store) ListParts(ctx context.Context, in *backend.ListPartsInput) (*backend.ListPartsOutput, error) {
	input := &s3.ListPartsInput{Bucket: s.bucket, Key: s.key(in.Key), UploadId: aws.String(in.UploadID)}
	if in.PartNumberMarker > 0 {
		input.PartNumberMarker = aws.String(strconv.Itoa(int(in.PartNumberMarker)))
	}
	if in.MaxParts > 0 {
		input.MaxParts = aws.Int32(in.MaxParts)
	}
	var out *s3.ListPartsOutput
	err := s.retry(ctx, "ListParts", func(ctx context.Context) error {
		var err error
		out, err = s.api.ListParts(ctx, input)
		return err
	})
	if err != nil {
		return nil, err
	}
	res := &backend.ListPartsOutput{
		PartNumberMarker:     atoi32(out.PartNumberMarker),
		NextPartNumberMarker: atoi32(out.NextPartNumberMarker),
		MaxParts:             aws.ToInt32(out.MaxParts),
		IsTruncated:          aws.ToBool(out.IsTruncated),
		StorageClass:         string(out.StorageClass),
		ChecksumAlgorithm:    string(out.ChecksumAlgorithm),
	}
	for _, p := range out.Parts {
		res.Parts = append(res.Parts, backend.Part{
			PartNumber:   aws.ToInt32(p.PartNumber),
			ETag:         aws.ToString(p.ETag),
			Size:         aws.ToInt64(p.Size),
			LastModified: aws.ToTime(p.LastModified),
			Checksum:     checksumOf(p.ChecksumCRC32, p.ChecksumCRC32C, p.ChecksumCRC64NVME, p.ChecksumSHA1, p.ChecksumSHA256),
		})
	}
	return res, nil
}

func atoi32(s *string) int32 {
	n, _ := strconv.ParseInt(aws.ToString(s), 10, 32)
	return int32(n)
}

func str(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}

func (s *Store) expires(v string) *time.Time {
	if v == "" {
		return nil
	}
	t, err := http.ParseTime(v)
	if err != nil {
		s.opts.Logger.Debug("ignoring unparsable Expires", "bucket", s.opts.BucketName)
		return nil
	}
	return &t
}

func setChecksum(c backend.Checksum, crc32, crc32c, crc64, sha1, sha256 **string) {
	if c.Value == "" {
		return
	}
	switch c.Algorithm {
	case "CRC32":
		*crc32 = aws.String(c.Value)
	case "CRC32C":
		*crc32c = aws.String(c.Value)
	case "CRC64NVME":
		*crc64 = aws.String(c.Value)
	case "SHA1":
		*sha1 = aws.String(c.Value)
	case "SHA256":
		*sha256 = aws.String(c.Value)
	}
}

func checksumOf(crc32, crc32c, crc64, sha1, sha256 *string) backend.Checksum {
	for _, c := range []struct {
		alg string
		v   *string
	}{{"CRC32", crc32}, {"CRC32C", crc32c}, {"CRC64NVME", crc64}, {"SHA1", sha1}, {"SHA256", sha256}} {
		if c.v != nil && *c.v != "" {
			return backend.Checksum{Algorithm: c.alg, Value: *c.v}
		}
	}
	return backend.Checksum{}
}

var (
	_ backend.Backend = (*Store)(nil)
	_ backend.Checker = (*Store)(nil)
	_ backend.Closer  = (*Store)(nil)
)

// uploadPartTrailing handles a part whose checksum the client sends after
// the body (an aws-chunked trailer): a store upload created with a
// checksum algorithm refuses a part without that checksum in its headers,
// so the part is buffered (memory budget, else spool_dir) while hashed,
// then sent with the checksum. The handler's decoder has verified the
// trailer against the same bytes by the time the buffer is full.
func (s *Store) uploadPartTrailing(ctx context.Context, in *backend.UploadPartInput) (*backend.UploadPartOutput, error) {
	alg := in.Integrity.Checksum.Algorithm
	h := checksum.New(alg)
	ig := in.Integrity
	ig.Checksum = backend.Checksum{}
	src := newSource(io.TeeReader(in.Body, h), ig)
	buf, err := fillPart(ctx, s.opts.Memory, s.opts.Upload.SpoolDir, src, in.Size)
	if err != nil {
		return nil, s.errs.mapErr(ctx, err)
	}
	defer buf.release()
	if err := src.finish(); err != nil {
		return nil, s.errs.mapErr(ctx, err)
	}
	sum := backend.Checksum{Algorithm: alg, Value: checksum.Encode(h.Sum(nil))}
	etag, cs, err := s.uploadBufferedWith(ctx, in.Key, in.UploadID, in.PartNumber, buf, backend.Integrity{Checksum: sum})
	if err != nil {
		return nil, err
	}
	return &backend.UploadPartOutput{ETag: etag, Checksum: cs}, nil
}
