package events

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	// events counts by bucket, sink and result: queued, delivered,
	// retried (an attempt failed, the event stays pending) and failed
	// (the event was given up: dropped by on_full drop_oldest, or not
	// recorded because the outbox write failed).
	events *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, m *Manager) *metrics {
	mt := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mizuchi_events_total",
			Help: "Upload events by sink and result (queued, delivered, retried, failed).",
		}, []string{"bucket", "sink", "result"}),
	}
	pending := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "mizuchi_events_pending",
		Help: "Event deliveries waiting in the outbox (one per event and sink).",
	}, func() float64 { n, _ := m.stats(); return float64(n) })
	oldest := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "mizuchi_events_oldest_pending_seconds",
		Help: "Age of the oldest event delivery waiting in the outbox; 0 when none.",
	}, func() float64 { _, d := m.stats(); return d.Seconds() })
	if reg != nil {
		reg.MustRegister(mt.events, pending, oldest)
	}
	return mt
}
