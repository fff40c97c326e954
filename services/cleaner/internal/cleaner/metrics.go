package cleaner

import "github.com/prometheus/client_golang/prometheus"

// metrics are the cleaner's Prometheus series.
type metrics struct {
	frames      prometheus.Counter
	rejected    *prometheus.CounterVec
	dropped     prometheus.Counter
	redelivered prometheus.Counter
	weather     *prometheus.CounterVec
	waits       *prometheus.CounterVec
	health      *prometheus.GaugeVec
	checkpoints *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		frames: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "greenwave", Subsystem: "cleaner", Name: "frames_total",
			Help: "Intersection feature frames emitted (one per closed window)."}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "greenwave", Subsystem: "cleaner", Name: "rejected_total",
			Help: "Readings set aside to the dead-letter topic, by reason."}, []string{"reason"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "greenwave", Subsystem: "cleaner", Name: "replays_dropped_total",
			Help: "Identical replays of readings already applied, dropped silently."}),
		redelivered: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "greenwave", Subsystem: "cleaner", Name: "redelivered_total",
			Help: "Input records skipped because the restored state already covered their offset (redelivery after a restart or rebalance)."}),
		weather: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "greenwave", Subsystem: "cleaner", Name: "weather_total",
			Help: "Weather observations read, by outcome (accepted, malformed, unsupported_schema or a weather_* reason)."}, []string{"outcome"}),
		waits: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "greenwave", Subsystem: "cleaner", Name: "weather_waits_total",
			Help: "Waits of a partition for the weather follower before emitting a window, by outcome (caught_up, timed_out, canceled, end_unknown)."}, []string{"outcome"}),
		health: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "greenwave", Subsystem: "cleaner", Name: "detector_health_score",
			Help: "Detector health score at the last closed window, 0 (dead) to 1 (healthy)."}, []string{"intersection", "approach", "detector"}),
		checkpoints: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "greenwave", Subsystem: "cleaner", Name: "checkpoints_total",
			Help: "Partition checkpoints (state snapshots with their offset commits), by the rule that made them due: bytes, max_delay, replay_idle or every_batch."}, []string{"rule"}),
	}
	reg.MustRegister(m.frames, m.rejected, m.dropped, m.redelivered, m.weather, m.waits, m.health, m.checkpoints)
	return m
}
