package app

import (
	"context"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/mizuchi-uploadr/mizuchi/internal/events"
	"github.com/mizuchi-uploadr/mizuchi/internal/s3api"
	"github.com/mizuchi-uploadr/mizuchi/internal/telemetry"
)

// buildEvents opens the events outbox and starts delivering when a bucket
// has sinks; the handler then records an event for every object stored.
func (a *App) buildEvents() error {
	key := a.tracing.SubjectKey()
	m, err := events.New(a.cfg.Events, a.cfg.Buckets, events.Options{
		Logger:      a.log,
		Registerer:  a.registry,
		Tracer:      a.tracing.Provider(),
		HashSubject: func(s string) string { return telemetry.SubjectHash(key, s) },
	})
	if err != nil || m == nil {
		return err
	}
	m.Start()
	a.closers = append(a.closers, m.Close)
	a.notifier = notifier{m}
	return nil
}

// notifier adapts the events manager to the handler's Notifier.
type notifier struct{ m *events.Manager }

func (n notifier) Admit(bucket string) error { return n.m.Admit(bucket) }

func (n notifier) Notify(ctx context.Context, e *s3api.ObjectEvent) error {
	o := &events.Object{
		Bucket: e.Bucket, Region: e.Region, Key: e.Key, Size: e.Size, ETag: e.ETag, VersionID: e.VersionID,
		ChecksumAlgorithm: e.Checksum.Algorithm, Checksum: e.Checksum.Value,
		EventName: e.EventName, Subject: e.Subject, SourceIP: e.SourceIP, RequestID: e.RequestID,
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		c := propagation.MapCarrier{}
		propagation.TraceContext{}.Inject(ctx, c)
		o.Traceparent = c["traceparent"]
	}
	return n.m.Notify(o)
}
