// Package telemetry holds Mizuchi's Prometheus metrics and OpenTelemetry
// tracing setup. Both are created by the app and injected into the
// components; nothing here uses global registries or providers.
//
// Wiring: the app calls NewMetrics with its own registry and serves it with
// NewMetricsServer (or MetricsHandler) on the metrics listener, then
// NewTracing with the tracing config, the Metrics and the logger. The S3
// listener's handler is wrapped by Middleware(h, tracing.MiddlewareOptions());
// once routed, the handler calls SetRoute (and SetObjectKey,
// RecordUploadWait). Components get tracing.Provider() for their own spans
// (auth.jwt, authz.opa, …, with enduser.hash = SubjectHash(tracing.SubjectKey(),
// subject)) and wrap their HTTP transports with WrapTransport and their gRPC
// connections with UnaryClientInterceptor, so every outgoing call carries
// the trace context. tracing.State() goes into /readyz details;
// tracing.Shutdown flushes on exit within a bound.
//
// Export never runs on a request goroutine: ended spans go into a bounded
// queue (full: dropped and counted) drained by one exporter goroutine,
// which retries with backoff and stops calling a collector that keeps
// failing (circuit breaker), see Resilience.
package telemetry
