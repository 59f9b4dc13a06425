package app

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mizuchi-uploadr/mizuchi/internal/backend"
	"github.com/mizuchi-uploadr/mizuchi/internal/config"
	"github.com/mizuchi-uploadr/mizuchi/internal/telemetry"
)

// scriptedCleaner answers Cleanup from a list of results.
type scriptedCleaner struct {
	mu      sync.Mutex
	results []backend.CleanupResult
	errs    []error
	ages    []time.Duration
}

func (c *scriptedCleaner) Cleanup(_ context.Context, olderThan time.Duration) (backend.CleanupResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := len(c.ages)
	c.ages = append(c.ages, olderThan)
	if i >= len(c.results) {
		return backend.CleanupResult{}, nil
	}
	return c.results[i], c.errs[i]
}

func testApp(t *testing.T) (*App, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	m := telemetry.NewMetrics(prometheus.NewRegistry(), telemetry.BuildInfo{})
	tr, err := telemetry.NewTracing(t.Context(), config.Tracing{}, telemetry.TracingOptions{Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	return &App{log: slog.New(slog.NewJSONHandler(&logs, nil)), metrics: m, tracing: tr}, &logs
}

func TestCleanupRunCountsAndLogs(t *testing.T) {
	a, logs := testApp(t)
	c := &scriptedCleaner{
		results: []backend.CleanupResult{{Aborted: 2, Kept: 1}, {Aborted: 1}},
		errs:    []error{nil, errors.New("store down")},
	}
	b := &config.Bucket{Name: "b", Cleanup: &config.Cleanup{AbortIncompleteAfterSeconds: 5, IntervalSeconds: 1}}
	g := &generation{App: a}
	g.addCleanup(b, c)
	g.addCleanup(&config.Bucket{Name: "off", Cleanup: &config.Cleanup{AbortIncompleteAfterSeconds: 0, IntervalSeconds: 1}}, c)
	g.addCleanup(&config.Bucket{Name: "none"}, c)
	if len(g.cleanups) != 1 {
		t.Fatalf("%d cleanups registered, want only the bucket whose cleanup is on", len(g.cleanups))
	}
	a.cleanupOnce(t.Context(), g.cleanups[0])
	a.cleanupOnce(t.Context(), g.cleanups[0])
	if c.ages[0] != 5*time.Second {
		t.Errorf("age %v, want 5s", c.ages[0])
	}
	if n := testutil.ToFloat64(a.metrics.MultipartCleanupAborted.WithLabelValues("b")); n != 3 {
		t.Errorf("aborted = %v, want 3 (a failed run counts what it did abort)", n)
	}
	if ok, failed := testutil.ToFloat64(a.metrics.MultipartCleanupRuns.WithLabelValues("b", "ok")),
		testutil.ToFloat64(a.metrics.MultipartCleanupRuns.WithLabelValues("b", "failed")); ok != 1 || failed != 1 {
		t.Errorf("runs ok=%v failed=%v, want 1 and 1", ok, failed)
	}
	out := logs.String()
	for _, want := range []string{`"msg":"multipart cleanup","bucket":"b","aborted":2,"kept":1`, `"msg":"multipart cleanup failed","bucket":"b","aborted":1`, `"error":"store down"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
}

func TestCleanupLoopRunsAtStartAndEndsWithTheContext(t *testing.T) {
	a, _ := testApp(t)
	c := &scriptedCleaner{}
	task := &cleanupTask{bucket: "b", cleaner: c, age: time.Second, interval: time.Hour}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { a.cleanupLoop(ctx, task); close(done) }()
	for {
		c.mu.Lock()
		n := len(c.ages)
		c.mu.Unlock()
		if n > 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
}
