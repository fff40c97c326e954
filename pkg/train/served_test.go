package train

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"
)

// TestServedPredictsLikeComplete checks the serving form's contract: every forecast (and every rejection) of a
// model compiled from Served(s) equals the complete snapshot's, the form is much smaller, RestoreLearner refuses
// it, and s itself is left whole.
func TestServedPredictsLikeComplete(t *testing.T) {
	t.Parallel()
	var compared int
	for _, tc := range modelCases(t, "traffic", "week") {
		before := proto.Clone(tc.snap)
		served := Served(tc.snap)
		if !proto.Equal(before, tc.snap) {
			t.Fatalf("%s: Served modified its argument", tc.name)
		}
		if !served.GetServed() || len(served.GetRecent()) != 0 || len(served.GetPending()) != 0 {
			t.Fatalf("%s: served form keeps training state: served=%v recent=%d pending=%d", tc.name, served.GetServed(), len(served.GetRecent()), len(served.GetPending()))
		}
		for _, c := range served.GetCandidates() {
			promoted := c.GetName() == served.GetPromoted()
			if hasP := len(c.GetState().GetCovarianceUpper()) > 0; hasP != promoted {
				t.Fatalf("%s: candidate %s (promoted %v) keeps covariance %v", tc.name, c.GetName(), promoted, hasP)
			}
			if c.GetEvaluation() == nil || (c.GetState().GetUpdates() == 0) != (candidate(tc.snap, c.GetName()).GetState().GetUpdates() == 0) {
				t.Fatalf("%s: candidate %s lost its evaluation or counts", tc.name, c.GetName())
			}
		}
		if full, small := proto.Size(tc.snap), proto.Size(served); tc.snap.GetVersion() > 100 && small >= full {
			t.Fatalf("%s: served form %d bytes of %d", tc.name, small, full)
		}
		mc, err := Compile(tc.snap)
		if err != nil {
			t.Fatalf("%s: compile complete: %v", tc.name, err)
		}
		ms, err := Compile(served)
		if err != nil {
			t.Fatalf("%s: compile served: %v", tc.name, err)
		}
		for _, f := range tc.frames {
			want, werr := mc.Predict(f, f.Approaches[0], 0.9)
			got, gerr := ms.Predict(f, f.Approaches[0], 0.9)
			if (werr == nil) != (gerr == nil) || (werr != nil && werr.Error() != gerr.Error()) || !sameForecast(want, got) {
				t.Fatalf("%s: served form predicts %+v (%v), complete %+v (%v)", tc.name, got, gerr, want, werr)
			}
			compared++
		}
		cfg := DefaultConfig()
		if _, err := RestoreLearner(served.GetIntersectionId(), served.GetApproachId(), []*snapT{served}, cfg); !errors.Is(err, ErrInvalidSnapshot) {
			t.Fatalf("%s: RestoreLearner(served) = %v, want ErrInvalidSnapshot", tc.name, err)
		}
	}
	if compared == 0 {
		t.Fatal("no forecasts compared")
	}
}
