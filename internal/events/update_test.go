package events

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
)

// sinkSet builds one fake sink per URL and counts builds and closes.
type sinkSet struct {
	mu     sync.Mutex
	fakes  map[string]*fakeSink
	built  map[string]int
	closed map[string]int
}

func newSinkSet() *sinkSet {
	return &sinkSet{fakes: map[string]*fakeSink{}, built: map[string]int{}, closed: map[string]int{}}
}

func (s *sinkSet) fake(url string) *fakeSink {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.fakes[url]
	if f == nil {
		f = newFake(false)
		s.fakes[url] = f
	}
	return f
}

func (s *sinkSet) build(_ string, _ int, c config.EventSink) (Sink, error) {
	f := s.fake(c.URL)
	s.mu.Lock()
	s.built[c.URL]++
	s.mu.Unlock()
	return &namedSink{fakeSink: f, set: s, url: c.URL}, nil
}

func (s *sinkSet) count(m map[string]int, url string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return m[url]
}

type namedSink struct {
	*fakeSink
	set *sinkSet
	url string
}

func (n *namedSink) Close() error {
	n.set.mu.Lock()
	n.set.closed[n.url]++
	n.set.mu.Unlock()
	return nil
}

func (f *fakeSink) setFailing(v bool) {
	f.mu.Lock()
	f.failing = v
	f.mu.Unlock()
}

func hookBuckets(urls ...string) []config.Bucket {
	b := config.Bucket{Name: "uploads"}
	for _, u := range urls {
		b.Events = append(b.Events, config.EventSink{Type: "webhook", URL: u, Secret: "s", Events: []string{config.EventObjectCreatedAll}})
	}
	return []config.Bucket{b}
}

func openSet(t *testing.T, dir string, set *sinkSet, bs []config.Bucket) *Manager {
	t.Helper()
	ev := config.Events{OutboxDir: dir, MaxPending: 100, OnFull: "refuse", MaxRetryIntervalSeconds: 1}
	m, err := New(ev, bs, Options{Registerer: prometheus.NewRegistry(), Sinks: set.build, MinRetryInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	m.Start()
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// eventually polls cond (a generous bound, not a speed check).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func pendingIs(m *Manager, n int) func() bool {
	return func() bool { p, _ := m.stats(); return p == n }
}

func keys(f *fakeSink) map[string]int {
	got := map[string]int{}
	for _, d := range f.deliveries() {
		var doc Document
		_ = jsonUnmarshal(d.Body, &doc)
		for _, r := range doc.Records {
			got[r.S3.Object.Key]++
		}
	}
	return got
}

// A manager that starts without sinks opens no outbox; the first update
// that adds a sink opens it and delivers.
func TestUpdateAddsTheFirstSink(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "outbox")
	set := newSinkSet()
	m := openSet(t, dir, set, []config.Bucket{{Name: "uploads"}})
	if err := m.Notify(object("before")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("outbox opened without sinks: %v", err)
	}
	if err := m.Update(hookBuckets("http://a")); err != nil {
		t.Fatal(err)
	}
	if err := m.Notify(object("after")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "delivered", pendingIs(m, 0))
	if got := keys(set.fake("http://a")); len(got) != 1 || got["after"] != 1 {
		t.Fatalf("deliveries %v, want exactly one for after", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "outbox.db")); err != nil {
		t.Fatal(err)
	}
}

// An unchanged sink is not rebuilt; a changed one is, and its pending
// events go to the new settings exactly once; the old sink is closed.
func TestUpdateChangedSinkTakesPending(t *testing.T) {
	set := newSinkSet()
	m := openSet(t, t.TempDir(), set, hookBuckets("http://keep", "http://old"))
	set.fake("http://old").setFailing(true)
	for _, k := range []string{"1", "2", "3"} {
		if err := m.Notify(object(k)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "kept sink delivered", func() bool { return len(set.fake("http://keep").deliveries()) == 3 })
	if err := m.Update(hookBuckets("http://keep", "http://new")); err != nil {
		t.Fatal(err)
	}
	if err := m.Notify(object("4")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "all delivered", pendingIs(m, 0))
	got := keys(set.fake("http://new"))
	for _, k := range []string{"1", "2", "3", "4"} {
		if got[k] != 1 {
			t.Errorf("new sink got %v, want each of 1..4 once", got)
			break
		}
	}
	if n := len(set.fake("http://old").deliveries()); n != 0 {
		t.Errorf("old sink acknowledged %d", n)
	}
	if got := keys(set.fake("http://keep")); len(got) != 4 {
		t.Errorf("kept sink got %v", got)
	}
	if set.count(set.built, "http://keep") != 1 {
		t.Errorf("the unchanged sink was rebuilt")
	}
	eventually(t, "old sink closed", func() bool { return set.count(set.closed, "http://old") == 1 })
	if set.count(set.closed, "http://keep") != 0 {
		t.Error("the unchanged sink was closed")
	}
}

// A removed sink gets no new events but delivers those still pending
// once it accepts them again; then it is closed.
func TestUpdateRemovedSinkDrains(t *testing.T) {
	set := newSinkSet()
	m := openSet(t, t.TempDir(), set, hookBuckets("http://gone"))
	gone := set.fake("http://gone")
	gone.setFailing(true)
	if err := m.Notify(object("pending")); err != nil {
		t.Fatal(err)
	}
	if err := m.Update(hookBuckets()); err != nil {
		t.Fatal(err)
	}
	if err := m.Notify(object("after")); err != nil {
		t.Fatal(err)
	}
	if p, _ := m.stats(); p != 1 {
		t.Fatalf("pending %d, want 1 (no event recorded for a removed sink)", p)
	}
	if set.count(set.closed, "http://gone") != 0 {
		t.Fatal("a removed sink with pending events was closed")
	}
	gone.setFailing(false)
	eventually(t, "drained", pendingIs(m, 0))
	if got := keys(gone); len(got) != 1 || got["pending"] != 1 {
		t.Fatalf("removed sink got %v, want only pending, once", got)
	}
	eventually(t, "removed sink closed", func() bool { return set.count(set.closed, "http://gone") == 1 })
	m.mu.Lock()
	n := len(m.workers)
	m.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d workers left", n)
	}
}

// A request of the replaced configuration records with the table it
// started with: its event reaches a sink the reload removed, and that
// sink is closed only once the old table is released.
func TestOldTableStillRecords(t *testing.T) {
	set := newSinkSet()
	m := openSet(t, t.TempDir(), set, hookBuckets("http://a"))
	old := m.Current()
	t2, err := m.Prepare(hookBuckets())
	if err != nil {
		t.Fatal(err)
	}
	m.Commit(t2)
	if err := old.Notify(object("straddler")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "delivered", pendingIs(m, 0))
	if got := keys(set.fake("http://a")); got["straddler"] != 1 {
		t.Fatalf("got %v", got)
	}
	if set.count(set.closed, "http://a") != 0 {
		t.Fatal("sink closed while a live table names it")
	}
	m.Release(old)
	eventually(t, "closed after release", func() bool { return set.count(set.closed, "http://a") == 1 })
}

// A table prepared but never committed (the reload failed later) closes
// the sinks it built and changes nothing.
func TestUncommittedTableChangesNothing(t *testing.T) {
	set := newSinkSet()
	m := openSet(t, t.TempDir(), set, hookBuckets("http://a"))
	t2, err := m.Prepare(hookBuckets("http://b"))
	if err != nil {
		t.Fatal(err)
	}
	m.Release(t2)
	if set.count(set.closed, "http://b") != 1 || set.count(set.closed, "http://a") != 0 {
		t.Fatalf("closed %v", set.closed)
	}
	if err := m.Notify(object("k")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "delivered", pendingIs(m, 0))
	if len(set.fake("http://a").deliveries()) != 1 || len(set.fake("http://b").deliveries()) != 0 {
		t.Fatal("the uncommitted table routed an event")
	}
}

// A sink removed and then added again at the same position takes over
// the events still pending for that position.
func TestReaddedSinkTakesOverPending(t *testing.T) {
	set := newSinkSet()
	m := openSet(t, t.TempDir(), set, hookBuckets("http://a"))
	set.fake("http://a").setFailing(true)
	if err := m.Notify(object("k")); err != nil {
		t.Fatal(err)
	}
	if err := m.Update(hookBuckets()); err != nil {
		t.Fatal(err)
	}
	if err := m.Update(hookBuckets("http://b")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "delivered", pendingIs(m, 0))
	if got := keys(set.fake("http://b")); got["k"] != 1 {
		t.Fatalf("got %v", got)
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// A sink whose settings are equal but whose files changed (a rotated
// NATS credentials file or CA) is rebuilt; one whose files did not is
// kept.
func TestUpdateRebuildsOnChangedFiles(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, []byte("first"), 0o600); err != nil {
		t.Fatal(err)
	}
	bs := hookBuckets("http://a")
	bs[0].Events[0].CAFile = ca
	set := newSinkSet()
	m := openSet(t, t.TempDir(), set, bs)
	if err := m.Update(bs); err != nil {
		t.Fatal(err)
	}
	if n := set.count(set.built, "http://a"); n != 1 {
		t.Fatalf("built %d times, want 1 (unchanged)", n)
	}
	if err := os.WriteFile(ca, []byte("second"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := m.Update(bs); err != nil {
		t.Fatal(err)
	}
	if n := set.count(set.built, "http://a"); n != 2 {
		t.Fatalf("built %d times, want 2 (its CA file changed)", n)
	}
	if n := set.count(set.closed, "http://a"); n != 1 {
		t.Fatalf("closed %d times, want 1 (the replaced sink)", n)
	}
}

// Events a previous run left are delivered once an update adds their sink
// to a manager that started without any (the outbox opens then).
func TestUpdateDeliversWhatAPreviousRunLeft(t *testing.T) {
	dir := t.TempDir()
	set := newSinkSet()
	m := openSet(t, dir, set, hookBuckets("http://a"))
	set.fake("http://a").setFailing(true)
	if err := m.Notify(object("left")); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	set2 := newSinkSet()
	m2 := openSet(t, dir, set2, []config.Bucket{{Name: "uploads"}})
	if m2.box.Load() != nil {
		t.Fatal("outbox opened without sinks")
	}
	if err := m2.Update(hookBuckets("http://a")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "delivered", pendingIs(m2, 0))
	if got := keys(set2.fake("http://a")); len(got) != 1 || got["left"] != 1 {
		t.Fatalf("got %v, want left once", got)
	}
}
