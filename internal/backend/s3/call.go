package s3

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

// Copy modes of mizuchi_zero_copy_bytes_total.
const (
	modeSendfile = "sendfile"
	modeBuffered = "buffered"
)

// call runs one store request: a span for the S3 operation (internal: the
// HTTP client span of each attempt sits below it), the backend metrics,
// and the translation of its error.
func (s *Store) call(ctx context.Context, op string, fn func(context.Context) error) error {
	sctx, span := s.tracer.Start(ctx, "S3."+op, trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(
			attribute.String("rpc.system", "aws-api"),
			attribute.String("rpc.service", "S3"),
			attribute.String("rpc.method", op),
			attribute.String("mizuchi.bucket", s.opts.BucketName),
		))
	start := time.Now()
	raw := fn(sctx)
	err := s.errs.mapErr(ctx, raw)
	status := statusLabel(op, raw, err)
	if m := s.opts.Metrics; m != nil {
		m.BackendRequests.WithLabelValues(s.opts.BucketName, op, status).Inc()
		m.BackendRequestDuration.WithLabelValues(s.opts.BucketName, op, status).Observe(time.Since(start).Seconds())
	}
	span.SetAttributes(attribute.String("mizuchi.backend.status", status))
	if err != nil {
		var se *s3err.Error
		if errors.As(err, &se) {
			span.SetAttributes(attribute.String("aws.s3.error_code", se.Code))
		}
		span.SetStatus(codes.Error, status)
		s.opts.Logger.Debug("backend request failed", "bucket", s.opts.BucketName, "operation", op, "status", status, "error", raw)
	}
	span.End()
	return err
}

// statusLabel is the store's HTTP status, or what kept us from one.
func statusLabel(op string, raw, mapped error) string {
	if raw == nil {
		if op == "AbortMultipartUpload" {
			return "204"
		}
		return "200"
	}
	var re *awshttp.ResponseError
	if errors.As(raw, &re) && re.HTTPStatusCode() != 0 {
		return strconv.Itoa(re.HTTPStatusCode())
	}
	var ce *canceledError
	if errors.As(mapped, &ce) {
		return "canceled"
	}
	var be *clientBodyError
	if errors.As(raw, &be) {
		return "client_error"
	}
	return "network_error"
}

// retry runs a replayable call until it succeeds, fails for good, runs
// out of attempts or ctx ends; waits grow exponentially with full jitter.
func (s *Store) retry(ctx context.Context, op string, fn func(context.Context) error) error {
	for attempt := 1; ; attempt++ {
		err := s.call(ctx, op, fn)
		if err == nil || !retryable(err) || attempt >= s.opts.MaxAttempts || ctx.Err() != nil {
			return err
		}
		wait := s.backoff(attempt)
		s.opts.Logger.Warn("retrying backend request", "bucket", s.opts.BucketName, "operation", op,
			"attempt", attempt, "wait", wait, "error", err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
	}
}

func (s *Store) backoff(attempt int) time.Duration {
	d := s.opts.RetryBase << (attempt - 1)
	if d > s.opts.RetryMax || d <= 0 {
		d = s.opts.RetryMax
	}
	return time.Duration(rand.Int64N(int64(d)) + 1)
}

func (s *Store) countBytes(mode string, n int64) {
	if m := s.opts.Metrics; m != nil && n > 0 {
		m.ZeroCopyBytes.WithLabelValues(mode).Add(float64(n))
	}
}
