// Package telemetry holds Mizuchi's Prometheus metrics and OpenTelemetry
// tracing setup. Both are created by the app and injected into the
// components; nothing here uses global registries or providers.
package telemetry
