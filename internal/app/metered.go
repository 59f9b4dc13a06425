package app

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/mizuchi-uploadr/mizuchi/internal/backend"
	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
	"github.com/mizuchi-uploadr/mizuchi/internal/telemetry"
)

// metered counts the calls of a backend that does not instrument itself
// (the filesystem) in mizuchi_backend_requests_total and
// mizuchi_backend_request_duration_seconds, labelled with the operation
// and the HTTP status the outcome maps to.
type metered struct {
	backend.Backend
	bucket  string
	metrics *telemetry.Metrics
}

func (m *metered) observe(op string, start time.Time, err error) {
	status := "200"
	if err != nil {
		status = strconv.Itoa(s3err.As(err).Status)
		if errors.Is(err, context.Canceled) {
			status = "canceled"
		}
	}
	m.metrics.BackendRequests.WithLabelValues(m.bucket, op, status).Inc()
	m.metrics.BackendRequestDuration.WithLabelValues(m.bucket, op, status).Observe(time.Since(start).Seconds())
}

func (m *metered) PutObject(ctx context.Context, in *backend.PutObjectInput) (*backend.PutObjectOutput, error) {
	start := time.Now()
	out, err := m.Backend.PutObject(ctx, in)
	m.observe("PutObject", start, err)
	return out, err
}

func (m *metered) CreateMultipartUpload(ctx context.Context, in *backend.CreateMultipartUploadInput) (*backend.CreateMultipartUploadOutput, error) {
	start := time.Now()
	out, err := m.Backend.CreateMultipartUpload(ctx, in)
	m.observe("CreateMultipartUpload", start, err)
	return out, err
}

func (m *metered) UploadPart(ctx context.Context, in *backend.UploadPartInput) (*backend.UploadPartOutput, error) {
	start := time.Now()
	out, err := m.Backend.UploadPart(ctx, in)
	m.observe("UploadPart", start, err)
	return out, err
}

func (m *metered) CompleteMultipartUpload(ctx context.Context, in *backend.CompleteMultipartUploadInput) (*backend.CompleteMultipartUploadOutput, error) {
	start := time.Now()
	out, err := m.Backend.CompleteMultipartUpload(ctx, in)
	m.observe("CompleteMultipartUpload", start, err)
	return out, err
}

func (m *metered) AbortMultipartUpload(ctx context.Context, in *backend.AbortMultipartUploadInput) error {
	start := time.Now()
	err := m.Backend.AbortMultipartUpload(ctx, in)
	m.observe("AbortMultipartUpload", start, err)
	return err
}

func (m *metered) ListParts(ctx context.Context, in *backend.ListPartsInput) (*backend.ListPartsOutput, error) {
	start := time.Now()
	out, err := m.Backend.ListParts(ctx, in)
	m.observe("ListParts", start, err)
	return out, err
}

// Check forwards readiness checks.
func (m *metered) Check(ctx context.Context) error {
	if c, ok := m.Backend.(backend.Checker); ok {
		return c.Check(ctx)
	}
	return nil
}

// Close forwards to a backend holding resources.
func (m *metered) Close() error {
	if c, ok := m.Backend.(backend.Closer); ok {
		return c.Close()
	}
	return nil
}

var (
	_ backend.Backend = (*metered)(nil)
	_ backend.Checker = (*metered)(nil)
	_ backend.Closer  = (*metered)(nil)
)
