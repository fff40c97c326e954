package models

import (
	"testing"

	"github.com/greenwave-city/greenwave/pkg/train"
)

func snapshot(version uint64, featureSet uint32) *train.Snapshot {
	return &train.Snapshot{ModelID: "i1/n/900/flow", IntersectionID: "i1", ApproachID: "n", HorizonS: 900,
		Target: train.TargetFlow, Version: version, FeatureSetVersion: featureSet}
}

// TestPutKeepsTheNewestVersion: the version alone decides which snapshot of a model is held, so the model a
// feature-set upgrade starts (versions continued) replaces the old one, and a replayed old snapshot does not
// come back.
func TestPutKeepsTheNewestVersion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		held, put   *train.Snapshot
		wantStored  bool
		wantVersion uint64
	}{
		{"first snapshot", nil, snapshot(3, 1), true, 3},
		{"newer version", snapshot(3, 1), snapshot(4, 1), true, 4},
		{"same version delivered again", snapshot(3, 1), snapshot(3, 1), true, 3},
		{"older version replayed", snapshot(4, 1), snapshot(3, 1), false, 4},
		{"newer feature set, newer version", snapshot(10, 1), snapshot(11, 2), true, 11},
		{"old feature set replayed after an upgrade", snapshot(11, 2), snapshot(10, 1), false, 11},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := NewStore()
			if tc.held != nil {
				st.Put(tc.held)
			}
			if got := st.Put(tc.put); got != tc.wantStored {
				t.Errorf("Put = %v, want %v", got, tc.wantStored)
			}
			got, ok := st.Get(tc.put.ModelID)
			if !ok || got.Version != tc.wantVersion || st.Len() != 1 {
				t.Errorf("holds version %d (%v, %d models), want %d", got.Version, ok, st.Len(), tc.wantVersion)
			}
			if tc.wantStored && got != tc.put {
				t.Error("the stored snapshot is not the one put")
			}
		})
	}
}

// TestChangedFiresOnStoredPuts: the channel taken before a Put is closed by a Put that stores a snapshot, and
// only by one that stores (an older version replayed changes nothing); a new channel waits for the next change.
func TestChangedFiresOnStoredPuts(t *testing.T) {
	t.Parallel()
	st := NewStore()
	ch := st.Changed()
	if st.Changed() != ch {
		t.Fatal("two waiters of one change got different channels")
	}
	st.Put(snapshot(2, 1))
	select {
	case <-ch:
	default:
		t.Fatal("storing a snapshot did not close the channel")
	}
	ch = st.Changed()
	st.Put(snapshot(1, 1)) // older: not stored
	select {
	case <-ch:
		t.Fatal("a Put that stored nothing closed the channel")
	default:
	}
	st.Put(snapshot(3, 1))
	select {
	case <-ch:
	default:
		t.Fatal("the next stored snapshot did not close the channel")
	}
}

func TestMatch(t *testing.T) {
	t.Parallel()
	s := snapshot(1, 1)
	tests := []struct {
		name string
		f    Filter
		want bool
	}{
		{"empty", Filter{}, true},
		{"intersection", Filter{IntersectionIDs: []string{"i2", "i1"}}, true},
		{"other intersection", Filter{IntersectionIDs: []string{"i2"}}, false},
		{"other approach", Filter{ApproachIDs: []string{"s"}}, false},
		{"horizon", Filter{HorizonsS: []uint32{300, 900}}, true},
		{"other horizon", Filter{HorizonsS: []uint32{300}}, false},
		{"target", Filter{Target: train.TargetFlow}, true},
		{"other target", Filter{Target: train.TargetSpeed}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := Match(tc.f, s); got != tc.want {
				t.Errorf("Match(%+v) = %v, want %v", tc.f, got, tc.want)
			}
		})
	}
}
