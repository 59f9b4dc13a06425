package telemetry

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// WrapTransport returns a RoundTripper that makes one client span per
// outgoing call and injects W3C trace context into the request headers,
// so the callee (S3 backend, OPA, OpenFGA, a JWKS server) sees the same
// trace id. The span carries the method, server.address/port, url.scheme
// and the response status; never the URL path or query (a presigned query
// holds a signature) nor any header. Errors are recorded by kind only,
// since a transport error's text repeats the full URL.
//
// base nil means http.DefaultTransport. With a nil or no-op provider only
// the incoming trace context, if any, is injected.
//
// The span ends when RoundTrip returns (response headers received); for
// uploads the request body has been sent by then.
func WrapTransport(base http.RoundTripper, tp trace.TracerProvider, prop propagation.TextMapPropagator) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	if prop == nil {
		prop = NewPropagator()
	}
	if isNoop(tp) {
		return &propagatingTransport{base: base, prop: prop}
	}
	return &tracingTransport{base: base, prop: prop, tracer: tp.Tracer(scopeName)}
}

type propagatingTransport struct {
	base http.RoundTripper
	prop propagation.TextMapPropagator
}

func (t *propagatingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !trace.SpanContextFromContext(req.Context()).IsValid() {
		return t.base.RoundTrip(req)
	}
	// A RoundTripper must not modify the caller's request.
	r := req.Clone(req.Context())
	t.prop.Inject(r.Context(), propagation.HeaderCarrier(r.Header))
	return t.base.RoundTrip(r)
}

type tracingTransport struct {
	base   http.RoundTripper
	prop   propagation.TextMapPropagator
	tracer trace.Tracer
}

func (t *tracingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	method, known := normalizeMethod(req.Method)
	name := method
	if !known {
		name = "HTTP"
	}
	scheme := req.URL.Scheme
	defPort := "80"
	if scheme == "https" {
		defPort = "443"
	}
	attrs := make([]attribute.KeyValue, 0, 5)
	attrs = append(attrs, AttrHTTPRequestMethod.String(method), AttrURLScheme.String(scheme))
	attrs = appendHostPort(attrs, req.URL.Host, defPort)
	ctx, span := t.tracer.Start(req.Context(), name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	defer span.End()

	r := req.Clone(ctx)
	t.prop.Inject(ctx, propagation.HeaderCarrier(r.Header))
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		kind := errorKind(err)
		span.SetAttributes(AttrErrorType.String(kind))
		span.SetStatus(codes.Error, kind)
		return nil, err
	}
	span.SetAttributes(AttrHTTPResponseStatusCode.Int(resp.StatusCode))
	if resp.StatusCode >= 400 {
		code := strconv.Itoa(resp.StatusCode)
		span.SetAttributes(AttrErrorType.String(code))
		span.SetStatus(codes.Error, "")
	}
	return resp, nil
}

// errorKind classifies a transport error without its text, which may
// contain the request URL.
func errorKind(err error) string {
	var nerr net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection_refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection_reset"
	case errors.As(err, &nerr) && nerr.Timeout():
		return "timeout"
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return "dns"
	}
	return "_OTHER"
}

// UnaryClientInterceptor makes a client span per unary gRPC call (OpenFGA
// over gRPC) and injects W3C trace context into the outgoing metadata.
// With a nil or no-op provider only the incoming trace context is injected.
func UnaryClientInterceptor(tp trace.TracerProvider, prop propagation.TextMapPropagator) grpc.UnaryClientInterceptor {
	if prop == nil {
		prop = NewPropagator()
	}
	if isNoop(tp) {
		return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			if trace.SpanContextFromContext(ctx).IsValid() {
				ctx = injectMetadata(ctx, prop)
			}
			return invoker(ctx, method, req, reply, cc, opts...)
		}
	}
	tracer := tp.Tracer(scopeName)
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		name := strings.TrimPrefix(method, "/")
		attrs := []attribute.KeyValue{AttrRPCSystem.String("grpc")}
		if i := strings.LastIndexByte(name, '/'); i >= 0 {
			attrs = append(attrs, AttrRPCService.String(name[:i]), AttrRPCMethod.String(name[i+1:]))
		}
		if cc != nil {
			target := cc.Target()
			if i := strings.LastIndex(target, "///"); i >= 0 {
				target = target[i+3:]
			}
			attrs = appendHostPort(attrs, target, "")
		}
		ctx, span := tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
		defer span.End()
		err := invoker(injectMetadata(ctx, prop), method, req, reply, cc, opts...)
		code := status.Code(err)
		span.SetAttributes(AttrRPCGRPCStatusCode.Int(int(code)))
		if err != nil {
			span.SetAttributes(AttrErrorType.String(code.String()))
			span.SetStatus(codes.Error, code.String())
		}
		return err
	}
}

func injectMetadata(ctx context.Context, prop propagation.TextMapPropagator) context.Context {
	md, _ := metadata.FromOutgoingContext(ctx)
	md = md.Copy()
	prop.Inject(ctx, metadataCarrier(md))
	return metadata.NewOutgoingContext(ctx, md)
}

// metadataCarrier adapts gRPC metadata to the propagator.
type metadataCarrier metadata.MD

func (c metadataCarrier) Get(key string) string {
	if v := metadata.MD(c).Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (c metadataCarrier) Set(key, value string) { metadata.MD(c).Set(key, value) }

func (c metadataCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

var (
	_ http.RoundTripper          = (*tracingTransport)(nil)
	_ http.RoundTripper          = (*propagatingTransport)(nil)
	_ propagation.TextMapCarrier = metadataCarrier(nil)
)
