// Package s3api is Mizuchi's S3 front end: it routes a request to a
// configured bucket by path prefix, classifies it into one of the upload
// operations (refusing everything else before anything is forwarded),
// authenticates and authorizes it before its body is read, and streams the
// body to the bucket's backend.
//
// Handlers return errors; Handler.ServeHTTP is the one place that writes
// responses, errors (through s3err.Write), metrics and the access log.
package s3api
