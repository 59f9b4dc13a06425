// Package backend defines what Mizuchi needs from a storage backend: the
// six upload operations, with Mizuchi's own small input and output types
// so that implementations (fs, s3) do not leak their libraries into the
// protocol layer.
//
// Error contract for every method: S3-level failures (NoSuchUpload,
// InvalidPart, BadDigest, a backend's own S3 error code, …) are returned
// as *s3err.Error, which the handler sends to the client as is. Any other
// error is a technical failure and is answered with InternalError (or
// ServiceUnavailable when the backend cannot be reached). A cancelled
// context aborts the operation and leaves nothing visible behind.
package backend

import (
	"context"
	"io"
	"time"
)

// Backend stores uploaded objects.
type Backend interface {
	// PutObject stores Body (exactly Size bytes) under Key. The object
	// becomes visible only when every byte was received and verified; on
	// any error nothing is stored.
	PutObject(ctx context.Context, in *PutObjectInput) (*PutObjectOutput, error)
	// CreateMultipartUpload starts a multipart upload and returns its id.
	CreateMultipartUpload(ctx context.Context, in *CreateMultipartUploadInput) (*CreateMultipartUploadOutput, error)
	// UploadPart stores one part of a multipart upload.
	UploadPart(ctx context.Context, in *UploadPartInput) (*UploadPartOutput, error)
	// CompleteMultipartUpload assembles the listed parts into the object.
	CompleteMultipartUpload(ctx context.Context, in *CompleteMultipartUploadInput) (*CompleteMultipartUploadOutput, error)
	// AbortMultipartUpload discards an upload and its parts.
	AbortMultipartUpload(ctx context.Context, in *AbortMultipartUploadInput) error
	// ListParts lists the parts uploaded so far.
	ListParts(ctx context.Context, in *ListPartsInput) (*ListPartsOutput, error)
}

// Checker is implemented by backends that can report their reachability
// for /readyz.
type Checker interface {
	// Check returns nil when the backend is ready to take uploads.
	Check(ctx context.Context) error
}

// Closer is implemented by backends holding resources (connection pools).
type Closer interface {
	Close() error
}

// Cleaner is implemented by backends that can find what abandoned uploads
// left behind: incomplete multipart uploads (and, for some backends, temp
// files) older than an age.
type Cleaner interface {
	// Cleanup aborts the incomplete multipart uploads of this backend (and
	// only of this backend: a store shared with others is filtered by the
	// backend's own key prefix) that are older than olderThan, and removes
	// other leftovers of that age. It keeps going after a failure and
	// returns what it did with every failure joined.
	Cleanup(ctx context.Context, olderThan time.Duration) (CleanupResult, error)
}

// CleanupResult is what one Cleanup run did.
type CleanupResult struct {
	// Aborted counts the incomplete multipart uploads aborted.
	Aborted int
	// Kept counts the incomplete multipart uploads seen and left alone
	// (younger than the age, or owned by another bucket).
	Kept int
	// Removed counts other leftovers removed (temp files, remains of
	// interrupted completions).
	Removed int
}

// Metadata is what is stored with an object besides its bytes.
type Metadata struct {
	ContentType        string
	ContentDisposition string
	// ContentEncoding never contains aws-chunked.
	ContentEncoding string
	ContentLanguage string
	CacheControl    string
	Expires         string
	// User holds x-amz-meta-* values keyed by the lower-case name without
	// the x-amz-meta- prefix.
	User map[string]string
	// Tagging is the x-amz-tagging value (URL-encoded key=value pairs).
	Tagging      string
	StorageClass string
}

// Checksum is an S3 additional checksum: an algorithm (CRC32, CRC32C,
// CRC64NVME, SHA1, SHA256) and, when known, its base64 value.
type Checksum struct {
	Algorithm string
	Value     string
}

// Integrity carries what the client declared about a body, so that the
// backend (or the store it forwards to) can reject a corrupted body.
// Mizuchi's handlers have already verified these while streaming when the
// backend cannot; forwarding them lets a remote store verify again.
type Integrity struct {
	// ContentMD5 is the base64 Content-MD5 header, if any.
	ContentMD5 string
	// Checksum is the x-amz-checksum-* value, if any.
	Checksum Checksum
	// SHA256 is the hex SHA-256 of the payload when the client declared it.
	SHA256 string
}

// PutObjectInput is a single-request upload.
type PutObjectInput struct {
	Key       string
	Body      io.Reader
	Size      int64
	Metadata  Metadata
	Integrity Integrity
}

// PutObjectOutput describes the stored object.
type PutObjectOutput struct {
	// ETag is quoted, as S3 sends it.
	ETag      string
	Checksum  Checksum
	VersionID string
}

// CreateMultipartUploadInput starts a multipart upload.
type CreateMultipartUploadInput struct {
	Key      string
	Metadata Metadata
	// ChecksumAlgorithm is the x-amz-checksum-algorithm the client chose.
	ChecksumAlgorithm string
	ChecksumType      string
}

// CreateMultipartUploadOutput carries the new upload's id.
type CreateMultipartUploadOutput struct {
	UploadID string
}

// UploadPartInput is one part.
type UploadPartInput struct {
	Key        string
	UploadID   string
	PartNumber int32
	Body       io.Reader
	Size       int64
	Integrity  Integrity
}

// UploadPartOutput describes a stored part.
type UploadPartOutput struct {
	ETag     string
	Checksum Checksum
}

// CompletedPart names a part in a CompleteMultipartUpload request.
type CompletedPart struct {
	PartNumber int32
	ETag       string
	Checksum   Checksum
}

// CompleteMultipartUploadInput lists the parts of the object in order.
type CompleteMultipartUploadInput struct {
	Key      string
	UploadID string
	Parts    []CompletedPart
	// MaxSize, when positive, is the largest object the listed parts may
	// assemble into. The backend adds up the sizes of the parts as it
	// stores them (never as a caller remembers them) and refuses a larger
	// total with EntityTooLarge: nothing is assembled and the upload
	// stays open, so the client may abort it or complete it with fewer
	// parts.
	MaxSize int64
}

// CompleteMultipartUploadOutput describes the assembled object.
type CompleteMultipartUploadOutput struct {
	ETag      string
	Checksum  Checksum
	VersionID string
	// Size is the object's length in bytes, or -1 when the store did
	// not tell (upload events report it).
	Size int64
}

// AbortMultipartUploadInput names the upload to discard.
type AbortMultipartUploadInput struct {
	Key      string
	UploadID string
}

// ListPartsInput pages through an upload's parts.
type ListPartsInput struct {
	Key              string
	UploadID         string
	PartNumberMarker int32
	// MaxParts of 0 means the default (1000).
	MaxParts int32
}

// Part is one uploaded part.
type Part struct {
	PartNumber   int32
	ETag         string
	Size         int64
	LastModified time.Time
	Checksum     Checksum
}

// ListPartsOutput is one page of parts.
type ListPartsOutput struct {
	Parts                []Part
	PartNumberMarker     int32
	NextPartNumberMarker int32
	MaxParts             int32
	IsTruncated          bool
	StorageClass         string
	ChecksumAlgorithm    string
}

// Limits are the S3 rules a backend enforces on multipart uploads.
type Limits struct {
	// MinPartSize applies to every part but the last (S3: 5 MiB).
	MinPartSize int64
}

// S3 limits.
const (
	MinPartNumber      = 1
	MaxPartNumber      = 10000
	DefaultMinPartSize = 5 << 20
	MaxKeyLength       = 1024
)
