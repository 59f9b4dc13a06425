// Package app wires Mizuchi together from a validated configuration:
// backends, authenticators, authorizers, telemetry, the S3 listener and the
// metrics listener. It holds no protocol logic of its own.
package app
