package sumo

import (
	"sync"
	"time"

	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// warmup finds the end of the stack's warm-up: the first plan computed from a prediction, as simulated time
// (its valid_from from the loop's epoch). The plan watch sees the plans on its own goroutine; the loop reads
// the result when the run ends.
type warmup struct {
	epoch time.Time
	mu    sync.Mutex
	first time.Duration
	seen  bool
}

// see notes a plan received from WatchPlans.
func (w *warmup) see(p *greenwavev1.SignalPlan) {
	if p.GetReason() != greenwavev1.PlanReason_PLAN_REASON_PREDICTIVE || p.GetValidFrom() == nil {
		return
	}
	at := p.GetValidFrom().AsTime().Sub(w.epoch)
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.seen || at < w.first {
		w.first, w.seen = at, true
	}
}

// firstPredictive is the simulated time of the first predictive plan, false when none came.
func (w *warmup) firstPredictive() (time.Duration, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.first, w.seen
}
