package predictor

import (
	"math"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/greenwave-city/greenwave/pkg/broadcast"
	"github.com/greenwave-city/greenwave/pkg/models"
	"github.com/greenwave-city/greenwave/pkg/train"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// metrics are the predictor's Prometheus metrics, registered on the service's own registry.
type metrics struct {
	predictions prometheus.Counter
	fallbacks   prometheus.Counter
	mismatches  prometheus.Counter
	stale       prometheus.Counter
	latency     prometheus.Observer // a Histogram; an Observer so that the benchmark can record every value
	sends       prometheus.Counter
	coalesced   prometheus.Counter
	overflows   prometheus.Counter
	// republishSkipped counts replayed frames whose prediction a previous owner had already published.
	republishSkipped prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, store *models.Store, hub *broadcast.Hub[*greenwavev1.IntersectionPrediction]) *metrics {
	const ns, sub = "greenwave", "predictor"
	latency := prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "latency_seconds",
		Help: "Feature frame consumed to prediction acknowledged by Kafka.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)})
	m := &metrics{
		predictions: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "predictions_total",
			Help: "Intersection predictions published (acknowledged by Kafka, then handed to subscribers)."}),
		fallbacks: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "fallback_forecasts_total",
			Help: "Approach-horizon forecasts made without a usable trained model (persistence)."}),
		mismatches: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "feature_set_mismatches_total",
			Help: "Approach-horizon forecasts whose model was not used because its feature set differs from the frame's (a cleaner upgrade the trainer has not caught up with); they fall back to persistence."}),
		stale: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "stale_forecasts_total",
			Help: "Approach-horizon forecasts from a model older than PREDICTOR_MAX_MODEL_AGE (marked stale)."}),
		latency: latency,
		sends: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "subscriber_sends_total",
			Help: "Predictions sent on Subscribe streams."}),
		coalesced: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "subscriber_coalesced_total",
			Help: "Predictions a lagging subscriber never received because a newer one of the same intersection replaced them."}),
		overflows: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "subscriber_overflows_total",
			Help: "Subscribe streams ended with RESOURCE_EXHAUSTED because they lagged more than PREDICTOR_SUBSCRIBER_BUFFER intersections."}),
		republishSkipped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "replays_kept_total",
			Help: "Frames replayed after a restart or rebalance whose prediction was already on the predictions topic: handed to subscribers as published, not predicted again."}),
	}
	reg.MustRegister(m.predictions, m.fallbacks, m.mismatches, m.stale, latency, m.sends, m.coalesced, m.overflows, m.republishSkipped,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "subscribers",
			Help: "Live Subscribe streams."}, func() float64 { return float64(hub.Subscribers()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "models",
			Help: "Models held."}, func() float64 { return float64(store.Len()) }),
		&coverageCollector{store: store},
	)
	return m
}

// coverageCollector exports interval coverage aggregated per (target, horizon) at scrape time: labels per
// model would grow with the city (intersections × approaches × horizons series); per horizon stays a handful,
// and the per-model figure is on every prediction (interval_coverage) and in ModelService.
type coverageCollector struct{ store *models.Store }

var (
	coverageDesc = prometheus.NewDesc("greenwave_predictor_interval_coverage_ratio",
		"Share of labels inside the prediction interval issued with their forecast, pooled over the models held, per target and horizon; window=recent is the trainer's recent window, window=cumulative since each model started.",
		[]string{"target", "horizon_s", "window"}, nil)
	coverageLabelsDesc = prometheus.NewDesc("greenwave_predictor_interval_coverage_labels",
		"Labels scored for interval coverage, pooled over the models held, per target and horizon.",
		[]string{"target", "horizon_s", "window"}, nil)
)

// Describe implements prometheus.Collector.
func (c *coverageCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- coverageDesc
	ch <- coverageLabelsDesc
}

// Collect implements prometheus.Collector.
func (c *coverageCollector) Collect(ch chan<- prometheus.Metric) {
	type key struct {
		target  string
		horizon uint32
	}
	type acc struct{ hits, n, rhits, rn uint64 }
	sums := map[key]*acc{}
	snaps, _ := c.store.List(models.Filter{}, "", math.MaxInt32)
	for _, s := range snaps {
		cov, ok := train.CoverageOf(s)
		if !ok {
			continue
		}
		k := key{s.Target, s.HorizonS}
		a := sums[k]
		if a == nil {
			a = &acc{}
			sums[k] = a
		}
		a.hits, a.n, a.rhits, a.rn = a.hits+cov.Hits, a.n+cov.N, a.rhits+uint64(cov.RecentHits), a.rn+uint64(cov.RecentN)
	}
	for k, a := range sums {
		tg, h := targetLabel(k.target), strconv.FormatUint(uint64(k.horizon), 10)
		for _, w := range []struct {
			name    string
			hits, n uint64
		}{{"cumulative", a.hits, a.n}, {"recent", a.rhits, a.rn}} {
			ch <- prometheus.MustNewConstMetric(coverageLabelsDesc, prometheus.GaugeValue, float64(w.n), tg, h, w.name)
			if w.n > 0 {
				ch <- prometheus.MustNewConstMetric(coverageDesc, prometheus.GaugeValue, float64(w.hits)/float64(w.n), tg, h, w.name)
			}
		}
	}
}

// targetLabel is the label of a snapshot's target ("unspecified" for none this build knows).
func targetLabel(t string) string {
	if t == "" {
		return "unspecified"
	}
	return t
}
