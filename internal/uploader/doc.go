// Package uploader is the client side of Mizuchi: it uploads local files to
// an S3-compatible endpoint (Mizuchi itself, or any S3 service that accepts
// path-style URLs) over plain net/http.
//
// Objects smaller than Options.MultipartThreshold are sent with one
// PutObject; larger ones with a multipart upload whose parts are read
// straight from the file (io.SectionReader, never buffered whole) and sent
// by Options.Concurrency workers. Every request carries Content-MD5, and
// under SigV4 the hex SHA-256 of its body, so a corrupted byte is refused
// by the server instead of stored. Each request is retried with
// exponential backoff and full jitter on network errors, 5xx answers,
// SlowDown, RequestTimeout and BadDigest; when a multipart upload finally
// fails or its context is cancelled, it is aborted with a fresh, short
// context so that no parts are left behind.
//
// Credentials are a Signer: Bearer (a JWT for Mizuchi's jwt
// authentication), SigV4 (signed with aws-sdk-go-v2's v4 signer), or nil
// for anonymous buckets. Errors are *Error for S3 answers; Classify turns
// any error into the Kind a command line maps to an exit code.
//
// cmd/mizuchi's "upload" command wires flags, files, a Progress line and
// signals to this package.
package uploader
