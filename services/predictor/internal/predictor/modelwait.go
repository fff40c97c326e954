package predictor

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/greenwave-city/greenwave/pkg/features"
	"github.com/greenwave-city/greenwave/pkg/models"
	"github.com/greenwave-city/greenwave/pkg/train"
)

// modelWaiter synchronises the predictor's two inputs in event time, the way Kafka Streams synchronises a
// stream-table join (max.task.idle.ms): a frame whose model is stale only because the trainer is behind — a
// replay at full speed, a backlog — is held until the trainer's snapshot makes the model fresh, instead of
// being predicted from a model days older than the frame. The wait is bounded in processing time, so a trainer
// that is down (or a model the trainer no longer learns) delays predictions by PREDICTOR_MODEL_WAIT once, not
// forever. The wake-up is driven by the models follower (models.Store.Changed), never by polling.
//
// Rules (see docs/predictor.md, Synchronisation with the trainer):
//   - Only models the store holds are waited for: a frame of an intersection without models (warming up) is
//     predicted at once, with fallbacks, since nobody knows when, or whether, its first snapshot comes.
//   - A frame waits while any of its held models is stale (as Predict would mark it) and not given up.
//   - The wait ends with outcome "fresh" when every model it waits for is fresh, and with "timeout" when
//     PREDICTOR_MODEL_WAIT passed without progress — without a newer snapshot of a waited-for model. Progress
//     restarts the bound, as new data restarts Kafka Streams' idle time: a trainer that keeps publishing is
//     behind, not dead, and its next snapshots will make the frame fresh.
//   - On timeout the still-stale models are given up (per partition) until a newer snapshot of them arrives:
//     their frames are predicted at once, marked stale. And since the trainer showed no progress for a whole
//     wait, no frame of any intersection waits again until some snapshot arrives (the trainer is quiet): a
//     partition holds 1/P of the city's intersections, and a dead trainer must not cost a wait for each of
//     them in turn. So a dead trainer costs about one PREDICTOR_MODEL_WAIT per partition (concurrently), and
//     a model the trainer no longer learns (its approach went dark) one wait, ever.
//   - ctx ending (shutdown, rebalance) ends the wait with ctx's error: the frame is not predicted, its offset
//     is not committed, and whoever owns the partition next predicts it.
//
// It is safe for concurrent use; the given-up models are the caller's (one map per partition goroutine).
type modelWaiter struct {
	store *models.Store
	// wait is PREDICTOR_MODEL_WAIT, the longest a frame waits without progress (0: never wait).
	wait time.Duration
	// waits counts ended waits by outcome; waited sums the processing time spent waiting.
	fresh, timeout, canceled prometheus.Counter
	waited                   prometheus.Counter
	log                      *zap.Logger
	// quietMu guards quiet: the store's Changed channel taken at the last timeout, nil before any. While it is
	// open, no snapshot arrived since a wait ran out — the trainer is quiet — and frames do not wait.
	quietMu sync.Mutex
	quiet   <-chan struct{}
	// logged holds the intersections whose timeout was logged (one line per intersection, not per frame); it
	// grows to the number of intersections at most.
	logged sync.Map
	now    func() time.Time
	// waiting, when set (tests), is called as a frame starts waiting.
	waiting func(f features.Frame)
}

func newModelWaiter(store *models.Store, wait time.Duration, log *zap.Logger, reg prometheus.Registerer) *modelWaiter {
	waits := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "greenwave", Subsystem: "predictor", Name: "model_waits_total",
		Help: "Feature frames held because a model was stale while the trainer may be behind, by how the wait ended: fresh (a snapshot made the models fresh), timeout (PREDICTOR_MODEL_WAIT without progress; predicted stale), canceled (shutdown or rebalance)."},
		[]string{"outcome"})
	waited := prometheus.NewCounter(prometheus.CounterOpts{Namespace: "greenwave", Subsystem: "predictor", Name: "model_wait_seconds_total",
		Help: "Processing time feature frames spent waiting for fresh models."})
	reg.MustRegister(waits, waited)
	return &modelWaiter{store: store, wait: wait, log: log, now: time.Now, waited: waited,
		fresh: waits.WithLabelValues("fresh"), timeout: waits.WithLabelValues("timeout"), canceled: waits.WithLabelValues("canceled")}
}

// await returns when the frame may be predicted: at once when none of its held models is stale (or every
// stale one was given up), else when they are fresh or the wait ran out (see modelWaiter). gaveUp maps a
// given-up model id to the UpdatedAt of the snapshot that was stale; await updates it. It returns an error only
// when ctx ended.
func (w *modelWaiter) await(ctx context.Context, pr *Predictor, f features.Frame, horizons []time.Duration, gaveUp map[string]time.Time) error {
	if w == nil || w.wait <= 0 {
		return nil
	}
	if len(w.staleOf(pr, f, horizons, gaveUp)) == 0 { // the common case, without the store's write lock
		return nil
	}
	if w.trainerQuiet() {
		return nil
	}
	changed := w.store.Changed() // taken before looking again, so no snapshot stored after the look is missed
	waiting := w.staleOf(pr, f, horizons, gaveUp)
	if len(waiting) == 0 {
		return nil
	}
	if w.waiting != nil {
		w.waiting(f)
	}
	began := w.now()
	defer func() { w.waited.Add(w.now().Sub(began).Seconds()) }()
	timer := time.NewTimer(w.wait)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			w.canceled.Inc()
			return fmt.Errorf("wait for fresh models of %s: %w", f.IntersectionID, context.Cause(ctx))
		case <-timer.C:
			for id, updated := range waiting {
				gaveUp[id] = updated
			}
			w.quietMu.Lock()
			w.quiet = w.store.Changed()
			w.quietMu.Unlock()
			w.timeout.Inc()
			if _, seen := w.logged.LoadOrStore(f.IntersectionID, struct{}{}); !seen {
				w.log.Warn("models still stale after waiting for the trainer; predicting with them (marked stale), and not waiting for them again until newer snapshots arrive",
					zap.String("intersection", f.IntersectionID), zap.Time("frame_window_end", f.WindowEnd),
					zap.Int("stale_models", len(waiting)), zap.Duration("wait", w.wait))
			}
			return nil
		case <-changed:
			changed = w.store.Changed()
			still := w.stillStale(pr, f, waiting)
			if len(still) == 0 {
				w.fresh.Inc()
				return nil
			}
			if progressed(waiting, still) {
				timer.Reset(w.wait) // Go ≥ 1.23: no stale tick survives a Reset
			}
			waiting = still
		}
	}
}

// trainerQuiet reports whether no snapshot arrived since the last wait ran out.
func (w *modelWaiter) trainerQuiet() bool {
	w.quietMu.Lock()
	defer w.quietMu.Unlock()
	if w.quiet == nil {
		return false
	}
	select {
	case <-w.quiet:
		w.quiet = nil // the trainer published since: frames wait again
		return false
	default:
		return true
	}
}

// staleOf returns the frame's held models that are stale and not given up, with the UpdatedAt of their
// snapshots (nil when there are none). A given-up model whose snapshot is newer than the one
// given up is waited for again.
func (w *modelWaiter) staleOf(pr *Predictor, f features.Frame, horizons []time.Duration, gaveUp map[string]time.Time) map[string]time.Time {
	var stale map[string]time.Time
	for _, v := range f.Approaches {
		for _, tg := range pr.targets {
			for _, h := range horizons {
				id := train.ModelID(f.IntersectionID, v.ApproachID, h, tg.name)
				snap, ok := w.store.Get(id)
				if !ok {
					continue
				}
				updated := snap.UpdatedAt.Time()
				if given, ok := gaveUp[id]; ok {
					if !updated.After(given) {
						continue
					}
					delete(gaveUp, id) // the trainer moved on: worth waiting for again
				}
				if pr.isStale(f, updated) {
					if stale == nil {
						stale = map[string]time.Time{}
					}
					stale[id] = updated
				}
			}
		}
	}
	return stale
}

// stillStale returns those of waiting that are still stale, with their current UpdatedAt.
func (w *modelWaiter) stillStale(pr *Predictor, f features.Frame, waiting map[string]time.Time) map[string]time.Time {
	still := map[string]time.Time{}
	for id := range waiting {
		if snap, ok := w.store.Get(id); ok {
			if updated := snap.UpdatedAt.Time(); pr.isStale(f, updated) {
				still[id] = updated
			}
		}
	}
	return still
}

// progressed reports whether any model in now has a newer snapshot than in before.
func progressed(before, now map[string]time.Time) bool {
	for id, t := range now {
		if t.After(before[id]) {
			return true
		}
	}
	return false
}
