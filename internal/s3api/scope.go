package s3api

import (
	"context"

	"github.com/mizuchi-uploadr/mizuchi/internal/auth"
	"github.com/mizuchi-uploadr/mizuchi/internal/limits"
)

// Scope is the request-scoped data of one S3 request, kept in the request
// context behind an unexported key.
type Scope struct {
	RequestID string
	Bucket    *Bucket
	Request   Request
	Key       string
	Principal *auth.Principal
	ClientIP  string
	// Bytes is the number of body bytes read from the client.
	Bytes int64
	// Status and Code are what was answered.
	Status int
	Code   string

	// backendUploadID is the backend's id inside Request.UploadID.
	backendUploadID string
	// ticket is the admission by the bucket's limits; limitOverride the
	// per-subject limits the policy engine set (fairuse.go).
	ticket        *limits.Ticket
	limitOverride *limits.Set
}

type scopeKey struct{}

// WithScope returns ctx carrying s.
func WithScope(ctx context.Context, s *Scope) context.Context {
	return context.WithValue(ctx, scopeKey{}, s)
}

// ScopeFrom returns the request's scope, or nil.
func ScopeFrom(ctx context.Context) *Scope {
	s, _ := ctx.Value(scopeKey{}).(*Scope)
	return s
}
