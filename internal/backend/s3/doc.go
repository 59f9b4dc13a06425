// Package s3 is the storage backend that streams uploads to an
// S3-compatible service with aws-sdk-go-v2.
//
// The app builds one Store per configured bucket with New. Bodies are
// passed through without buffering: PutObject and UploadPart send the
// client's stream with its exact length, sign it UNSIGNED-PAYLOAD (or
// with the client's declared SHA-256) and forward Content-MD5 and
// x-amz-checksum-* so the store verifies. A PutObject larger than
// upload.multipart_threshold becomes a multipart upload on the store;
// with upload.concurrent_parts > 1 its parts are buffered (memory under a
// process-wide cap, then unlinked temp files) and sent in parallel, each
// retried with exponential backoff and jitter. Any failure aborts the
// store's upload so nothing partial is left behind.
//
// Spooled parts reach the socket with sendfile(2) when the store is
// plain HTTP and zero-copy is on: the SDK wraps every request body, so
// the HTTP client handed to the SDK puts the spool file back as the
// body after signing (see zerocopy.go).
//
// All SDK errors are translated in one place (errors.go) into
// *s3err.Error values that keep the store's code and status but never
// its endpoint, bucket or credentials.
package s3
