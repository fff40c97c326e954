package predictor

import (
	"sync"

	"github.com/greenwave-city/greenwave/pkg/train"
)

// compiledModel is a snapshot prepared for prediction: the compiled model (or why it does not compile) and its
// interval coverage at the served confidence. Both are functions of the snapshot alone, so they are computed
// once per snapshot instead of once per prediction.
type compiledModel struct {
	snap     *train.Snapshot
	model    *train.Model // nil when err is set
	err      error
	coverage float64
}

// compiledModels caches a compiledModel per model id. An entry is valid for the very snapshot it was compiled
// from: the store replaces the snapshot pointer whenever it accepts a snapshot (a newer version, or the same
// version delivered again), and a lookup with another pointer recompiles. Comparing pointers rather than
// versions keeps the cache exact even if two snapshots with one version differed. It holds one entry per model
// the predictor has used, like the store. The zero value is ready to use; it is safe for concurrent use.
type compiledModels struct {
	m sync.Map // model id → *compiledModel
}

// get returns the compiled form of snap, the store's current snapshot of model id, compiling it on first use.
func (c *compiledModels) get(id string, snap *train.Snapshot, confidence float64) *compiledModel {
	if e, ok := c.m.Load(id); ok {
		if cm := e.(*compiledModel); cm.snap == snap {
			return cm
		}
	}
	// A miss costs one decode of the snapshot (its history and promoted candidate). Each intersection, and so
	// each model, is predicted by one partition goroutine, so two goroutines compiling one snapshot at once is
	// rare and harmless: both entries are equal.
	m, err := train.Compile(snap)
	cm := &compiledModel{snap: snap, model: m, err: err, coverage: coverage(snap, confidence)}
	c.m.Store(id, cm)
	return cm
}
