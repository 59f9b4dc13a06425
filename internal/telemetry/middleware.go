package telemetry

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// MiddlewareOptions configures Middleware. Tracing.MiddlewareOptions
// fills it from the configuration.
type MiddlewareOptions struct {
	// Provider creates the server spans; nil or a no-op provider makes the
	// middleware only pass incoming trace context through.
	Provider trace.TracerProvider
	// Propagator extracts incoming context; nil: W3C trace context + baggage.
	Propagator propagation.TextMapPropagator
	// RecordObjectKeys allows url.path and the object key in spans.
	RecordObjectKeys bool
}

// Middleware starts the server span of each request on the S3 listener.
//
// The span is named after the method until the handler calls SetRoute. An
// incoming traceparent/tracestate makes it a child of the caller's span; an
// invalid header is ignored and a new trace starts. url.path and url.full
// are never recorded unless RecordObjectKeys is set, and the query string
// (which may carry a presigned signature) never is.
//
// With tracing disabled the middleware only extracts an incoming
// traceparent, so outgoing calls still carry the caller's trace context;
// requests without one pass through untouched.
func Middleware(next http.Handler, opts MiddlewareOptions) http.Handler {
	if opts.Propagator == nil {
		opts.Propagator = NewPropagator()
	}
	if isNoop(opts.Provider) {
		return &passThroughMiddleware{next: next, prop: opts.Propagator}
	}
	return &serverMiddleware{
		next:       next,
		prop:       opts.Propagator,
		tracer:     opts.Provider.Tracer(scopeName),
		recordKeys: opts.RecordObjectKeys,
	}
}

func isNoop(tp trace.TracerProvider) bool {
	if tp == nil {
		return true
	}
	switch tp.(type) {
	case noop.TracerProvider, *noop.TracerProvider:
		return true
	}
	return false
}

type passThroughMiddleware struct {
	next http.Handler
	prop propagation.TextMapPropagator
}

func (m *passThroughMiddleware) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, ok := r.Header["Traceparent"]; ok {
		ctx := m.prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		if trace.SpanContextFromContext(ctx).IsValid() {
			r = r.WithContext(ctx)
		}
	}
	m.next.ServeHTTP(w, r)
}

type serverMiddleware struct {
	next       http.Handler
	prop       propagation.TextMapPropagator
	tracer     trace.Tracer
	recordKeys bool
}

// requestSpan is the per-request tracing state, reachable from the
// request context through the helpers below.
type requestSpan struct {
	span       trace.Span
	method     string
	recordKeys bool
}

type requestSpanKey struct{}

func requestSpanFrom(ctx context.Context) *requestSpan {
	rs, _ := ctx.Value(requestSpanKey{}).(*requestSpan)
	return rs
}

func (m *serverMiddleware) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := m.prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	method, known := normalizeMethod(r.Method)
	name := method
	if !known {
		name = "HTTP"
	}
	ctx, span := m.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer))
	if !span.IsRecording() {
		// Not sampled: the span only carries the trace context onwards.
		m.next.ServeHTTP(w, r.WithContext(ctx))
		span.End()
		return
	}
	span.SetAttributes(m.requestAttributes(r, method)...)
	rs := &requestSpan{span: span, method: name, recordKeys: m.recordKeys}
	ctx = context.WithValue(ctx, requestSpanKey{}, rs)
	rec := &statusRecorder{ResponseWriter: w}
	defer func() {
		if p := recover(); p != nil {
			span.SetStatus(codes.Error, "handler panic")
			span.SetAttributes(AttrErrorType.String("panic"))
			span.End()
			panic(p)
		}
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		span.SetAttributes(AttrHTTPResponseStatusCode.Int(status))
		if status >= 500 {
			span.SetStatus(codes.Error, "")
			span.SetAttributes(AttrErrorType.String(strconv.Itoa(status)))
		}
		span.End()
	}()
	m.next.ServeHTTP(rec, r.WithContext(ctx))
}

// requestAttributes are the server span's HTTP semantic-convention
// attributes. Never the query string; the path only with RecordObjectKeys.
func (m *serverMiddleware) requestAttributes(r *http.Request, method string) []attribute.KeyValue {
	attrs := make([]attribute.KeyValue, 0, 10)
	attrs = append(attrs, AttrHTTPRequestMethod.String(method))
	if r.TLS != nil {
		attrs = append(attrs, AttrURLScheme.String("https"))
	} else {
		attrs = append(attrs, AttrURLScheme.String("http"))
	}
	attrs = appendHostPort(attrs, r.Host, "")
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		attrs = append(attrs, AttrClientAddress.String(host))
	}
	attrs = append(attrs, AttrNetworkProtocolVersion.String(protocolVersion(r)))
	if ua := r.UserAgent(); ua != "" {
		attrs = append(attrs, AttrUserAgent.String(ua))
	}
	if r.ContentLength >= 0 {
		attrs = append(attrs, AttrHTTPRequestBodySize.Int64(r.ContentLength))
	}
	if m.recordKeys {
		attrs = append(attrs, AttrURLPath.String(r.URL.Path))
	}
	return attrs
}

// SetRoute names the server span once the handler has routed the request:
// the span becomes "{METHOD} /{bucket}" and http.route the template
// "/{bucket}/{key}" (or "/{bucket}" for bucket-level operations).
func SetRoute(ctx context.Context, bucket, operation string) {
	rs := requestSpanFrom(ctx)
	if rs == nil {
		return
	}
	route := "/" + bucket
	rs.span.SetName(rs.method + " " + route)
	if !bucketLevel(operation) {
		route += "/{key}"
	}
	rs.span.SetAttributes(AttrHTTPRoute.String(route), AttrBucket.String(bucket), AttrOperation.String(operation))
}

func bucketLevel(operation string) bool {
	switch operation {
	case "HeadBucket", "GetBucketLocation", "CreateBucket":
		return true
	}
	return false
}

// SetObjectKey records the object key on the server span, only when
// tracing.record_object_keys is true.
func SetObjectKey(ctx context.Context, key string) {
	if rs := requestSpanFrom(ctx); rs != nil && rs.recordKeys {
		rs.span.SetAttributes(AttrObjectKey.String(key))
	}
}

// RecordUploadWait records on the server span how long the upload waited
// for the client to send bytes versus for the backend to take them, so a
// slow upload can be blamed on the right side.
func RecordUploadWait(ctx context.Context, clientWait, backendWait time.Duration) {
	if rs := requestSpanFrom(ctx); rs != nil {
		rs.span.SetAttributes(AttrUploadClientWait.Float64(clientWait.Seconds()),
			AttrUploadBackendWait.Float64(backendWait.Seconds()))
	}
}

// ServerSpan returns the request's server span (a non-recording span when
// tracing is off), for attributes such as enduser.hash.
func ServerSpan(ctx context.Context) trace.Span {
	if rs := requestSpanFrom(ctx); rs != nil {
		return rs.span
	}
	return trace.SpanFromContext(ctx)
}

// statusRecorder remembers the response status. Unwrap lets
// http.ResponseController reach the underlying writer.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 && code >= 200 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// normalizeMethod keeps span names and attributes to known methods.
func normalizeMethod(m string) (string, bool) {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete,
		http.MethodPatch, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m, true
	}
	return "_OTHER", false
}

func protocolVersion(r *http.Request) string {
	switch {
	case r.ProtoMajor == 1 && r.ProtoMinor == 1:
		return "1.1"
	case r.ProtoMajor == 2:
		return "2"
	case r.ProtoMajor == 1 && r.ProtoMinor == 0:
		return "1.0"
	case r.ProtoMajor == 3:
		return "3"
	}
	return strconv.Itoa(r.ProtoMajor) + "." + strconv.Itoa(r.ProtoMinor)
}

// appendHostPort adds server.address and server.port from a host[:port];
// defaultPort is used when hostport has none (empty: no port attribute).
func appendHostPort(attrs []attribute.KeyValue, hostport, defaultPort string) []attribute.KeyValue {
	if hostport == "" {
		return attrs
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = hostport, defaultPort
	}
	attrs = append(attrs, AttrServerAddress.String(host))
	if p, err := strconv.Atoi(port); err == nil {
		attrs = append(attrs, AttrServerPort.Int(p))
	}
	return attrs
}
