package events

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
)

// fakeSink records deliveries; while failing it refuses them.
type fakeSink struct {
	mu      sync.Mutex
	failing bool
	got     []Delivery
	arrived chan struct{}
}

func newFake(failing bool) *fakeSink {
	return &fakeSink{failing: failing, arrived: make(chan struct{}, 100)}
}

func (f *fakeSink) Deliver(_ context.Context, d Delivery) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failing {
		return errors.New("sink down")
	}
	f.got = append(f.got, d)
	f.arrived <- struct{}{}
	return nil
}

func (f *fakeSink) Close() error { return nil }

func (f *fakeSink) deliveries() []Delivery {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Delivery(nil), f.got...)
}

func (f *fakeSink) wait(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-f.arrived:
		case <-time.After(20 * time.Second):
			t.Fatalf("only %d deliveries", len(f.deliveries()))
		}
	}
}

func testConfig(dir string) (config.Events, []config.Bucket) {
	ev := config.Events{OutboxDir: dir, MaxPending: 100, OnFull: "refuse", MaxRetryIntervalSeconds: 1}
	bs := []config.Bucket{{Name: "uploads", Events: []config.EventSink{{Type: "webhook", Events: []string{config.EventObjectCreatedAll}}}}}
	return ev, bs
}

func open(t *testing.T, ev config.Events, bs []config.Bucket, sink Sink) *Manager {
	t.Helper()
	m, err := New(ev, bs, Options{
		Registerer:       prometheus.NewRegistry(),
		Sinks:            func(string, int, config.EventSink) (Sink, error) { return sink, nil },
		MinRetryInterval: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func object(key string) *Object {
	return &Object{Bucket: "uploads", Key: key, Size: 3, ETag: `"abc"`, EventName: NamePut, Subject: "alice",
		SourceIP: "192.0.2.1", RequestID: "REQ1", Time: time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC),
		Traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
}

func TestNoSinksNoOutbox(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "outbox")
	m, err := New(config.Events{OutboxDir: dir}, []config.Bucket{{Name: "b"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if !m.Current().Empty() || m.box.Load() != nil {
		t.Fatal("a manager without sinks has routes or an outbox")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("the outbox directory was made without sinks: %v", err)
	}
	if err := m.Notify(object("k")); err != nil {
		t.Fatal(err)
	}
}

func TestDocument(t *testing.T) {
	dir := t.TempDir()
	ev, bs := testConfig(dir)
	sink := newFake(false)
	m := open(t, ev, bs, sink)
	defer m.Close()
	m.Start()
	o := object("a dir/red flower+1.jpg")
	o.ChecksumAlgorithm, o.Checksum = "CRC32", "NSRBwg=="
	if err := m.Notify(o); err != nil {
		t.Fatal(err)
	}
	sink.wait(t, 1)
	d := sink.deliveries()[0]
	var doc Document
	if err := json.Unmarshal(d.Body, &doc); err != nil {
		t.Fatal(err)
	}
	r := doc.Records[0]
	want := map[string]string{
		"eventSource": r.EventSource, "eventName": r.EventName, "eventTime": r.EventTime,
		"principalId": r.UserIdentity.PrincipalID, "sourceIPAddress": r.RequestParameters.SourceIPAddress,
		"x-amz-request-id": r.ResponseElements["x-amz-request-id"], "bucket": r.S3.Bucket.Name,
		"key": r.S3.Object.Key, "eTag": r.S3.Object.ETag, "traceparent": r.Traceparent, "checksum": r.S3.Object.Checksum.Value,
	}
	exp := map[string]string{
		"eventSource": "mizuchi:s3", "eventName": "ObjectCreated:Put", "eventTime": "2026-01-02T03:04:05.006Z",
		"principalId": "alice", "sourceIPAddress": "192.0.2.1", "x-amz-request-id": "REQ1", "bucket": "uploads",
		"key": "a+dir/red+flower%2B1.jpg", "eTag": "abc", "traceparent": o.Traceparent, "checksum": "NSRBwg==",
	}
	for k, v := range exp {
		if want[k] != v {
			t.Errorf("%s = %q, want %q", k, want[k], v)
		}
	}
	if r.EventID != d.ID || len(d.ID) != 32 || r.S3.Object.Size != 3 || len(r.S3.Object.Sequencer) != 16 {
		t.Errorf("record %s (delivery id %s)", d.Body, d.ID)
	}
}

func TestSequencerGrows(t *testing.T) {
	at := time.Now()
	a, b := sequencer(at), sequencer(at)
	if !(a < b) {
		t.Errorf("sequencer %s then %s", a, b)
	}
}

func TestHashSubjects(t *testing.T) {
	ev, bs := testConfig(t.TempDir())
	ev.HashSubjects = true
	sink := newFake(false)
	m, err := New(ev, bs, Options{
		HashSubject: func(s string) string { return "hash-of-" + s },
		Sinks:       func(string, int, config.EventSink) (Sink, error) { return sink, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	m.Start()
	if err := m.Notify(object("k")); err != nil {
		t.Fatal(err)
	}
	sink.wait(t, 1)
	var doc Document
	_ = json.Unmarshal(sink.deliveries()[0].Body, &doc)
	if p := doc.Records[0].UserIdentity.PrincipalID; p != "hash-of-alice" {
		t.Errorf("principalId %q", p)
	}
}

func TestRouteFilters(t *testing.T) {
	r := &route{names: []string{config.EventObjectCreatedMultipart}, prefix: "in/", suffix: ".jpg"}
	for _, tt := range []struct {
		name, key string
		want      bool
	}{
		{NameComplete, "in/a.jpg", true},
		{NamePut, "in/a.jpg", false},
		{NameComplete, "out/a.jpg", false},
		{NameComplete, "in/a.png", false},
	} {
		if got := r.matches(tt.name, tt.key); got != tt.want {
			t.Errorf("matches(%s, %s) = %v", tt.name, tt.key, got)
		}
	}
	all := &route{names: []string{config.EventObjectCreatedAll}}
	if !all.matches(NamePut, "x") || !all.matches(NameComplete, "x") {
		t.Error("s3:ObjectCreated:* must match every creation")
	}
}

// A sink that is down delays events; after a restart the pending ones are
// delivered, oldest first, and the outbox ends empty.
func TestPendingSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	ev, bs := testConfig(dir)
	down := newFake(true)
	m := open(t, ev, bs, down)
	m.Start()
	for _, k := range []string{"1", "2", "3"} {
		if err := m.Notify(object(k)); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := m.stats(); n != 3 {
		t.Errorf("pending %d, want 3", n)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	up := newFake(false)
	m2 := open(t, ev, bs, up)
	if n, _ := m2.stats(); n != 3 {
		t.Errorf("pending after reopen %d, want 3", n)
	}
	m2.Start()
	up.wait(t, 3)
	var keys []string
	for _, d := range up.deliveries() {
		var doc Document
		_ = json.Unmarshal(d.Body, &doc)
		keys = append(keys, doc.Records[0].S3.Object.Key)
	}
	if len(keys) != 3 || keys[0] != "1" || keys[1] != "2" || keys[2] != "3" {
		t.Errorf("delivered %v, want 1 2 3", keys)
	}
	waitPending(t, m2, 0)
	if err := m2.Close(); err != nil {
		t.Fatal(err)
	}
	m3 := open(t, ev, bs, newFake(true))
	defer m3.Close()
	if n, _ := m3.stats(); n != 0 {
		t.Errorf("outbox holds %d delivered events", n)
	}
}

func waitPending(t *testing.T, m *Manager, want int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		n, _ := m.stats()
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pending %d, want %d", n, want)
		}
	}
}

func TestRefuseWhenFull(t *testing.T) {
	ev, bs := testConfig(t.TempDir())
	ev.MaxPending = 2
	m := open(t, ev, bs, newFake(true))
	defer m.Close()
	for _, k := range []string{"1", "2"} {
		if err := m.Admit("uploads"); err != nil {
			t.Fatal(err)
		}
		if err := m.Notify(object(k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Admit("uploads"); !errors.Is(err, ErrFull) {
		t.Errorf("Admit = %v, want ErrFull", err)
	}
	if err := m.Admit("other"); err != nil {
		t.Errorf("a bucket without sinks is refused: %v", err)
	}
	_, age := m.stats()
	if age <= 0 {
		t.Errorf("oldest pending age %v", age)
	}
}

func TestDropOldestWhenFull(t *testing.T) {
	dir := t.TempDir()
	ev, bs := testConfig(dir)
	ev.MaxPending, ev.OnFull = 2, "drop_oldest"
	m := open(t, ev, bs, newFake(true))
	for _, k := range []string{"1", "2", "3"} {
		if err := m.Admit("uploads"); err != nil {
			t.Fatal(err)
		}
		if err := m.Notify(object(k)); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := m.stats(); n != 2 {
		t.Errorf("pending %d, want 2", n)
	}
	if v := testutil.ToFloat64(m.metrics.events.WithLabelValues("uploads", "webhook.0", "failed")); v != 1 {
		t.Errorf("failed = %v, want 1", v)
	}
	_ = m.Close()
	up := newFake(false)
	m2 := open(t, ev, bs, up)
	defer m2.Close()
	m2.Start()
	up.wait(t, 2)
	for _, d := range up.deliveries() {
		var doc Document
		_ = json.Unmarshal(d.Body, &doc)
		if doc.Records[0].S3.Object.Key == "1" {
			t.Error("the oldest event was not the one dropped")
		}
	}
}

func TestNotifyFailsWhenOutboxFails(t *testing.T) {
	ev, bs := testConfig(t.TempDir())
	m := open(t, ev, bs, newFake(false))
	_ = m.box.Load().close()
	if err := m.Notify(object("k")); err == nil {
		t.Fatal("Notify succeeded without an outbox")
	}
	m.cancel()
}

func TestOutboxLockedByAnotherProcess(t *testing.T) {
	ev, bs := testConfig(t.TempDir())
	m := open(t, ev, bs, newFake(false))
	defer m.Close()
	if _, err := New(ev, bs, Options{Sinks: func(string, int, config.EventSink) (Sink, error) { return newFake(false), nil }}); err == nil {
		t.Fatal("a second manager opened the same outbox")
	}
}

// The default cap keeps a recovered sink waiting at most 20 s plus one
// timeout (5 s): within 30 s.
func TestBackoffIsCapped(t *testing.T) {
	hi := config.DefaultEventsMaxRetryInterval * time.Second
	for n := 1; n < 200; n++ {
		d := backoff(250*time.Millisecond, hi, n)
		if d > hi || d < 0 {
			t.Fatalf("backoff(%d) = %v", n, d)
		}
	}
	if hi+config.DefaultWebhookTimeout*time.Second > 30*time.Second {
		t.Fatal("default cap plus timeout exceeds 30 s")
	}
	if d := backoff(250*time.Millisecond, hi, 1); d > 250*time.Millisecond {
		t.Errorf("first retry after %v", d)
	}
}

func TestWebhookSignsAndNeeds2xx(t *testing.T) {
	status := http.StatusNoContent
	var mu sync.Mutex
	var gotSig, gotID string
	var gotBody []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		gotBody, _ = io.ReadAll(r.Body)
		gotSig, gotID = r.Header.Get("X-Mizuchi-Signature"), r.Header.Get("X-Mizuchi-Event-Id")
		w.WriteHeader(status)
	}))
	defer srv.Close()
	w := newWebhook(config.EventSink{URL: srv.URL, Secret: "k", TimeoutSeconds: 5, Headers: map[string]string{"X-App": "1"}})
	defer w.Close()
	body := []byte(`{"Records":[]}`)
	if err := w.Deliver(context.Background(), Delivery{ID: "id1", Body: body}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	// sha256=HMAC-SHA256("k", body), computed independently.
	if gotSig != "sha256=8931d3768d7ac5b27f12121691912261599552da1a4eb88d0b013369079fa7c9" {
		t.Errorf("signature %q", gotSig)
	}
	if string(gotBody) != string(body) || gotID != "id1" {
		t.Errorf("body %q id %q", gotBody, gotID)
	}
	status = http.StatusInternalServerError
	mu.Unlock()
	if err := w.Deliver(context.Background(), Delivery{ID: "id2", Body: body}); err == nil {
		t.Error("a 500 counted as delivered")
	}
	mu.Lock()
	status = http.StatusFound
	mu.Unlock()
	if err := w.Deliver(context.Background(), Delivery{ID: "id3", Body: body}); err == nil {
		t.Error("a redirect counted as delivered")
	}
}

func TestMetricsLint(t *testing.T) {
	reg := prometheus.NewRegistry()
	ev, bs := testConfig(t.TempDir())
	m, err := New(ev, bs, Options{Registerer: reg, Sinks: func(string, int, config.EventSink) (Sink, error) { return newFake(false), nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
	if n, err := testutil.GatherAndCount(reg, "mizuchi_events_total", "mizuchi_events_pending", "mizuchi_events_oldest_pending_seconds"); err != nil || n != 6 {
		t.Errorf("gathered %d series (%v), want 4 + 2", n, err)
	}
}
