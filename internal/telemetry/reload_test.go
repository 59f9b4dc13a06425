package telemetry

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestReloadMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewReloadMetrics(reg)
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", err, problems)
	}
	if got := testutil.ToFloat64(m.LastSuccess); got != 1 {
		t.Fatalf("last success before any reload = %v, want 1", got)
	}
	m.Observe(false)
	if got := testutil.ToFloat64(m.LastSuccess); got != 0 {
		t.Fatalf("last success after a failure = %v, want 0", got)
	}
	m.Observe(true)
	m.Observe(true)
	if s, f := testutil.ToFloat64(m.Reloads.WithLabelValues(ReloadSuccess)), testutil.ToFloat64(m.Reloads.WithLabelValues(ReloadFailure)); s != 2 || f != 1 {
		t.Fatalf("reloads success=%v failure=%v, want 2 and 1", s, f)
	}
	if got := testutil.ToFloat64(m.LastSuccess); got != 1 {
		t.Fatalf("last success = %v, want 1", got)
	}
}
