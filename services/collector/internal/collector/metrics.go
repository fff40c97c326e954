package collector

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the collector's Prometheus series. Gateway labels are bounded by the registry file (plus
// "anonymous", "unknown" and "none"), never by what callers send.
type metrics struct {
	accepted      *prometheus.CounterVec
	rejected      *prometheus.CounterVec
	invalid       *prometheus.CounterVec
	batchDuration *prometheus.HistogramVec
	produceErrors prometheus.Counter
	authDenied    *prometheus.CounterVec
	rateLimited   *prometheus.CounterVec
	overloaded    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, inflight chan struct{}) (*metrics, error) {
	opts := func(name, help string) prometheus.CounterOpts {
		return prometheus.CounterOpts{Namespace: "greenwave", Subsystem: "collector", Name: name, Help: help}
	}
	m := &metrics{
		accepted: prometheus.NewCounterVec(opts("accepted_total",
			"Readings accepted and acknowledged by Kafka, by kind and gateway."), []string{"kind", "gateway"}),
		rejected: prometheus.NewCounterVec(opts("rejected_total",
			"Readings refused in a batch (listed in its ack), by kind, reason and gateway."), []string{"kind", "reason", "gateway"}),
		invalid: prometheus.NewCounterVec(opts("invalid_requests_total",
			"Requests refused as a whole (malformed, empty, too large, wrong content type), by API and reason."), []string{"api", "reason"}),
		batchDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "greenwave", Subsystem: "collector", Name: "batch_duration_seconds",
			Help:    "Time from receiving a batch to acknowledging it (Kafka acks included), by API.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"api"}),
		produceErrors: prometheus.NewCounter(opts("produce_errors_total",
			"Batches whose Kafka write failed (the gateway gets UNAVAILABLE / 503 and resends).")),
		authDenied: prometheus.NewCounterVec(opts("auth_denials_total",
			"Requests refused by authentication or authorisation, by gateway (unknown, none) and reason."), []string{"gateway", "reason"}),
		rateLimited: prometheus.NewCounterVec(opts("rate_limited_batches_total",
			"Batches refused because the gateway exceeded its rate limit."), []string{"gateway"}),
		overloaded: prometheus.NewCounterVec(opts("overloaded_batches_total",
			"Batches refused because the collector had COLLECTOR_MAX_IN_FLIGHT batches in flight, by API."), []string{"api"}),
	}
	inflightGauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "greenwave", Subsystem: "collector", Name: "batches_in_flight",
		Help: "Batches being validated or published right now.",
	}, func() float64 { return float64(len(inflight)) })
	for _, c := range []prometheus.Collector{m.accepted, m.rejected, m.invalid, m.batchDuration, m.produceErrors, m.authDenied, m.rateLimited, m.overloaded, inflightGauge} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}
