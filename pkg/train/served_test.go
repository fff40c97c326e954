package train

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

// values counts the list elements of a snapshot, the bulk of its encoding.
func values(s *snapT) int {
	var count func(v reflect.Value) int
	count = func(v reflect.Value) int {
		switch v.Kind() {
		case reflect.Pointer:
			if v.IsNil() {
				return 0
			}
			return count(v.Elem())
		case reflect.Slice, reflect.Map:
			n := v.Len()
			if v.Kind() == reflect.Slice {
				for i := range v.Len() {
					n += count(v.Index(i))
				}
			} else {
				for _, k := range v.MapKeys() {
					n += count(v.MapIndex(k))
				}
			}
			return n
		case reflect.Struct:
			n := 0
			for i := range v.NumField() {
				n += count(v.Field(i))
			}
			return n
		}
		return 0
	}
	return count(reflect.ValueOf(s))
}

// TestServedPredictsLikeComplete checks the serving form's contract: every forecast (and every rejection) of a
// model compiled from Served(s) equals the complete snapshot's, the form is much smaller, RestoreLearner refuses
// it, and s itself is left whole.
func TestServedPredictsLikeComplete(t *testing.T) {
	t.Parallel()
	var compared int
	for _, tc := range modelCases(t, "traffic", "week") {
		before := roundTrip(t, []*snapT{tc.snap})
		served := Served(tc.snap)
		if !snapshotsEqual(before, []*snapT{tc.snap}) {
			t.Fatalf("%s: Served modified its argument", tc.name)
		}
		if !served.Served || len(served.Recent) != 0 || len(served.Pending) != 0 {
			t.Fatalf("%s: served form keeps training state: served=%v recent=%d pending=%d", tc.name, served.Served, len(served.Recent), len(served.Pending))
		}
		for _, c := range served.Candidates {
			promoted := c.Name == served.Promoted
			if hasP := len(c.State.CovarianceUpper) > 0; hasP != promoted {
				t.Fatalf("%s: candidate %s (promoted %v) keeps covariance %v", tc.name, c.Name, promoted, hasP)
			}
			if c.Evaluation == nil || (c.State.Updates == 0) != (candidate(tc.snap, c.Name).State.Updates == 0) {
				t.Fatalf("%s: candidate %s lost its evaluation or counts", tc.name, c.Name)
			}
		}
		if full, small := values(tc.snap), values(served); tc.snap.Version > 100 && small >= full {
			t.Fatalf("%s: served form %d values of %d", tc.name, small, full)
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
		if _, err := RestoreLearner(served.IntersectionID, served.ApproachID, []*snapT{served}, cfg); !errors.Is(err, ErrInvalidSnapshot) {
			t.Fatalf("%s: RestoreLearner(served) = %v, want ErrInvalidSnapshot", tc.name, err)
		}
	}
	if compared == 0 {
		t.Fatal("no forecasts compared")
	}
}

// TestModelPredictsLikeServed checks Learner.Model against the model compiled from the served snapshot: the same
// forecasts and errors, bit for bit, on frames before, at and after the last applied window, and the same drift
// flag, before and after training.
func TestModelPredictsLikeServed(t *testing.T) {
	t.Parallel()
	s := newTrafficSeries(4, 5)
	cfg := DefaultConfig()
	cfg.Horizons = []time.Duration{15 * time.Minute, time.Hour, 24 * time.Hour}
	cfg.MaxPending = 300
	l := mustLearner(t, s.names, cfg)
	var compared int
	check := func(at int) {
		t.Helper()
		for i, complete := range l.Snapshots() {
			want, err := Compile(Served(complete))
			if err != nil {
				t.Fatal(err)
			}
			got, drifting, ok, err := l.Model(cfg.Horizons[i])
			if !ok || err != nil {
				t.Fatalf("after %d frames: Model(%v) = %v, %v", at, cfg.Horizons[i], ok, err)
			}
			if drifting != complete.Drift.Drifting {
				t.Fatalf("after %d frames, horizon %v: drifting %v, snapshot says %v", at, cfg.Horizons[i], drifting, complete.Drift.Drifting)
			}
			for _, d := range []int{-300, -1, 0, 1, 3, 288} {
				f := s.frames[((at+d)%len(s.frames)+len(s.frames))%len(s.frames)]
				wf, werr := want.Predict(f, f.Approaches[0], 0.9)
				gf, gerr := got.Predict(f, f.Approaches[0], 0.9)
				if (werr == nil) != (gerr == nil) || (werr != nil && werr.Error() != gerr.Error()) || !sameForecast(wf, gf) {
					t.Fatalf("after %d frames, horizon %v: Model predicts %+v (%v), served %+v (%v)", at, cfg.Horizons[i], gf, gerr, wf, werr)
				}
				if werr == nil {
					compared++
				}
			}
		}
	}
	check(0)
	for i, f := range s.frames {
		mustApply(t, l, f, f.Approaches[0])
		if i == 10 || i == len(s.frames)/2 || i == len(s.frames)-1 {
			check(i + 1)
		}
	}
	if _, _, ok, _ := l.Model(2 * time.Minute); ok {
		t.Fatal("Model of a horizon the learner does not have")
	}
	if compared == 0 {
		t.Fatal("no forecast compared: every prediction failed")
	}
}
