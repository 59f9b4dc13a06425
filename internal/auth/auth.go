// Package auth authenticates S3 upload requests. Each method (jwt, sigv4)
// implements Authenticator; Chain tries them in order and decides what a
// request with no credentials at all gets.
//
// Three outcomes, never confused:
//   - ErrNoCredentials: the request carries no credentials of this kind;
//     the next method is tried.
//   - an *s3err.Error: the credentials are present but bad (401/403 with an
//     S3 code); the request is refused.
//   - any other error: authentication could not be performed (JWKS down…);
//     the request is refused with 503, never allowed.
package auth

import (
	"context"
	"errors"
	"net/http"
)

// Method names an authentication method, as used in metrics and policy input.
type Method string

// The methods.
const (
	MethodJWT       Method = "jwt"
	MethodSigV4     Method = "sigv4"
	MethodAnonymous Method = "anonymous"
)

// AnonymousSubject is the subject of unauthenticated requests.
const AnonymousSubject = "anonymous"

// Principal is the authenticated caller.
type Principal struct {
	// Subject identifies the caller (JWT sub, SigV4 credential subject,
	// or "anonymous"). It is never logged or traced in the clear.
	Subject string
	Method  Method
	// Claims are the verified JWT claims (nil for other methods).
	Claims map[string]any
	// Claim, when set, must succeed before a request that writes is
	// carried out, and its error is the answer otherwise. SigV4 replay
	// protection records the request's signature there: only writes
	// spend an entry, so probes, reads and refused requests cost nothing.
	// The handler calls it once, after authorization and before the body
	// is read; requests that write nothing ignore it.
	Claim func(ctx context.Context) error

	// Ambient is set when the credential came from a cookie: a browser
	// attaches it to every request to the proxy's site, whichever page
	// made the request, so the request's origin must be checked (see
	// s3api's checkAmbientOrigin).
	Ambient bool
}

// ErrNoCredentials means the request carries no credentials of the
// authenticator's kind.
var ErrNoCredentials = errors.New("auth: no credentials")

// Authenticator authenticates one request before its body is read.
//
// An implementation that must verify the payload (SigV4 signed or
// streaming payloads) replaces r.Body with a verifying reader that returns
// an *s3err.Error instead of the final bytes when verification fails, so a
// corrupted body never becomes an object. When it decodes aws-chunked
// framing it also sets r.ContentLength to the decoded length and removes
// aws-chunked from Content-Encoding.
type Authenticator interface {
	Authenticate(ctx context.Context, r *http.Request) (*Principal, error)
}
