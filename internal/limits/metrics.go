package limits

import "github.com/prometheus/client_golang/prometheus"

// Metrics of limits. No label holds a subject.
type Metrics struct {
	// Refusals: mizuchi_limit_refusals_total{bucket,limit}.
	Refusals *prometheus.CounterVec
	// Shaped: mizuchi_limit_shaped_bytes_per_second{bucket}, the sum of
	// the bandwidth limits applied to bodies being read now.
	Shaped *prometheus.GaugeVec
}

// NewMetrics creates the metrics and registers them on reg. refusals, when
// not nil, is mizuchi_limit_refusals_total as already registered by the
// process (the admission limits count there too); it is used as it is.
func NewMetrics(reg prometheus.Registerer, refusals *prometheus.CounterVec) *Metrics {
	m := &Metrics{
		Refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mizuchi_limit_refusals_total",
			Help: "Requests refused by a limit (requests_per_second, concurrent_uploads, bytes_per_day) or because the counters did not answer (unavailable).",
		}, []string{"bucket", "limit"}),
		Shaped: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mizuchi_limit_shaped_bytes_per_second",
			Help: "Bandwidth limits (bytes per second) applied to upload bodies being read now, summed over the subjects and the bucket.",
		}, []string{"bucket"}),
	}
	if refusals != nil {
		m.Refusals = refusals
		reg.MustRegister(m.Shaped)
		return m
	}
	reg.MustRegister(m.Refusals, m.Shaped)
	return m
}

func (m *Metrics) refused(bucket, limit string) {
	if m != nil {
		m.Refusals.WithLabelValues(bucket, limit).Inc()
	}
}

func (m *Metrics) shapedRate(bucket string, delta float64) {
	if m != nil {
		m.Shaped.WithLabelValues(bucket).Add(delta)
	}
}
