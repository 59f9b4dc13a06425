package telemetry

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MetricsPath is where the metrics listener serves the metrics.
const MetricsPath = "/metrics"

// MetricsHandler serves the metrics gathered from g in the Prometheus
// exposition formats. A collector that fails does not hide the others.
func MetricsHandler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// NewMetricsServer returns the metrics listener's server: MetricsHandler on
// MetricsPath, 404 elsewhere. The caller runs and shuts it down.
func NewMetricsServer(addr string, g prometheus.Gatherer) *http.Server {
	mux := http.NewServeMux()
	mux.Handle("GET "+MetricsPath, MetricsHandler(g))
	return &http.Server{
		Addr:              addr,
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       time.Minute,
	}
}
