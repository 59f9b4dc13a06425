package s3

import (
	"context"
	"errors"
	"net"
	"net/http"
	"regexp"
	"strings"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

// knownErrors gives S3's own wording for the codes a store commonly
// answers; the store's message is used only for other codes, scrubbed.
var knownErrors = map[string]*s3err.Error{}

func init() {
	for _, e := range []*s3err.Error{
		s3err.ErrAccessDenied, s3err.ErrBadDigest, s3err.ErrEntityTooLarge, s3err.ErrEntityTooSmall,
		s3err.ErrIncompleteBody, s3err.ErrInternalError, s3err.ErrInvalidAccessKeyID, s3err.ErrInvalidArgument,
		s3err.ErrInvalidBucketName, s3err.ErrInvalidDigest, s3err.ErrInvalidPart, s3err.ErrInvalidPartOrder,
		s3err.ErrInvalidRequest, s3err.ErrInvalidToken, s3err.ErrKeyTooLong, s3err.ErrMalformedXML,
		s3err.ErrMethodNotAllowed, s3err.ErrMissingContentLength, s3err.ErrNoSuchBucket, s3err.ErrNoSuchUpload,
		s3err.ErrNotImplemented, s3err.ErrPreconditionFailed, s3err.ErrRequestTimeTooSkewed, s3err.ErrRequestTimeout,
		s3err.ErrServiceUnavailable, s3err.ErrSignatureDoesNotMatch, s3err.ErrSlowDown, s3err.ErrExpiredToken,
		s3err.ErrXAmzContentSHA256Mismatch,
	} {
		knownErrors[e.Code] = e
	}
}

// errorMapper translates SDK errors into *s3err.Error at the boundary.
type errorMapper struct {
	// secrets are strings that must never reach a client: the store's
	// endpoint, host, bucket, key prefix and access key.
	secrets []string
}

func newErrorMapper(o *Options) *errorMapper {
	m := &errorMapper{}
	add := func(s string) {
		if len(s) >= 3 {
			m.secrets = append(m.secrets, s)
		}
	}
	add(o.Config.Endpoint)
	if h := hostOf(o.Config.Endpoint); h != "" {
		add(h)
		if host, _, err := net.SplitHostPort(h); err == nil {
			add(host)
		}
	}
	add(o.Config.Bucket)
	add(strings.TrimSuffix(o.Config.KeyPrefix, "/"))
	add(o.Config.AccessKey)
	add(o.Config.SecretKey)
	add(o.Config.SessionToken)
	return m
}

func hostOf(endpoint string) string {
	s := endpoint
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	if i := strings.IndexAny(s, "/?#"); i >= 0 {
		s = s[:i]
	}
	return s
}

var addressLike = regexp.MustCompile(`(?i)[a-z][a-z0-9+.-]*://|\b\d{1,3}(\.\d{1,3}){3}\b|\[[0-9a-f:]+\]|amazonaws\.com|arn:aws`)

// scrub returns msg if it names nothing of the store, else "".
func (m *errorMapper) scrub(msg string) string {
	for _, s := range m.secrets {
		if strings.Contains(msg, s) {
			return ""
		}
	}
	if addressLike.MatchString(msg) || len(msg) > 300 {
		return ""
	}
	return msg
}

// mapErr turns an SDK error into the error the handler answers with.
// ctx is the operation's context: a cancelled request is reported as such
// (the client is gone), not as a store failure.
func (m *errorMapper) mapErr(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	var se *s3err.Error
	if errors.As(err, &se) {
		// From the request body (e.g. a digest mismatch found while
		// streaming) or our own checks.
		return se
	}
	var ce *clientBodyError
	if errors.As(err, &ce) {
		return s3err.ErrIncompleteBody.WithCause(ce.err)
	}
	if ctx.Err() != nil {
		return &canceledError{cause: err, ctxErr: ctx.Err()}
	}
	var api smithy.APIError
	var re *awshttp.ResponseError
	status := 0
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	if errors.As(err, &api) && status != 0 {
		code := api.ErrorCode()
		if k, ok := knownErrors[code]; ok {
			return k.WithStatus(status).WithCause(err)
		}
		msg := m.scrub(api.ErrorMessage())
		if code == "" || m.scrub(code) == "" {
			code = http.StatusText(status)
			code = strings.ReplaceAll(code, " ", "")
		}
		if msg == "" {
			msg = "The storage backend refused the request."
		}
		return &s3err.Error{Code: code, Status: status, Message: msg, Err: err}
	}
	if status >= 500 {
		return s3err.ErrServiceUnavailable.WithCause(err)
	}
	if status != 0 {
		return s3err.ErrInternalError.WithCause(err)
	}
	// Dial, reset, timeout, DNS: the store cannot be reached.
	return s3err.ErrServiceUnavailable.WithCause(err)
}

// canceledError reports an operation cut short by its context (client
// disconnect, shutdown). errors.Is(err, context.Canceled) holds.
type canceledError struct {
	cause  error
	ctxErr error
}

func (e *canceledError) Error() string { return "s3 backend: request cancelled: " + e.cause.Error() }
func (e *canceledError) Unwrap() []error {
	return []error{e.ctxErr, e.cause}
}

// clientBodyError is a failure reading the client's body (disconnect,
// short body) as opposed to writing to the store.
type clientBodyError struct{ err error }

func (e *clientBodyError) Error() string { return "reading request body: " + e.err.Error() }
func (e *clientBodyError) Unwrap() error { return e.err }

// retryable reports whether a replayable call may be tried again.
func retryable(err error) bool {
	var se *s3err.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code {
	case "SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "RequestTimeTooSkewed":
		return true
	}
	return se.Status >= 500
}
