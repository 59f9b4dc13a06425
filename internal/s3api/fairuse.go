package s3api

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/mizuchi-uploadr/mizuchi/internal/auth"
	"github.com/mizuchi-uploadr/mizuchi/internal/authz"
	"github.com/mizuchi-uploadr/mizuchi/internal/limits"
	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

// ErrQuotaExceeded answers an upload past a daily byte quota
// (bytes_per_day): 403, as Ceph RGW answers its quotas.
var ErrQuotaExceeded = &s3err.Error{Code: "QuotaExceeded", Status: http.StatusForbidden,
	Message: "The daily upload quota is exhausted; it is renewed at 00:00 UTC."}

// admitFairUse applies the bucket's limits (docs/LIMITS.md) once the request is
// authorized and before any byte of its body is read. An admitted
// request holds a ticket in its scope until serve returns.
func (h *Handler) admitFairUse(ctx context.Context, r *http.Request, s *Scope, b *Bucket, req Request) error {
	if b.Limits == nil {
		return nil
	}
	upload := req.Op == OpPutObject || req.Op == OpUploadPart
	t, err := b.Limits.Admit(ctx, limits.Ask{
		Subject:  limitSubject(r, s),
		Upload:   upload,
		Bytes:    r.ContentLength,
		Exempt:   req.Op == OpAbortMultipartUpload,
		Override: s.limitOverride,
	})
	if err != nil {
		return refusal(ctx, err)
	}
	s.ticket = t
	return nil
}

// refusal turns a refused admission into its S3 error and records it on
// the span as an event (the subject is not named).
func refusal(ctx context.Context, err error) error {
	span := trace.SpanFromContext(ctx)
	var ref *limits.Refusal
	if !errors.As(err, &ref) {
		span.AddEvent("limit.refused", trace.WithAttributes(attribute.String("mizuchi.limit", limits.LimitUnavailable)))
		return s3err.ErrSlowDown.WithMessage("The limits could not be checked; please try again.").
			WithHeader("Retry-After", "1").WithCause(err)
	}
	span.AddEvent("limit.refused", trace.WithAttributes(
		attribute.String("mizuchi.limit", ref.Limit),
		attribute.String("mizuchi.limit.scope", ref.Scope),
	))
	if ref.Limit == limits.LimitDaily {
		return ErrQuotaExceeded
	}
	msg := "Please reduce your request rate."
	if ref.Limit == limits.LimitConcurrency {
		msg = "Too many uploads in progress; please try again when one has finished."
	}
	secs := max(1, int(ref.RetryAfter.Seconds()))
	return s3err.ErrSlowDown.WithMessage("%s", msg).WithHeader("Retry-After", strconv.Itoa(secs))
}

// limitSubject is who per-subject limits count: the access key for
// SigV4 (one subject per credential), the verified subject for JWT, and
// one subject per client address for anonymous requests.
func limitSubject(r *http.Request, s *Scope) string {
	p := s.Principal
	if p == nil || p.Method == auth.MethodAnonymous || p.Method == "" {
		return "ip:" + s.ClientIP
	}
	if p.Method == auth.MethodSigV4 {
		if ak := accessKey(r); ak != "" {
			return "sigv4:" + ak
		}
	}
	return string(p.Method) + ":" + p.Subject
}

// accessKey is the access key of a SigV4 request's credential scope (the
// request was authenticated, so it is the verified one).
func accessKey(r *http.Request) string {
	cred := r.URL.Query().Get("X-Amz-Credential")
	if cred == "" {
		a := r.Header.Get("Authorization")
		i := strings.Index(a, "Credential=")
		if i < 0 {
			return ""
		}
		cred = a[i+len("Credential="):]
	}
	ak, _, _ := strings.Cut(cred, "/")
	return ak
}

// limitedBody is the body a backend reads: shaped to the bandwidth limits
// of the request's ticket, if any.
func limitedBody(s *Scope, r *http.Request) io.Reader {
	return s.ticket.Body(r.Context(), r.Body)
}

// decide asks the bucket's policy engine; an allow that carries limits
// (OPA: {"allow": true, "limits": {…}}) replaces the subject's limits for
// this request.
func (h *Handler) decide(ctx context.Context, s *Scope, b *Bucket, in *authz.Input) (bool, error) {
	la, ok := b.Authz.(authz.LimitingAuthorizer)
	if !ok || b.Limits == nil {
		return b.Authz.Authorize(ctx, in)
	}
	allow, lim, err := la.AuthorizeLimits(ctx, in)
	if err == nil && allow && lim != nil {
		set := overrideLimits(b.Limits.PerSubject(), lim)
		s.limitOverride = &set
	}
	return allow, err
}

// overrideLimits is base with the values the decision sets.
func overrideLimits(base limits.Set, l *authz.Limits) limits.Set {
	if l.RequestsPerSecond != nil {
		base.RequestsPerSecond = *l.RequestsPerSecond
	}
	if l.Burst != nil {
		base.Burst = *l.Burst
	}
	if base.RequestsPerSecond > 0 && base.Burst < 1 {
		base.Burst = int64(math.Ceil(base.RequestsPerSecond))
	}
	if l.ConcurrentUploads != nil {
		base.ConcurrentUploads = *l.ConcurrentUploads
	}
	if l.BytesPerSecond != nil {
		base.BytesPerSecond = *l.BytesPerSecond
		if base.BytesPerSecond > 0 {
			base.BytesPerSecond = max(base.BytesPerSecond, 1024)
		}
	}
	if l.BytesPerDay != nil {
		base.BytesPerDay = *l.BytesPerDay
	}
	return base
}
