package app

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/mizuchi-uploadr/mizuchi/internal/events"
	"github.com/mizuchi-uploadr/mizuchi/internal/s3api"
	"github.com/mizuchi-uploadr/mizuchi/internal/telemetry"
)

// buildEvents makes the process's events manager. It owns the outbox,
// which is opened with the first bucket sink (at start or by a reload)
// and kept until the process exits; each generation records with its
// own routing table (eventsTable).
func (a *App) buildEvents() error {
	key := a.tracing.SubjectKey()
	m, err := events.New(a.cfg.Events, nil, events.Options{
		Logger:      a.log,
		Registerer:  a.registry,
		Tracer:      a.tracing.Provider(),
		HashSubject: func(s string) string { return telemetry.SubjectHash(key, s) },
	})
	if err != nil {
		return err
	}
	m.Start()
	a.closers = append(a.closers, m.Close)
	a.events = m
	return nil
}

// eventsTable prepares the sinks of the generation's buckets: those that
// are new or changed are built now, and start delivering when the
// generation becomes current (commitEvents). The generation records
// events with this table until its last request returned, so an upload
// that started before a reload is announced to the sinks of the
// configuration it started with.
func (g *generation) eventsTable() error {
	t, err := g.App.events.Prepare(g.cfg.Buckets)
	if err != nil {
		return fmt.Errorf("events: %w", err)
	}
	g.events = t
	g.closers = append(g.closers, func() error {
		g.App.events.Release(t)
		return nil
	})
	if !t.Empty() {
		g.notifier = notifier{t}
	}
	return nil
}

// notifier adapts a generation's events table to the handler's Notifier.
type notifier struct{ t *events.Table }

func (n notifier) Admit(bucket string) error { return n.t.Admit(bucket) }

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
	return n.t.Notify(o)
}
