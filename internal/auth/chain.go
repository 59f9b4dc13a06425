package auth

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
	"github.com/mizuchi-uploadr/mizuchi/internal/telemetry"
)

// Results counted in mizuchi_auth_requests_total{result}.
const (
	// ResultSuccess: the credentials were verified.
	ResultSuccess = "success"
	// ResultDenied: credentials were present but bad (401/403).
	ResultDenied = "denied"
	// ResultError: authentication could not be performed (503).
	ResultError = "error"
	// ResultMissing: no method found credentials of its kind.
	ResultMissing = "missing"
)

// Namer is implemented by authenticators that name their method; the
// chain uses the name in metrics, spans and logs. Authenticators without
// it are reported by their principals' Method on success and as "unknown"
// otherwise.
type Namer interface {
	Method() Method
}

const unknownMethod Method = "unknown"

// ChainOptions configure one bucket's Chain.
type ChainOptions struct {
	// Bucket labels metrics and logs.
	Bucket string
	// Methods are tried in order.
	Methods []Authenticator
	// Anonymous means authentication is disabled for the bucket: every
	// request is anonymous, whatever credentials it carries.
	Anonymous bool
	// JWT says a JWT method is among Methods; a request without any
	// credentials then gets a 401 Bearer challenge instead of a 403.
	JWT bool
	// Metrics may be nil.
	Metrics *telemetry.Metrics
	// Logger may be nil.
	Logger *slog.Logger
	// Tracer, when set, records one auth.<method> span per method tried.
	Tracer trace.Tracer
}

// Chain authenticates a bucket's requests with its methods in order.
type Chain struct {
	bucket    string
	methods   []namedAuthenticator
	anonymous bool
	missing   *s3err.Error
	// missingMethod labels requests that carried no credentials: the
	// method whose challenge they are answered with.
	missingMethod Method
	metrics       *telemetry.Metrics
	log           *slog.Logger
	tracer        trace.Tracer
}

type namedAuthenticator struct {
	Authenticator
	name Method
}

// errMissingBearer answers a request without credentials on a bucket that
// accepts JWTs (RFC 6750 section 3.1: no error code in the challenge).
var errMissingBearer = s3err.ErrAccessDenied.
	WithStatus(http.StatusUnauthorized).
	WithMessage("Authentication required: no credentials were provided.").
	WithHeader("WWW-Authenticate", `Bearer realm="mizuchi"`)

// NewChain builds a Chain.
func NewChain(o ChainOptions) *Chain {
	c := &Chain{
		bucket:    o.Bucket,
		anonymous: o.Anonymous,
		metrics:   o.Metrics,
		log:       o.Logger,
		tracer:    o.Tracer,
		missing:   s3err.ErrAccessDenied,
	}
	if c.log == nil {
		c.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	for _, a := range o.Methods {
		name := unknownMethod
		if n, ok := a.(Namer); ok {
			name = n.Method()
		}
		c.methods = append(c.methods, namedAuthenticator{Authenticator: a, name: name})
	}
	switch {
	case o.JWT:
		c.missing = errMissingBearer
		c.missingMethod = MethodJWT
	case len(c.methods) > 0:
		c.missingMethod = c.methods[0].name
	default:
		c.missingMethod = "none"
	}
	return c
}

// Authenticate returns the request's Principal, or an *s3err.Error: 401 or
// 403 for missing or bad credentials, 503 ServiceUnavailable when a method
// could not decide (its cause is kept for the log). The first method that
// finds credentials of its kind decides; the others are not consulted.
func (c *Chain) Authenticate(ctx context.Context, r *http.Request) (*Principal, error) {
	if c.anonymous {
		c.count(MethodAnonymous, ResultSuccess)
		return &Principal{Subject: AnonymousSubject, Method: MethodAnonymous}, nil
	}
	for _, m := range c.methods {
		p, err := c.try(ctx, m, r)
		if errors.Is(err, ErrNoCredentials) {
			continue
		}
		return p, err
	}
	c.count(c.missingMethod, ResultMissing)
	c.log.DebugContext(ctx, "request without credentials refused", "bucket", c.bucket)
	return nil, c.missing
}

// try runs one method and turns its outcome into the chain's answer.
func (c *Chain) try(ctx context.Context, m namedAuthenticator, r *http.Request) (*Principal, error) {
	var span trace.Span
	if c.tracer != nil {
		ctx, span = c.tracer.Start(ctx, "auth."+string(m.name), trace.WithSpanKind(trace.SpanKindInternal))
		defer span.End()
	}
	p, err := m.Authenticate(ctx, r)
	result, out := c.classify(ctx, m.name, p, err)
	if result == ResultSuccess && m.name == unknownMethod {
		m.name = p.Method // an authenticator without Namer still names its principals
	}
	if span != nil {
		span.SetAttributes(attribute.String("auth.method", string(m.name)), attribute.String("auth.result", result))
		if result == ResultError {
			span.SetStatus(codes.Error, "authentication could not be performed")
		}
	}
	if result == ResultMissing {
		return nil, ErrNoCredentials
	}
	c.count(m.name, result)
	if result == ResultSuccess {
		return p, nil
	}
	return nil, out
}

func (c *Chain) classify(ctx context.Context, name Method, p *Principal, err error) (string, error) {
	var s3e *s3err.Error
	switch {
	case err == nil && p != nil && p.Subject != "":
		if p.Method == "" {
			p.Method = name
		}
		return ResultSuccess, nil
	case err == nil:
		c.log.ErrorContext(ctx, "authenticator returned no principal", "bucket", c.bucket, "method", name)
		return ResultError, s3err.ErrServiceUnavailable.WithCause(errors.New("auth: " + string(name) + " returned no principal"))
	case errors.Is(err, ErrNoCredentials):
		return ResultMissing, err
	case errors.As(err, &s3e) && s3e.Status < 500:
		c.log.DebugContext(ctx, "credentials refused", "bucket", c.bucket, "method", name, "code", s3e.Code, "reason", s3e.Message)
		return ResultDenied, s3e
	case s3e != nil:
		c.log.WarnContext(ctx, "authentication could not be performed", "bucket", c.bucket, "method", name, "error", err)
		return ResultError, s3e
	default:
		c.log.WarnContext(ctx, "authentication could not be performed", "bucket", c.bucket, "method", name, "error", err)
		return ResultError, s3err.ErrServiceUnavailable.WithCause(err)
	}
}

func (c *Chain) count(method Method, result string) {
	if c.metrics == nil || c.metrics.AuthRequests == nil {
		return
	}
	c.metrics.AuthRequests.WithLabelValues(c.bucket, string(method), result).Inc()
}

var _ Authenticator = (*Chain)(nil)
