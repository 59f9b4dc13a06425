// Package sigv4 authenticates S3 requests signed with AWS Signature
// Version 4: the Authorization header form, presigned URLs (X-Amz-* query
// parameters) and every S3 payload mode.
//
// Authenticate checks the request line and headers before the body is
// read, then replaces r.Body with a verifying reader for the payload mode
// the client chose:
//
//   - a hex SHA-256 in x-amz-content-sha256: the body is hashed while it
//     streams and the read that would hand out the last byte returns
//     XAmzContentSHA256Mismatch instead when the digest differs;
//   - UNSIGNED-PAYLOAD: the body is passed through;
//   - STREAMING-AWS4-HMAC-SHA256-PAYLOAD(-TRAILER) and
//     STREAMING-UNSIGNED-PAYLOAD-TRAILER: a ChunkedReader removes the
//     aws-chunked framing, checks every chunk signature (chained from the
//     seed signature) before the chunk is handed out, and verifies the
//     trailing checksum and trailer signature before the last byte.
//
// Memory per request is bounded whatever the client sends: chunk and
// trailer lines have fixed limits and at most one chunk of up to
// maxBufferedChunk bytes is held at a time.
//
// The package never logs secrets, signatures, session tokens or subjects.
package sigv4
