// Package s3err holds the one table of S3 error codes Mizuchi answers with
// and the one function that writes them as S3's XML error document.
//
// Handlers, authenticators, authorizers and backends return *Error values
// (or wrap them); anything else reaching the writer becomes InternalError,
// so internal details never leak to clients.
package s3err

import (
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"strconv"
)

// Error is an S3 error: a code, a human message and an HTTP status.
type Error struct {
	Code    string
	Message string
	Status  int
	// Header holds extra response headers (e.g. WWW-Authenticate).
	Header http.Header
	// Err is an optional cause, logged but never sent to the client.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Message + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is matches errors by code, so errors.Is(err, s3err.ErrNoSuchUpload)
// holds for any NoSuchUpload error whatever its message.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// WithMessage returns a copy with another message.
func (e *Error) WithMessage(format string, args ...any) *Error {
	c := *e
	c.Message = fmt.Sprintf(format, args...)
	return &c
}

// WithStatus returns a copy answered with another HTTP status.
func (e *Error) WithStatus(status int) *Error {
	c := *e
	c.Status = status
	return &c
}

// WithCause returns a copy carrying cause for the log.
func (e *Error) WithCause(cause error) *Error {
	c := *e
	c.Err = cause
	return &c
}

// WithHeader returns a copy that adds a response header.
func (e *Error) WithHeader(key, value string) *Error {
	c := *e
	c.Header = e.Header.Clone()
	if c.Header == nil {
		c.Header = http.Header{}
	}
	c.Header.Add(key, value)
	return &c
}

func def(code string, status int, msg string) *Error {
	return &Error{Code: code, Status: status, Message: msg}
}

// The error table. Messages follow S3's wording where S3 has one.
var (
	ErrAccessForbidden                   = def("AccessForbidden", http.StatusForbidden, "CORSResponse: This CORS request is not allowed.")
	ErrAccessDenied                      = def("AccessDenied", http.StatusForbidden, "Access Denied")
	ErrBucketAlreadyOwnedByYou           = def("BucketAlreadyOwnedByYou", http.StatusConflict, "Your previous request to create the named bucket succeeded and you already own it.")
	ErrBadDigest                         = def("BadDigest", http.StatusBadRequest, "The Content-MD5 or checksum you specified did not match what we received.")
	ErrEntityTooLarge                    = def("EntityTooLarge", http.StatusBadRequest, "Your proposed upload exceeds the maximum allowed object size.")
	ErrEntityTooSmall                    = def("EntityTooSmall", http.StatusBadRequest, "Your proposed upload is smaller than the minimum allowed object size.")
	ErrIncompleteBody                    = def("IncompleteBody", http.StatusBadRequest, "You did not provide the number of bytes specified by the Content-Length HTTP header.")
	ErrInternalError                     = def("InternalError", http.StatusInternalServerError, "We encountered an internal error. Please try again.")
	ErrInvalidAccessKeyID                = def("InvalidAccessKeyId", http.StatusForbidden, "The AWS access key Id you provided does not exist in our records.")
	ErrInvalidArgument                   = def("InvalidArgument", http.StatusBadRequest, "Invalid Argument")
	ErrInvalidBucketName                 = def("InvalidBucketName", http.StatusBadRequest, "The specified bucket is not valid.")
	ErrInvalidDigest                     = def("InvalidDigest", http.StatusBadRequest, "The Content-MD5 or checksum you specified is not valid.")
	ErrInvalidPart                       = def("InvalidPart", http.StatusBadRequest, "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.")
	ErrInvalidPartOrder                  = def("InvalidPartOrder", http.StatusBadRequest, "The list of parts was not in ascending order. The parts list must be specified in order by part number.")
	ErrInvalidRequest                    = def("InvalidRequest", http.StatusBadRequest, "Invalid Request")
	ErrInvalidToken                      = def("InvalidToken", http.StatusBadRequest, "The provided token is malformed or otherwise invalid.")
	ErrKeyTooLong                        = def("KeyTooLongError", http.StatusBadRequest, "Your key is too long.")
	ErrMaxMessageLengthExceeded          = def("MaxMessageLengthExceeded", http.StatusBadRequest, "Your request was too big.")
	ErrMetadataTooLarge                  = def("MetadataTooLarge", http.StatusBadRequest, "Your metadata headers exceed the maximum allowed metadata size.")
	ErrMalformedXML                      = def("MalformedXML", http.StatusBadRequest, "The XML you provided was not well-formed or did not validate against our published schema.")
	ErrMethodNotAllowed                  = def("MethodNotAllowed", http.StatusMethodNotAllowed, "The specified method is not allowed against this resource.")
	ErrMissingContentLength              = def("MissingContentLength", http.StatusLengthRequired, "You must provide the Content-Length HTTP header.")
	ErrNoSuchBucket                      = def("NoSuchBucket", http.StatusNotFound, "The specified bucket does not exist.")
	ErrNoSuchUpload                      = def("NoSuchUpload", http.StatusNotFound, "The specified multipart upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.")
	ErrNotImplemented                    = def("NotImplemented", http.StatusNotImplemented, "A header or query you provided implies functionality that is not implemented.")
	ErrPreconditionFailed                = def("PreconditionFailed", http.StatusPreconditionFailed, "At least one of the preconditions you specified did not hold.")
	ErrRequestTimeTooSkewed              = def("RequestTimeTooSkewed", http.StatusForbidden, "The difference between the request time and the server's time is too large.")
	ErrRequestTimeout                    = def("RequestTimeout", http.StatusBadRequest, "Your socket connection to the server was not read from or written to within the timeout period.")
	ErrServiceUnavailable                = def("ServiceUnavailable", http.StatusServiceUnavailable, "Please reduce your request rate or try again later.")
	ErrSignatureDoesNotMatch             = def("SignatureDoesNotMatch", http.StatusForbidden, "The request signature we calculated does not match the signature you provided. Check your key and signing method.")
	ErrSlowDown                          = def("SlowDown", http.StatusServiceUnavailable, "Please reduce your request rate.")
	ErrAuthorizationHeaderMalformed      = def("AuthorizationHeaderMalformed", http.StatusBadRequest, "The authorization header is malformed.")
	ErrAuthorizationQueryParametersError = def("AuthorizationQueryParametersError", http.StatusBadRequest, "Error parsing the X-Amz-Credential parameter.")
	ErrObjectParentIsFile                = def("ObjectParentIsFile", http.StatusConflict, "Object parent already exists as a file.")
	ErrExistingObjectIsDirectory         = def("ExistingObjectIsDirectory", http.StatusConflict, "Existing Object is a directory.")
	ErrExpiredToken                      = def("ExpiredToken", http.StatusBadRequest, "The provided token has expired.")
	ErrUnsupportedMediaType              = def("InvalidArgument", http.StatusBadRequest, "The Content-Type of this upload is not allowed.")
	ErrXAmzContentSHA256Mismatch         = def("XAmzContentSHA256Mismatch", http.StatusBadRequest, "The provided 'x-amz-content-sha256' header does not match what was computed.")
)

// As extracts an *Error from err; anything else becomes InternalError
// carrying err as its (logged, never sent) cause.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return ErrInternalError.WithCause(err)
}

type errorDoc struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string   `xml:"Code"`
	Message   string   `xml:"Message"`
	Resource  string   `xml:"Resource,omitempty"`
	RequestID string   `xml:"RequestId"`
}

// Write writes err as an S3 XML error response. resource is the request
// path (S3's Resource element); requestID is echoed in the body. For HEAD
// requests only the status and headers are written, as S3 does.
func Write(w http.ResponseWriter, r *http.Request, err error, resource, requestID string) *Error {
	e := As(err)
	h := w.Header()
	for k, vs := range e.Header {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	body, _ := xml.Marshal(errorDoc{Code: e.Code, Message: e.Message, Resource: resource, RequestID: requestID})
	body = append([]byte(xml.Header), body...)
	h.Set("Content-Type", "application/xml")
	if r != nil && r.Method == http.MethodHead {
		h.Del("Content-Length")
		w.WriteHeader(e.Status)
		return e
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.Status)
	_, _ = w.Write(body)
	return e
}
