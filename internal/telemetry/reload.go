package telemetry

import "github.com/prometheus/client_golang/prometheus"

// Results of a configuration reload, the result label of
// mizuchi_config_reloads_total.
const (
	ReloadSuccess = "success"
	ReloadFailure = "failure"
)

// ReloadMetrics count configuration reloads. They are registered once per
// process, beside Metrics.
type ReloadMetrics struct {
	Reloads     *prometheus.CounterVec // result
	LastSuccess prometheus.Gauge
}

// NewReloadMetrics creates the reload metrics and registers them on reg.
// Both results start at zero and the last reload counts as a success (the
// configuration the process started with is valid), so alerts on a
// failure never wait for a first reload.
func NewReloadMetrics(reg prometheus.Registerer) *ReloadMetrics {
	m := &ReloadMetrics{
		Reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mizuchi_config_reloads_total", Help: "Configuration reloads (SIGHUP or a watched file changed), by result (success, failure).",
		}, []string{"result"}),
		LastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mizuchi_config_last_reload_success", Help: "1 when the last configuration reload succeeded (or none was tried), 0 when it failed and the previous configuration is still in use.",
		}),
	}
	m.Reloads.WithLabelValues(ReloadSuccess)
	m.Reloads.WithLabelValues(ReloadFailure)
	m.LastSuccess.Set(1)
	reg.MustRegister(m.Reloads, m.LastSuccess)
	return m
}

// Observe records the outcome of one reload.
func (m *ReloadMetrics) Observe(ok bool) {
	if ok {
		m.Reloads.WithLabelValues(ReloadSuccess).Inc()
		m.LastSuccess.Set(1)
		return
	}
	m.Reloads.WithLabelValues(ReloadFailure).Inc()
	m.LastSuccess.Set(0)
}
