package s3api

import (
	"context"
	"errors"
	"net/http"

	"github.com/mizuchi-uploadr/mizuchi/internal/backend"
	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

// Event names of stored objects, as S3 writes them inside Records.
const (
	EventPut      = "ObjectCreated:Put"
	EventComplete = "ObjectCreated:CompleteMultipartUpload"
)

// ObjectEvent describes an object the handler has just stored.
type ObjectEvent struct {
	Bucket    string
	Region    string
	Key       string
	EventName string
	// Size is the object's length; -1 when the store did not tell.
	Size      int64
	ETag      string
	VersionID string
	Checksum  backend.Checksum
	Subject   string
	SourceIP  string
	RequestID string
}

// Notifier records upload events (internal/events behind an adapter).
type Notifier interface {
	// Admit is asked before a new upload reads its body (PutObject,
	// CreateMultipartUpload, CompleteMultipartUpload): an error refuses
	// it with 503 SlowDown, nothing stored.
	Admit(bucket string) error
	// Notify is called after the backend committed the object and before
	// the client is answered; it returns once the event is durable. An
	// error fails the request (500) so that the client retries: the
	// object is then stored again and its event recorded.
	Notify(ctx context.Context, e *ObjectEvent) error
}

// admitEvent refuses a new upload while the bucket's event outbox is full.
func (h *Handler) admitEvent(w http.ResponseWriter, s *Scope) error {
	if h.notifier == nil {
		return nil
	}
	switch s.Request.Op {
	case OpPutObject, OpCreateMultipartUpload, OpCompleteMultipartUpload:
	default:
		return nil
	}
	if err := h.notifier.Admit(s.Bucket.Name); err != nil {
		w.Header().Set("Retry-After", "5")
		return s3err.ErrSlowDown.WithMessage("Upload events are not being delivered fast enough; retry later.").WithCause(err)
	}
	return nil
}

// notify records the event of an object just stored.
func (h *Handler) notify(r *http.Request, s *Scope, name string, size int64, etag, version string, sum backend.Checksum) error {
	if h.notifier == nil {
		return nil
	}
	e := &ObjectEvent{
		Bucket: s.Bucket.Name, Region: s.Bucket.Region, Key: s.Key, EventName: name,
		Size: size, ETag: etag, VersionID: version, Checksum: sum,
		SourceIP: s.ClientIP, RequestID: s.RequestID,
	}
	if s.Principal != nil {
		e.Subject = s.Principal.Subject
	}
	if err := h.notifier.Notify(r.Context(), e); err != nil {
		var se *s3err.Error
		if errors.As(err, &se) {
			return err
		}
		return s3err.ErrInternalError.WithMessage("The object was stored but its upload event could not be recorded; retry the request.").WithCause(err)
	}
	return nil
}
