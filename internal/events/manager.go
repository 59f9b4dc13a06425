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

// Manager records events in the outbox and delivers them. It lives as
// long as the process; the sinks of each configuration are a Table
// (table.go) that Commit makes current.
type Manager struct {
	cfg      config.Events
	log      *slog.Logger
	tracer   trace.Tracer
	hash     func(string) string
	build    func(bucket string, index int, c config.EventSink) (Sink, error)
	minRetry time.Duration
	maxRetry time.Duration
	metrics  *metrics
	// box is opened with the first table that has a sink.
	box atomic.Pointer[outbox]

	mu sync.Mutex
	// current is the table of the newest configuration; live holds
	// every committed table not yet released (older configurations
	// still serving requests).
	current *Table
	live    map[*Table]bool
	// workers deliver by sink id; a sink no live table names any more
	// keeps its worker until its pending events are delivered.
	workers map[string]*worker
	// leftovers are the records a previous run left, read when the
	// outbox was opened, queued by the next Commit.
	leftovers []leftover
	started   bool
	pending   int // queued + in flight, every sink

	// lastFullLog rate-limits the warning about refused uploads.
	lastFullLog atomic.Int64

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// leftover is a record found in the outbox when it was opened.
type leftover struct {
	seq     uint64
	sink    string
	created int64
}

// New makes the manager and commits the sinks of buckets. The outbox is
// opened only once some bucket has sinks (now or after an Update);
// pending events of a previous run are then queued again. Start
// delivers.
func New(cfg config.Events, buckets []config.Bucket, o Options) (*Manager, error) {
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
		build:    o.Sinks,
		minRetry: o.MinRetryInterval,
		maxRetry: time.Duration(cfg.MaxRetryIntervalSeconds) * time.Second,
		live:     map[*Table]bool{},
		workers:  map[string]*worker{},
	}
	if m.build == nil {
		m.build = newSink
	}
	if m.maxRetry <= 0 {
		m.maxRetry = config.DefaultEventsMaxRetryInterval * time.Second
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.metrics = newMetrics(o.Registerer, m)
	t, err := m.Prepare(buckets)
	if err != nil {
		if b := m.box.Load(); b != nil {
			_ = b.close()
		}
		return nil, err
	}
	m.Commit(t)
	return m, nil
}

// Update builds the sinks of buckets and makes them current (Prepare
// then Commit). The table it replaces is released.
func (m *Manager) Update(buckets []config.Bucket) error {
	t, err := m.Prepare(buckets)
	if err != nil {
		return err
	}
	m.mu.Lock()
	old := m.current
	m.mu.Unlock()
	m.Commit(t)
	if old != nil {
		m.Release(old)
	}
	return nil
}

// openBox opens the outbox once and reads what a previous run left.
func (m *Manager) openBox() error {
	if m.box.Load() != nil {
		return nil
	}
	box, err := openOutbox(m.cfg.OutboxDir)
	if err != nil {
		return err
	}
	var left []leftover
	if err := box.scan(func(seq uint64, sink string, created int64) {
		left = append(left, leftover{seq, sink, created})
	}); err != nil {
		_ = box.close()
		return fmt.Errorf("events outbox: %w", err)
	}
	m.mu.Lock()
	m.leftovers = left
	m.mu.Unlock()
	m.box.Store(box)
	return nil
}

// queueLeftoversLocked queues the records of a previous run on their
// sinks' workers; it returns those of sinks no longer configured, which
// the caller removes.
func (m *Manager) queueLeftoversLocked() (orphans []uint64) {
	queued := 0
	for _, l := range m.leftovers {
		w := m.workers[l.sink]
		if w == nil || !w.active {
			orphans = append(orphans, l.seq)
			continue
		}
		w.queue = append(w.queue, item{seq: l.seq, created: time.Unix(0, l.created)})
		m.pending++
		queued++
	}
	m.leftovers = nil
	if len(orphans) > 0 {
		m.log.Warn("events outbox: dropped events of sinks no longer configured", slog.Int("events", len(orphans)))
	}
	if queued > 0 {
		m.log.Info("events outbox: delivering events left by the previous run", slog.Int("events", queued))
	}
	return orphans
}

// Start runs one delivery worker per sink until Close; sinks added later
// start at once.
func (m *Manager) Start() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.started = true
	for _, w := range m.workers {
		m.runLocked(w)
	}
}

// runLocked starts w's goroutine once the manager is started.
func (m *Manager) runLocked(w *worker) {
	if !m.started || w.running {
		return
	}
	w.running = true
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		w.run()
	}()
}

// Close stops the workers (an in-flight delivery is cancelled and stays
// pending), closes the sinks and the outbox. Tables not committed are
// the caller's to release.
func (m *Manager) Close() error {
	m.cancel()
	m.wg.Wait()
	m.mu.Lock()
	var sinks []Sink
	for _, w := range m.workers {
		sinks = append(sinks, w.r.sink)
		sinks = append(sinks, w.stale...)
		w.stale = nil
	}
	m.workers = map[string]*worker{}
	m.mu.Unlock()
	closeSinks(sinks)
	if b := m.box.Load(); b != nil {
		return b.close()
	}
	return nil
}

func closeSinks(sinks []Sink) {
	seen := map[Sink]bool{}
	for _, s := range sinks {
		if s != nil && !seen[s] {
			seen[s] = true
			_ = s.Close()
		}
	}
}

// Current is the table of the newest committed configuration.
func (m *Manager) Current() *Table {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.current
}

// Has reports whether the bucket has sinks in the current table.
func (m *Manager) Has(bucket string) bool { return m.Current().Has(bucket) }

// Admit asks the current table (see Table.Admit).
func (m *Manager) Admit(bucket string) error { return m.Current().Admit(bucket) }

// Notify records with the current table (see Table.Notify).
func (m *Manager) Notify(o *Object) error { return m.Current().Notify(o) }

// admit refuses a new upload with ErrFull when the outbox is full and
// on_full is refuse.
func (m *Manager) admit(bucket string) error {
	if m.cfg.OnFull != "refuse" {
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

// notify records the event of a stored object for the routes rs (the
// sinks of its bucket that want it); it returns once the record is
// durable. An error means the event is not recorded.
func (m *Manager) notify(rs []*route, o *Object) error {
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
	seqs, err := m.box.Load().put(entries)
	if err != nil {
		for _, r := range rs {
			m.metrics.events.WithLabelValues(r.bucket, r.label, "failed").Inc()
		}
		return fmt.Errorf("events outbox: %w", err)
	}
	ws := make([]*worker, len(rs))
	m.mu.Lock()
	for i, r := range rs {
		// The worker of the sink id: it exists while a live table names
		// the id (see reapLocked), and delivers with the newest settings
		// of that sink.
		w := m.workers[r.id]
		if w == nil {
			w = m.newWorkerLocked(r)
		}
		w.queue = append(w.queue, item{seq: seqs[i], created: o.Time})
		m.pending++
		ws[i] = w
	}
	m.mu.Unlock()
	for i, r := range rs {
		m.metrics.events.WithLabelValues(r.bucket, r.label, "queued").Inc()
		ws[i].poke()
	}
	return nil
}

// newWorkerLocked adds (and once started, runs) the worker of r's sink.
func (m *Manager) newWorkerLocked(r *route) *worker {
	w := &worker{m: m, r: r, wake: make(chan struct{}, 1), stop: make(chan struct{})}
	m.workers[r.id] = w
	m.runLocked(w)
	return w
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
		r := oldest.r
		stop := m.reapLocked()
		m.mu.Unlock()
		closeSinks(stop)
		if err := m.box.Load().remove(it.seq); err != nil {
			m.log.Error("events outbox: removing a dropped event", slog.Any("error", err))
		}
		m.metrics.events.WithLabelValues(r.bucket, r.label, "failed").Inc()
		m.log.Warn("events outbox full: dropped the oldest event", slog.String("bucket", r.bucket),
			slog.String("sink", r.label), slog.Int("max_pending", m.cfg.MaxPending))
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

// worker delivers the events of one sink id, oldest first, with the
// newest settings of that sink (r, replaced by Commit).
type worker struct {
	m    *Manager
	wake chan struct{}
	// stop is closed when the worker is reaped.
	stop chan struct{}
	// The rest is guarded by m.mu.
	r     *route
	queue []item
	busy  *item
	// active: the current table names this sink.
	active bool
	// stale are replaced sinks to close once the delivery in flight
	// with one of them ended.
	stale   []Sink
	running bool
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
		r := w.r
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
			case <-w.stop:
				return
			case <-w.wake:
				continue
			}
		}
		err := w.deliver(r, it, failures+1)
		m.mu.Lock()
		w.busy = nil
		if err != nil {
			// To the back: one event a sink keeps refusing does not hold
			// up the others.
			w.queue = append(w.queue, it)
		} else {
			m.pending--
		}
		stale := w.stale
		w.stale = nil
		stale = append(stale, m.reapLocked()...)
		m.mu.Unlock()
		closeSinks(stale)
		if err == nil {
			failures = 0
			continue
		}
		if m.ctx.Err() != nil {
			return
		}
		failures++
		wait := backoff(m.minRetry, m.maxRetry, failures)
		m.log.Warn("event delivery failed; retrying", slog.String("bucket", r.bucket), slog.String("sink", r.label),
			slog.Int("attempt", failures), slog.String("retry_in", wait.Round(time.Millisecond).String()), slog.Any("error", err))
		t := time.NewTimer(wait)
		select {
		case <-m.ctx.Done():
			t.Stop()
			return
		case <-w.wake:
			// A new event or new settings (Commit pokes): try now.
			t.Stop()
		case <-t.C:
		}
	}
}

// deliver sends one event through r's sink and removes it from the
// outbox once acknowledged.
func (w *worker) deliver(r *route, it item, attempt int) error {
	m := w.m
	box := m.box.Load()
	e, ok, err := box.get(it.seq)
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
		attribute.String("mizuchi.bucket", r.bucket),
		attribute.String("mizuchi.event.sink", r.label),
		attribute.String("mizuchi.event.id", e.ID),
		attribute.Int("mizuchi.event.attempt", attempt),
	))
	ctx, span := m.tracer.Start(m.ctx, "events.deliver "+r.typ, opts...)
	defer span.End()
	err = r.sink.Deliver(ctx, Delivery{ID: e.ID, Bucket: r.bucket, Body: e.Body})
	if err != nil {
		span.SetStatus(codes.Error, "delivery failed")
		span.RecordError(err)
		if m.ctx.Err() == nil {
			m.metrics.events.WithLabelValues(r.bucket, r.label, "retried").Inc()
		}
		return err
	}
	if err := box.remove(it.seq); err != nil {
		// Delivered but still recorded: it will be delivered again.
		m.log.Error("events outbox: removing a delivered event", slog.Any("error", err))
	}
	m.metrics.events.WithLabelValues(r.bucket, r.label, "delivered").Inc()
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
