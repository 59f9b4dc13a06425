package uploader

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
)

// Error is an S3 error answer (or an HTTP error status without an S3 body).
type Error struct {
	Op         string // PutObject, CreateMultipartUpload, UploadPart 3, ...
	StatusCode int
	Code       string // S3 error code; the status text when the body had none
	Message    string
	RequestID  string
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%s: %s (HTTP %d)", e.Op, e.Code, e.StatusCode)
	if e.Message != "" {
		s = fmt.Sprintf("%s: %s: %s (HTTP %d)", e.Op, e.Code, e.Message, e.StatusCode)
	}
	if e.RequestID != "" {
		s += ", request id " + e.RequestID
	}
	return s
}

// retryable reports whether sending the same request again may succeed.
func (e *Error) retryable() bool {
	switch e.Code {
	case "SlowDown", "RequestTimeout", "BadDigest", "InternalError", "ServiceUnavailable":
		return true
	}
	return e.StatusCode >= 500 || e.StatusCode == http.StatusTooManyRequests
}

// TransportError is a request that got no HTTP answer: refused connection,
// reset, timeout, TLS failure.
type TransportError struct {
	Op  string
	Err error
}

func (e *TransportError) Error() string { return e.Op + ": " + e.Err.Error() }
func (e *TransportError) Unwrap() error { return e.Err }

// untrusted reports a server certificate that failed verification: a
// configuration problem (use --ca-file) that no retry can cure.
func (e *TransportError) untrusted() bool {
	var cv *tls.CertificateVerificationError
	return errors.As(e.Err, &cv)
}

// Kind is what a caller needs to know about a failed upload.
type Kind int

const (
	// KindOK is a nil error.
	KindOK Kind = iota
	// KindFailed is an upload refused by the server for a reason other than
	// credentials (NoSuchBucket, InvalidArgument, EntityTooLarge, ...), a
	// server certificate that is not trusted, or a local failure such as an
	// unreadable file.
	KindFailed
	// KindAuth is a 401 or 403 answer: missing, bad or insufficient
	// credentials.
	KindAuth
	// KindUnavailable is a server or network that still failed after the
	// retries: no connection, 5xx, SlowDown.
	KindUnavailable
	// KindCanceled is an upload stopped by its context (Ctrl-C).
	KindCanceled
)

// Classify tells what kind of failure err is.
func Classify(err error) Kind {
	if err == nil {
		return KindOK
	}
	if errors.Is(err, context.Canceled) {
		return KindCanceled
	}
	var se *Error
	if errors.As(err, &se) {
		switch {
		case se.StatusCode == http.StatusUnauthorized || se.StatusCode == http.StatusForbidden:
			return KindAuth
		case se.StatusCode >= 500 || se.StatusCode == http.StatusTooManyRequests || se.Code == "SlowDown":
			return KindUnavailable
		}
		return KindFailed
	}
	var te *TransportError
	if errors.As(err, &te) && te.untrusted() {
		return KindFailed
	}
	if te != nil || errors.Is(err, context.DeadlineExceeded) {
		return KindUnavailable
	}
	return KindFailed
}
