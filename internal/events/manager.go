package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
)

// ErrFull is returned by Admit when the outbox holds max_pending events
// and on_full is refuse.
var ErrFull = errors.New("events outbox full")

// Options are what the manager needs besides the configuration.
type Options struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Tracer     trace.TracerProvider
	// HashSubject turns a subject into its keyed hash (events.hash_subjects).
	HashSubject func(subject string) string
	// Sinks, when set, replaces the sinks built from the configuration
	// (tests): it is called once per configured sink.
	Sinks func(bucket string, index int, c config.EventSink) (Sink, error)
	// MinRetryInterval is the first wait after a failed delivery
	// (default 250 ms).
	MinRetryInterval time.Duration
}

// Manager records events in the outbox and delivers them.
type Manager struct {
	cfg      config.Events
	log      *slog.Logger
	tracer   trace.Tracer
	hash     func(string) string
	minRetry time.Duration
	maxRetry time.Duration
	metrics  *metrics
	box      *outbox
	routes   map[string][]*route
	workers  map[string]*worker

	mu      sync.Mutex
	pending int // queued + in flight, every sink

	// lastFullLog rate-limits the warning about refused uploads.
	lastFullLog atomic.Int64

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New opens the outbox and builds the sinks of every bucket that has
// some; it returns nil when no bucket has events. Pending events of a
// previous run are queued again; Start delivers them.
func New(cfg config.Events, buckets []config.Bucket, o Options) (*Manager, error) {
	used := false
	for _, b := range buckets {
		used = used || len(b.Events) > 0
	}
	if !used {
		return nil, nil
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Tracer == nil {
		o.Tracer = noop.NewTracerProvider()
	}
	if o.MinRetryInterval <= 0 {
		o.MinRetryInterval = 250 * time.Millisecond
	}
	m := &Manager{
		cfg:      cfg,
		log:      o.Logger,
		tracer:   o.Tracer.Tracer("github.com/mizuchi-uploadr/mizuchi/internal/events"),
		hash:     o.HashSubject,
		minRetry: o.MinRetryInterval,
		maxRetry: time.Duration(cfg.MaxRetryIntervalSeconds) * time.Second,
		routes:   map[string][]*route{},
		workers:  map[string]*worker{},
	}
	if m.maxRetry <= 0 {
		m.maxRetry = config.DefaultEventsMaxRetryInterval * time.Second
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	build := o.Sinks
	if build == nil {
		build = newSink
	}
	for _, b := range buckets {
		for i, c := range b.Events {
			s, err := build(b.Name, i, c)
			if err != nil {
				m.closeSinks()
				return nil, fmt.Errorf("bucket %q: events[%d]: %w", b.Name, i, err)
			}
			r := &route{
				id: fmt.Sprintf("%s/%d", b.Name, i), bucket: b.Name, label: fmt.Sprintf("%s.%d", c.Type, i),
				typ: c.Type, sink: s, names: c.Events, prefix: c.KeyPrefix, suffix: c.KeySuffix,
			}
			m.routes[b.Name] = append(m.routes[b.Name], r)
			m.workers[r.id] = &worker{m: m, r: r, wake: make(chan struct{}, 1)}
		}
	}
	box, err := openOutbox(cfg.OutboxDir)
	if err != nil {
		m.closeSinks()
		return nil, err
	}
	m.box = box
	m.metrics = newMetrics(o.Registerer, m)
	if err := m.reload(); err != nil {
		m.closeSinks()
		_ = box.close()
		return nil, err
	}
	return m, nil
}

// reload queues what a previous run left in the outbox. Records of sinks
// that are no longer configured are dropped with a warning.
func (m *Manager) reload() error {
	var orphans []uint64
	err := m.box.scan(func(seq uint64, sink string, created int64) {
		w := m.workers[sink]
		if w == nil {
			orphans = append(orphans, seq)
			return
		}
		w.queue = append(w.queue, item{seq: seq, created: time.Unix(0, created)})
		m.pending++
	})
	if err != nil {
		return fmt.Errorf("events outbox: %w", err)
	}
	for _, seq := range orphans {
		if err := m.box.remove(seq); err != nil {
			return fmt.Errorf("events outbox: %w", err)
		}
	}
	if len(orphans) > 0 {
		m.log.Warn("events outbox: dropped events of sinks no longer configured", slog.Int("events", len(orphans)))
	}
	if m.pending > 0 {
		m.log.Info("events outbox: delivering events left by the previous run", slog.Int("events", m.pending))
	}
	return nil
}

// Start runs one delivery worker per sink until Close.
func (m *Manager) Start() {
	for _, w := range m.workers {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			w.run()
		}()
	}
}

// Close stops the workers (an in-flight delivery is cancelled and stays
// pending), closes the sinks and the outbox.
func (m *Manager) Close() error {
	m.cancel()
	m.wg.Wait()
	m.closeSinks()
	return m.box.close()
}

func (m *Manager) closeSinks() {
	for _, rs := range m.routes {
		for _, r := range rs {
			_ = r.sink.Close()
		}
	}
}

// Has reports whether the bucket has sinks.
func (m *Manager) Has(bucket string) bool { return len(m.routes[bucket]) > 0 }

// Admit refuses a new upload with ErrFull when the outbox is full and
// on_full is refuse. It is asked before the body is read.
func (m *Manager) Admit(bucket string) error {
	if !m.Has(bucket) || m.cfg.OnFull != "refuse" {
		return nil
	}
	m.mu.Lock()
	full := m.pending >= m.cfg.MaxPending
	m.mu.Unlock()
	if full {
		if now := time.Now().UnixNano(); now-m.lastFullLog.Load() > int64(10*time.Second) {
			m.lastFullLog.Store(now)
			m.log.Warn("events outbox full: refusing new uploads until sinks catch up",
				slog.String("bucket", bucket), slog.Int("max_pending", m.cfg.MaxPending))
		}
		return ErrFull
	}
	return nil
}

// Notify records the event of a stored object for every sink of its
// bucket that wants it; it returns once the record is durable. An error
// means the event is not recorded.
func (m *Manager) Notify(o *Object) error {
	var rs []*route
	for _, r := range m.routes[o.Bucket] {
		if r.matches(o.EventName, o.Key) {
			rs = append(rs, r)
		}
	}
	if len(rs) == 0 {
		return nil
	}
	if o.Time.IsZero() {
		o.Time = time.Now()
	}
	id := newEventID()
	principal := o.Subject
	if m.cfg.HashSubjects && m.hash != nil && principal != "" {
		principal = m.hash(principal)
	}
	entries := make([]entry, len(rs))
	for i, r := range rs {
		body, err := marshal(buildRecord(o, id, principal, r.label))
		if err != nil {
			return err
		}
		entries[i] = entry{Sink: r.id, ID: id, Created: o.Time.UnixNano(), Traceparent: o.Traceparent, Body: body}
	}
	if m.cfg.OnFull == "drop_oldest" {
		m.makeRoom(len(rs))
	}
	seqs, err := m.box.put(entries)
	if err != nil {
		for _, r := range rs {
			m.metrics.events.WithLabelValues(r.bucket, r.label, "failed").Inc()
		}
		return fmt.Errorf("events outbox: %w", err)
	}
	m.mu.Lock()
	for i, r := range rs {
		w := m.workers[r.id]
		w.queue = append(w.queue, item{seq: seqs[i], created: o.Time})
		m.pending++
	}
	m.mu.Unlock()
	for _, r := range rs {
		m.metrics.events.WithLabelValues(r.bucket, r.label, "queued").Inc()
		m.workers[r.id].poke()
	}
	return nil
}

// makeRoom drops the oldest queued events until n more fit.
func (m *Manager) makeRoom(n int) {
	for {
		m.mu.Lock()
		if m.pending+n <= m.cfg.MaxPending {
			m.mu.Unlock()
			return
		}
		var oldest *worker
		for _, w := range m.workers {
			if len(w.queue) > 0 && (oldest == nil || w.queue[0].seq < oldest.queue[0].seq) {
				oldest = w
			}
		}
		if oldest == nil {
			// Everything pending is in flight: nothing to drop.
			m.mu.Unlock()
			return
		}
		it := oldest.queue[0]
		oldest.queue = oldest.queue[1:]
		m.pending--
		m.mu.Unlock()
		if err := m.box.remove(it.seq); err != nil {
			m.log.Error("events outbox: removing a dropped event", slog.Any("error", err))
		}
		m.metrics.events.WithLabelValues(oldest.r.bucket, oldest.r.label, "failed").Inc()
		m.log.Warn("events outbox full: dropped the oldest event", slog.String("bucket", oldest.r.bucket),
			slog.String("sink", oldest.r.label), slog.Int("max_pending", m.cfg.MaxPending))
	}
}

// stats returns the pending count and the age of the oldest pending event.
func (m *Manager) stats() (pending int, oldest time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var first time.Time
	for _, w := range m.workers {
		for _, it := range w.queue {
			if first.IsZero() || it.created.Before(first) {
				first = it.created
			}
		}
		if w.busy != nil && (first.IsZero() || w.busy.created.Before(first)) {
			first = w.busy.created
		}
	}
	if !first.IsZero() {
		oldest = time.Since(first)
	}
	return m.pending, oldest
}

// item is a queued delivery.
type item struct {
	seq     uint64
	created time.Time
}

// worker delivers the events of one sink, oldest first.
type worker struct {
	m     *Manager
	r     *route
	wake  chan struct{}
	queue []item // guarded by m.mu
	busy  *item  // guarded by m.mu
}

func (w *worker) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *worker) run() {
	m := w.m
	failures := 0
	for {
		m.mu.Lock()
		var it item
		ok := len(w.queue) > 0
		if ok {
			it = w.queue[0]
			w.queue = w.queue[1:]
			w.busy = &it
		}
		m.mu.Unlock()
		if !ok {
			select {
			case <-m.ctx.Done():
				return
			case <-w.wake:
				continue
			}
		}
		err := w.deliver(it, failures+1)
		m.mu.Lock()
		w.busy = nil
		if err != nil {
			// To the back: one event a sink keeps refusing does not hold
			// up the others.
			w.queue = append(w.queue, it)
		} else {
			m.pending--
		}
		m.mu.Unlock()
		if err == nil {
			failures = 0
			continue
		}
		if m.ctx.Err() != nil {
			return
		}
		failures++
		wait := backoff(m.minRetry, m.maxRetry, failures)
		m.log.Warn("event delivery failed; retrying", slog.String("bucket", w.r.bucket), slog.String("sink", w.r.label),
			slog.Int("attempt", failures), slog.String("retry_in", wait.Round(time.Millisecond).String()), slog.Any("error", err))
		t := time.NewTimer(wait)
		select {
		case <-m.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// deliver sends one event and removes it from the outbox once
// acknowledged.
func (w *worker) deliver(it item, attempt int) error {
	m := w.m
	e, ok, err := m.box.get(it.seq)
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	if !ok {
		return nil // dropped meanwhile
	}
	var opts []trace.SpanStartOption
	if e.Traceparent != "" {
		if sc := parseTraceparent(e.Traceparent); sc.IsValid() {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
		}
	}
	opts = append(opts, trace.WithNewRoot(), trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(
		attribute.String("mizuchi.bucket", w.r.bucket),
		attribute.String("mizuchi.event.sink", w.r.label),
		attribute.String("mizuchi.event.id", e.ID),
		attribute.Int("mizuchi.event.attempt", attempt),
	))
	ctx, span := m.tracer.Start(m.ctx, "events.deliver "+w.r.typ, opts...)
	defer span.End()
	err = w.r.sink.Deliver(ctx, Delivery{ID: e.ID, Bucket: w.r.bucket, Body: e.Body})
	if err != nil {
		span.SetStatus(codes.Error, "delivery failed")
		span.RecordError(err)
		if m.ctx.Err() == nil {
			m.metrics.events.WithLabelValues(w.r.bucket, w.r.label, "retried").Inc()
		}
		return err
	}
	if err := m.box.remove(it.seq); err != nil {
		// Delivered but still recorded: it will be delivered again.
		m.log.Error("events outbox: removing a delivered event", slog.Any("error", err))
	}
	m.metrics.events.WithLabelValues(w.r.bucket, w.r.label, "delivered").Inc()
	return nil
}

// backoff is the wait after the n-th failure in a row: exponential from
// lo, capped at hi, with "equal jitter" (between half and all of it) so
// that sinks recovering together are not hit at once.
func backoff(lo, hi time.Duration, n int) time.Duration {
	d := hi
	if n < 32 {
		d = min(lo<<(n-1), hi)
	}
	return d/2 + rand.N(d/2+1)
}

// parseTraceparent reads a W3C traceparent header value.
func parseTraceparent(v string) trace.SpanContext {
	ctx := propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{"traceparent": v})
	return trace.SpanContextFromContext(ctx)
}
