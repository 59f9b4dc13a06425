package events

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"reflect"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
)

// A Table is the routing of one configuration: every bucket's sinks with
// their filters. A configuration reload prepares the table of the new
// configuration beside the running one (Prepare: builds the sinks that
// are new or changed, can fail), then makes it current (Commit); the
// requests of the replaced configuration keep recording events with
// their own table until they return (Release).
//
// A sink is identified by its position, "<bucket>/<index>" (as in the
// outbox and in the label "<type>.<index>"). Across a reload:
//   - an unchanged sink keeps running untouched;
//   - a changed sink (url, secret, subject, headers, credentials…, or
//     the content of a file it names) is rebuilt, and every delivery attempt from then on, of new events and
//     of events still pending, uses the new settings; the old sink is
//     closed once the delivery in flight with it ended;
//   - a removed sink gets no new events but keeps delivering, with its
//     last settings, the events still pending for it (at least once);
//     it is closed when they are delivered and no request of an older
//     configuration can record for it any more.
type Table struct {
	m      *Manager
	routes map[string][]*route
	// built are the sinks Prepare made (new or changed); the table owns
	// them until it is committed.
	built     []Sink
	committed bool
	released  bool
}

// Prepare builds the table of buckets: it reuses the running sinks whose
// settings did not change and builds the others. The outbox is opened
// here when the first sink appears. Prepare and Commit calls must not
// run concurrently with each other.
func (m *Manager) Prepare(buckets []config.Bucket) (*Table, error) {
	m.mu.Lock()
	var cur map[string][]*route
	if m.current != nil {
		cur = m.current.routes
	}
	m.mu.Unlock()
	running := map[string]*route{}
	for _, rs := range cur {
		for _, r := range rs {
			running[r.id] = r
		}
	}
	t := &Table{m: m, routes: map[string][]*route{}}
	for _, b := range buckets {
		for i, c := range b.Events {
			r := &route{
				id: fmt.Sprintf("%s/%d", b.Name, i), bucket: b.Name, label: fmt.Sprintf("%s.%d", c.Type, i),
				typ: c.Type, cfg: c, files: filesDigest(c), names: c.Events, prefix: c.KeyPrefix, suffix: c.KeySuffix,
			}
			if old := running[r.id]; old != nil && reflect.DeepEqual(old.cfg, c) && old.files == r.files {
				r.sink = old.sink
			} else {
				s, err := m.build(b.Name, i, c)
				if err != nil {
					closeSinks(t.built)
					return nil, fmt.Errorf("bucket %q: events[%d]: %w", b.Name, i, err)
				}
				r.sink = s
				t.built = append(t.built, s)
			}
			t.routes[b.Name] = append(t.routes[b.Name], r)
		}
	}
	if len(t.routes) > 0 {
		if err := m.openBox(); err != nil {
			closeSinks(t.built)
			return nil, err
		}
	}
	return t, nil
}

// Commit makes t current: new sinks start, changed ones take their new
// settings, removed ones drain (see Table). The table replaced stays
// live until Released.
func (m *Manager) Commit(t *Table) {
	var stop []Sink
	var poke []*worker
	m.mu.Lock()
	t.committed = true
	t.built = nil
	m.live[t] = true
	m.current = t
	ids := map[string]bool{}
	for _, rs := range t.routes {
		for _, r := range rs {
			ids[r.id] = true
			for _, res := range []string{"queued", "delivered", "retried", "failed"} {
				m.metrics.events.WithLabelValues(r.bucket, r.label, res)
			}
			w := m.workers[r.id]
			if w == nil {
				w = m.newWorkerLocked(r)
			} else if w.r.sink != r.sink {
				if w.busy != nil {
					w.stale = append(w.stale, w.r.sink)
				} else {
					stop = append(stop, w.r.sink)
				}
				poke = append(poke, w)
			}
			w.r = r
		}
	}
	for id, w := range m.workers {
		if w.active && !ids[id] && len(w.queue)+btoi(w.busy != nil) > 0 {
			m.log.Info("events: a removed sink delivers its pending events before it stops",
				slog.String("bucket", w.r.bucket), slog.String("sink", w.r.label), slog.Int("events", len(w.queue)+btoi(w.busy != nil)))
		}
		w.active = ids[id]
	}
	var orphans []uint64
	if len(t.routes) > 0 {
		// What a previous run left waits for a configuration with sinks
		// (the outbox may have been opened by a reload that failed).
		orphans = m.queueLeftoversLocked()
	}
	stop = append(stop, m.reapLocked()...)
	for _, w := range m.workers {
		if len(w.queue) > 0 {
			poke = append(poke, w)
		}
	}
	m.mu.Unlock()
	closeSinks(stop)
	for _, seq := range orphans {
		if err := m.box.Load().remove(seq); err != nil {
			m.log.Error("events outbox: removing an event of a sink no longer configured", slog.Any("error", err))
		}
	}
	for _, w := range poke {
		w.poke()
	}
}

// Release ends the use of t: a table never committed closes the sinks it
// built; a committed one no longer keeps the workers of its removed
// sinks alive.
func (m *Manager) Release(t *Table) {
	if t == nil {
		return
	}
	m.mu.Lock()
	if t.released {
		m.mu.Unlock()
		return
	}
	t.released = true
	stop := t.built
	t.built = nil
	if t.committed {
		delete(m.live, t)
		stop = append(stop, m.reapLocked()...)
	}
	m.mu.Unlock()
	closeSinks(stop)
}

// reapLocked stops the workers of sinks that no live table names and
// that have nothing left to deliver; it returns their sinks to close.
func (m *Manager) reapLocked() []Sink {
	var stop []Sink
	for id, w := range m.workers {
		if w.active || len(w.queue) > 0 || w.busy != nil || m.namedLocked(id) {
			continue
		}
		delete(m.workers, id)
		close(w.stop)
		stop = append(stop, w.r.sink)
		stop = append(stop, w.stale...)
		w.stale = nil
	}
	return stop
}

// namedLocked reports whether a live table has the sink id.
func (m *Manager) namedLocked(id string) bool {
	for t := range m.live {
		for _, r := range t.routes[bucketOf(id)] {
			if r.id == id {
				return true
			}
		}
	}
	return false
}

// Empty reports whether no bucket of the table has sinks.
func (t *Table) Empty() bool { return t == nil || len(t.routes) == 0 }

// Has reports whether the bucket has sinks in this table.
func (t *Table) Has(bucket string) bool { return t != nil && len(t.routes[bucket]) > 0 }

// Admit refuses a new upload with ErrFull when the outbox is full and
// on_full is refuse. It is asked before the body is read.
func (t *Table) Admit(bucket string) error {
	if !t.Has(bucket) {
		return nil
	}
	return t.m.admit(bucket)
}

// Notify records the event of a stored object for every sink of its
// bucket in this table that wants it; it returns once the record is
// durable. An error means the event is not recorded. The table must be
// committed and not released.
func (t *Table) Notify(o *Object) error {
	if t == nil {
		return nil
	}
	var rs []*route
	for _, r := range t.routes[o.Bucket] {
		if r.matches(o.EventName, o.Key) {
			rs = append(rs, r)
		}
	}
	if len(rs) == 0 {
		return nil
	}
	return t.m.notify(rs, o)
}

// filesDigest sums the files a sink reads when it is built (NATS
// credentials, CA, client certificate and key), so that a reload after
// one of them was replaced rebuilds the sink.
func filesDigest(c config.EventSink) string {
	h := sha256.New()
	for _, p := range []string{c.CredentialsFile, c.CAFile, c.CertFile, c.KeyFile} {
		if p == "" {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			b = []byte(err.Error())
		}
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
