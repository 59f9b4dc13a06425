package deploy_test

import (
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
	"github.com/mizuchi-uploadr/mizuchi/internal/telemetry"
	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/testproc"
)

const observability = "../examples/observability"

// pendingMetrics are used by the dashboard and the alert rules but are
// registered by work not merged yet (the second wave: events, limits,
// reload, shared state). Each is accepted ONLY while the code does not
// register it: once it is registered the test fails, so that it is
// removed from this list at the merge.
var pendingMetrics = map[string]bool{}

// prometheusMetrics are series Prometheus makes itself.
var prometheusMetrics = map[string]bool{"up": true}

// registeredMetrics returns the names telemetry.NewMetrics registers:
// every collector of the Metrics struct (described, so labelled metrics
// without a child count too) and what the registry gathers (the Go and
// process collectors). Histograms add their _bucket, _sum and _count.
func registeredMetrics(t *testing.T) map[string]bool {
	t.Helper()
	reg := prometheus.NewRegistry()
	m := telemetry.NewMetrics(reg, telemetry.BuildInfo{Version: "test"})
	names := map[string]bool{}
	fq := regexp.MustCompile(`fqName: "([^"]+)"`)
	v := reflect.ValueOf(m).Elem()
	for i := range v.NumField() {
		c, ok := v.Field(i).Interface().(prometheus.Collector)
		if !ok {
			continue
		}
		ch := make(chan *prometheus.Desc, 16)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			name := fq.FindStringSubmatch(d.String())[1]
			names[name] = true
			if _, hist := c.(*prometheus.HistogramVec); hist {
				names[name+"_bucket"], names[name+"_sum"], names[name+"_count"] = true, true, true
			}
		}
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		names[f.GetName()] = true
	}
	// Metrics that packages other than telemetry own (events, reload):
	// every collector named in a non-test source file under internal/.
	named := regexp.MustCompile(`Name:\s*"(mizuchi_[a-z0-9_]+)"`)
	err = filepath.WalkDir(filepath.Join("..", "internal"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range named.FindAllSubmatch(b, -1) {
			names[string(m[1])] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

var (
	quoted     = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	metricName = regexp.MustCompile(`\b(mizuchi_[a-z0-9_]+|process_[a-z0-9_]+|go_[a-z0-9_]+|up)\b`)
)

// metricsOf returns the metric names a PromQL expression uses (label
// values in quotes are not names).
func metricsOf(expr string) []string {
	return metricName.FindAllString(quoted.ReplaceAllString(expr, `""`), -1)
}

// dashboardExprs returns the expressions of every panel target and
// templating query of the dashboard.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(observability, "grafana", "mizuchi-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Inputs []struct {
			Name, Type, PluginID string
		} `json:"__inputs"`
		Panels []struct {
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	if len(d.Inputs) != 1 || d.Inputs[0].Name != "DS_PROMETHEUS" || d.Inputs[0].PluginID != "prometheus" {
		t.Errorf("dashboard: want one datasource input DS_PROMETHEUS (import-ready), got %+v", d.Inputs)
	}
	if strings.Count(string(data), `"uid": "${DS_PROMETHEUS}"`) == 0 {
		t.Error("dashboard: no panel uses the ${DS_PROMETHEUS} input")
	}
	var exprs []string
	for _, p := range d.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("dashboard panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		exprs = append(exprs, v.Definition)
	}
	return exprs
}

// ruleExprs returns the expressions of every alert rule.
func ruleExprs(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(observability, "prometheus", "mizuchi-alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	var exprs []string
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, r.Expr)
		}
	}
	return exprs
}

func TestDashboardAndAlertsUseOnlyRegisteredMetrics(t *testing.T) {
	registered := registeredMetrics(t)
	for name := range pendingMetrics {
		if registered[name] {
			t.Errorf("%s is registered now: remove it from pendingMetrics", name)
		}
	}
	used := map[string][]string{}
	for _, e := range dashboardExprs(t) {
		for _, m := range metricsOf(e) {
			used[m] = append(used[m], "dashboard")
		}
	}
	for _, e := range ruleExprs(t) {
		for _, m := range metricsOf(e) {
			used[m] = append(used[m], "alert rules")
		}
	}
	if len(used) < 20 {
		t.Fatalf("only %d metrics found in the dashboard and rules: is the extraction broken?", len(used))
	}
	for name, where := range used {
		if !registered[name] && !pendingMetrics[name] && !prometheusMetrics[name] {
			slices.Sort(where)
			t.Errorf("%s (used by the %s) is not a metric Mizuchi registers", name, strings.Join(slices.Compact(where), " and "))
		}
	}
	// Every failure the issue names has an alert.
	all := strings.Join(ruleExprs(t), "\n")
	for _, m := range []string{"mizuchi_backend_requests_total", "mizuchi_authz_decisions_total", "mizuchi_tracing_exporter_state",
		"mizuchi_events_pending", "mizuchi_limit_refusals_total", "mizuchi_state_errors_total",
		"mizuchi_config_last_reload_success", "mizuchi_multipart_cleanup_runs_total"} {
		if !strings.Contains(all, m) {
			t.Errorf("no alert rule uses %s", m)
		}
	}
}

func TestMetricExtractionSeesNamesNotLabelValues(t *testing.T) {
	got := metricsOf(`sum by (le) (rate(mizuchi_upload_duration_seconds_bucket{job="mizuchi_x", status=~"5.."}[5m])) / up`)
	if want := []string{"mizuchi_upload_duration_seconds_bucket", "up"}; !slices.Equal(got, want) {
		t.Errorf("metricsOf = %q, want %q", got, want)
	}
}

func TestAlertRulesPassPromtool(t *testing.T) {
	promtool := testproc.LookPath(t, "promtool")
	for _, args := range [][]string{
		{"check", "rules", filepath.Join(observability, "prometheus", "mizuchi-alerts.yml")},
		{"check", "config", filepath.Join(observability, "prometheus", "prometheus.yml")},
		// The alerts fire on the failures they are meant for.
		{"test", "rules", filepath.Join(observability, "prometheus", "mizuchi-alerts.test.yml")},
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestObservabilityMizuchiConfigsParse: the Mizuchi snippets of the
// examples are whole, valid configurations.
func TestObservabilityMizuchiConfigsParse(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(observability, "*", "mizuchi-*.yaml"))
	if err != nil || len(files) < 4 {
		t.Fatalf("want the Mizuchi configs for Jaeger and Tempo over gRPC and HTTP, found %q (%v)", files, err)
	}
	for _, f := range files {
		cfg, err := config.Load(f, func(string) (string, bool) { return "", false })
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if !cfg.Tracing.Enabled {
			t.Errorf("%s: tracing is not enabled", f)
		}
		proto := "grpc"
		if strings.Contains(f, "http") {
			proto = "http/protobuf"
		}
		if cfg.Tracing.OTLP.Protocol != proto {
			t.Errorf("%s: protocol %q, want %q", f, cfg.Tracing.OTLP.Protocol, proto)
		}
	}
}

// TestMetricsDocMatchesTheRegisteredMetrics: docs/METRICS.md's reference
// table has a row for every mizuchi_* metric the code registers, and no
// row for anything else (pending metrics aside, as above).
func TestMetricsDocMatchesTheRegisteredMetrics(t *testing.T) {
	registered := registeredMetrics(t)
	doc := read(t, "docs/METRICS.md")
	rows := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `(mizuchi_[a-z0-9_]+)` \\|").FindAllStringSubmatch(doc, -1) {
		rows[m[1]] = true
		if !registered[m[1]] && !pendingMetrics[m[1]] {
			t.Errorf("docs/METRICS.md documents %s, which is not registered", m[1])
		}
	}
	for name := range registered {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
		if strings.HasPrefix(name, "mizuchi_") && !rows[name] && !rows[base] {
			t.Errorf("docs/METRICS.md has no row for %s", name)
		}
	}
}
