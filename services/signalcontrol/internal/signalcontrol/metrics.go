package signalcontrol

import (
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/status"

	"github.com/greenwave-city/greenwave/pkg/broadcast"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

type metrics struct {
	plans              *prometheus.CounterVec
	fallbacks          *prometheus.CounterVec
	validationFailures prometheus.Counter
	replays            prometheus.Counter
	relearned          prometheus.Counter
	restoreReads       prometheus.Counter
	overrideEvents     *prometheus.CounterVec
	overrideRPCs       *prometheus.CounterVec
	badAudits          prometheus.Counter
	// WatchPlans: plans sent, plans merged into a newer one under back-pressure, streams ended for lagging.
	watchSends, watchCoalesced, watchOverflows prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, hub *broadcast.Hub[*greenwavev1.SignalPlan], table *overrideTable, now func() time.Time) *metrics {
	const ns, sub = "greenwave", "signal"
	m := &metrics{
		plans: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "plans_total",
			Help: "Signal plans issued, by reason (predictive, time_of_day, fixed_time, override)."}, []string{"reason"}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "fallbacks_total",
			Help: "Plans that fell back from predictions, by cause (stale, drift, no_model, wide_interval, no_history, ...); detector_recall counts plans, predictive ones too, that held a failed-detector approach at recall."}, []string{"cause"}),
		validationFailures: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "validation_failures_total",
			Help: "Plans that failed the final validation before publishing and were replaced by the fixed-time or minimum plan."}),
		replays: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "replays_skipped_total",
			Help: "Predictions skipped because their window was already planned and is in the restored state."}),
		relearned: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "replays_relearned_total",
			Help: "Predictions replayed after a restore whose plan was already on the plans topic: their flows were learned into the profile again, and no plan was issued."}),
		restoreReads: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "restore_plans_read_total",
			Help: "Plans read back from the plans topic when restoring partitions (the plans issued since the last state checkpoint)."}),
		overrideEvents: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "override_events_total",
			Help: "Override audit records written by this instance, by action (set, clear, expire)."}, []string{"action"}),
		overrideRPCs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "override_requests_total",
			Help: "Override RPCs, by method and gRPC status code (rejected requests included)."}, []string{"method", "code"}),
		badAudits: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "override_records_rejected_total",
			Help: "Records on the overrides topic that could not be decoded and were ignored."}),
		watchSends: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "watch_sends_total",
			Help: "Plans sent to WatchPlans subscribers."}),
		watchCoalesced: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "watch_coalesced_total",
			Help: "Plans not sent to a WatchPlans subscriber because a newer plan of the same intersection replaced them while its queue was full (the coalesced field)."}),
		watchOverflows: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "watch_overflows_total",
			Help: "WatchPlans streams ended with RESOURCE_EXHAUSTED because they lagged by more intersections than SIGNAL_SUBSCRIBER_BUFFER."}),
	}
	reg.MustRegister(m.plans, m.fallbacks, m.validationFailures, m.replays, m.relearned, m.restoreReads, m.overrideEvents, m.overrideRPCs, m.badAudits,
		m.watchSends, m.watchCoalesced, m.watchOverflows,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "watchers",
			Help: "Live WatchPlans subscribers."}, func() float64 { return float64(hub.Subscribers()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "overrides_active",
			Help: "Operator overrides in force."}, func() float64 { return float64(table.countActive(now())) }))
	return m
}

func (m *metrics) countRPC(method string, err error) {
	m.overrideRPCs.WithLabelValues(method, status.Code(err).String()).Inc()
}

func reasonLabel(r greenwavev1.PlanReason) string {
	return strings.ToLower(strings.TrimPrefix(r.String(), "PLAN_REASON_"))
}
