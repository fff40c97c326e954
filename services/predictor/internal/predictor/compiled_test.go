package predictor

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/greenwave-city/greenwave/pkg/models"
	"github.com/greenwave-city/greenwave/pkg/train"
)

// TestPredictCompiledModels checks the compiled-model cache: cached predictions are the snapshot's own
// (train.Predict, bit for bit), a snapshot that replaces a model in the store is used from the next frame on,
// and a snapshot that does not compile gives the persistence fallback until a good one replaces it.
func TestPredictCompiledModels(t *testing.T) {
	t.Parallel()
	older, newer := trainedStore(t, 100), trainedStore(t, 110)
	store := models.NewStore()
	copyAll := func(src *models.Store) {
		snaps, _ := src.List(models.Filter{}, "", 1<<20)
		for _, s := range snaps {
			store.Put(s)
		}
	}
	copyAll(older)
	pr := newTestPredictor(store, 24*time.Hour)

	// check predicts frame i twice (the second from the cache) and compares every forecast with train.Predict
	// on the snapshot the store holds.
	check := func(name string, i int) {
		t.Helper()
		f := testFrame(i)
		first := pr.Predict(f)
		if again := pr.Predict(f); !proto.Equal(first, again) {
			t.Fatalf("%s: the cached model predicted differently", name)
		}
		for ai, ap := range first.GetApproaches() {
			for _, h := range ap.GetHorizons() {
				snap, _ := store.Get(h.GetModelId())
				want, err := train.Predict(snap, f, f.Approaches[ai], pr.confidence)
				if err != nil {
					if !h.GetFallback() {
						t.Fatalf("%s: %s: model forecast from a snapshot that does not predict (%v)", name, h.GetModelId(), err)
					}
					continue
				}
				if h.GetFallback() || h.GetModelVersion() != snap.Version || h.GetValue() != want.Value ||
					h.GetLower() != want.Lower || h.GetUpper() != want.Upper || h.GetStdError() != want.StdErr {
					t.Fatalf("%s: %s: %v, want version %d %+v", name, h.GetModelId(), h, snap.Version, want)
				}
			}
		}
	}
	check("older models", 110)
	copyAll(newer)
	check("newer models", 110)

	// A corrupt snapshot of one model: fallback for it, the others unaffected; then a good one again.
	good, _ := store.Get(train.ModelID("i1", "n", testHorizons[0], "flow"))
	bad, hist := *good, *good.History // copies of what is changed: the store keeps good
	bad.Version++
	hist.Ring = hist.Ring[:10]
	bad.History = &hist
	store.Put(&bad)
	p := pr.Predict(testFrame(111))
	for _, ap := range p.GetApproaches() {
		for _, h := range ap.GetHorizons() {
			if h.GetFallback() != (h.GetModelId() == bad.ModelID) {
				t.Fatalf("corrupt %s: %s fallback %v", bad.ModelID, h.GetModelId(), h.GetFallback())
			}
		}
	}
	fixed := *good
	fixed.Version = bad.Version + 1
	store.Put(&fixed)
	check("repaired model", 111)
}
