package trainer

import (
	"sort"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/greenwave-city/greenwave/pkg/train"
)

// forecasterPromoted labels the promoted candidate in the evaluation metrics; baselines keep their own names.
const forecasterPromoted = "promoted"

type metrics struct {
	applied         prometheus.Counter
	skipped         prometheus.Counter
	promotions      *prometheus.CounterVec
	drifts          *prometheus.CounterVec
	restoreFailures prometheus.Counter
	undecodable     prometheus.Counter
	upgrades        prometheus.Counter
	rejected        *prometheus.CounterVec
	evals           *evalBoard
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		applied: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "greenwave", Subsystem: "trainer", Name: "frames_applied_total",
			Help: "Approach feature vectors applied to models."}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "greenwave", Subsystem: "trainer", Name: "replays_skipped_total",
			Help: "Approach feature vectors skipped because their window was already applied (redelivery after a restart or rebalance)."}),
		promotions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "greenwave", Subsystem: "trainer", Name: "promotions_total",
			Help: "Candidate promotions, by horizon."}, []string{"horizon_s"}),
		drifts: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "greenwave", Subsystem: "trainer", Name: "drifts_total",
			Help: "Drift detections (every candidate's covariance reset), by horizon."}, []string{"horizon_s"}),
		restoreFailures: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "greenwave", Subsystem: "trainer", Name: "restore_failures_total",
			Help: "Approaches whose snapshots could not be restored and whose models restarted from scratch."}),
		undecodable: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "greenwave", Subsystem: "trainer", Name: "models_undecodable_total",
			Help: "Records of the models topic that ModelService could not decode and skipped."}),
		upgrades: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "greenwave", Subsystem: "trainer", Name: "feature_set_upgrades_total",
			Help: "Approach learners replaced by a fresh learner for a newer feature set (a cleaner upgrade); their models restart."}),
		rejected: newRejectedCounter(),
		evals:    newEvalBoard(),
	}
	reg.MustRegister(m.applied, m.skipped, m.promotions, m.drifts, m.restoreFailures, m.undecodable, m.upgrades, m.rejected, m.evals)
	return m
}

// evalBoard keeps the recent test-then-train MAE of every model this instance owns, per forecaster, and exports
// their sums and counts by horizon and forecaster at scrape time. Sums and counts (rather than a mean or the
// value of whichever model was snapshotted last) add up across instances and partitions, so a dashboard shows
// sum(mae_sum) / sum(mae_models) for the whole city, model against each baseline. It is safe for concurrent
// use: partitions update it, the scraper reads it.
type evalBoard struct {
	sumDesc, nDesc *prometheus.Desc
	mu             sync.Mutex
	models         map[string]modelEval // by model id
}

// modelEval is one model's recent MAE per forecaster (only forecasters with at least one scored label).
type modelEval struct {
	horizon string
	mae     map[string]float64
}

func newEvalBoard() *evalBoard {
	labels := []string{"horizon_s", "forecaster"}
	return &evalBoard{
		sumDesc: prometheus.NewDesc("greenwave_trainer_recent_mae_sum",
			"Sum over this instance's models of the recent test-then-train MAE (target units, veh/h for flow), by horizon and forecaster (promoted candidate or baseline). Divide by greenwave_trainer_recent_mae_models for the mean.", labels, nil),
		nDesc: prometheus.NewDesc("greenwave_trainer_recent_mae_models",
			"Models of this instance with a recent test-then-train MAE, by horizon and forecaster.", labels, nil),
		models: map[string]modelEval{},
	}
}

// set records the evaluations of one snapshot, replacing the model's previous ones.
func (b *evalBoard) set(s *train.Snapshot) {
	e := modelEval{horizon: strconv.FormatUint(uint64(s.HorizonS), 10), mae: map[string]float64{}}
	for _, c := range s.Candidates {
		if c.Name == s.Promoted {
			if r := recentErrors(c.Evaluation); r != nil && r.N > 0 {
				e.mae[forecasterPromoted] = r.MAE
			}
		}
	}
	for name, ev := range s.Baselines {
		if r := recentErrors(ev); r != nil && r.N > 0 {
			e.mae[name] = r.MAE
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.models[s.ModelID] = e
}

// recentErrors returns e's recent-window errors, nil when it has none.
func recentErrors(e *train.Evaluation) *train.ErrorStats {
	if e == nil {
		return nil
	}
	return e.Recent
}

// remove forgets models, when their partition is revoked: the instance that takes it over reports them.
func (b *evalBoard) remove(ids []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, id := range ids {
		delete(b.models, id)
	}
}

// Describe implements prometheus.Collector.
func (b *evalBoard) Describe(ch chan<- *prometheus.Desc) {
	ch <- b.sumDesc
	ch <- b.nDesc
}

// Collect implements prometheus.Collector.
func (b *evalBoard) Collect(ch chan<- prometheus.Metric) {
	type key struct{ horizon, forecaster string }
	type agg struct {
		sum float64
		n   int
	}
	b.mu.Lock()
	aggs := map[key]*agg{}
	for _, e := range b.models {
		for f, v := range e.mae {
			k := key{e.horizon, f}
			a := aggs[k]
			if a == nil {
				a = &agg{}
				aggs[k] = a
			}
			a.sum += v
			a.n++
		}
	}
	b.mu.Unlock()
	keys := make([]key, 0, len(aggs))
	for k := range aggs {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].horizon != keys[j].horizon {
			return keys[i].horizon < keys[j].horizon
		}
		return keys[i].forecaster < keys[j].forecaster
	})
	for _, k := range keys {
		a := aggs[k]
		ch <- prometheus.MustNewConstMetric(b.sumDesc, prometheus.GaugeValue, a.sum, k.horizon, k.forecaster)
		ch <- prometheus.MustNewConstMetric(b.nDesc, prometheus.GaugeValue, float64(a.n), k.horizon, k.forecaster)
	}
}
