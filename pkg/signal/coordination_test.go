package signal_test

import (
	"strings"
	"testing"

	"github.com/greenwave-city/greenwave/pkg/signal"
	"github.com/greenwave-city/greenwave/pkg/topology"
)

// TestCoordinationNote: the text states the corridor's common cycle and offset only for a plan that runs them;
// a fixed-time fallback, a rate-limited Webster plan or a pinned mode says it is not coordinated and what it
// runs instead.
func TestCoordinationNote(t *testing.T) {
	t.Parallel()
	in := twoPhase()
	in.FixedTime = map[string]float64{"NS": 25, "EW": 30} // cycle 25+5+30+5 = 65 s
	var trusted, stale []signal.Forecast
	for _, a := range in.Approaches {
		trusted = append(trusted, signal.Forecast{ApproachID: a.ID, FlowVPH: 300, LowerVPH: 280, UpperVPH: 320})
		stale = append(stale, signal.Forecast{ApproachID: a.ID, FlowVPH: 300, LowerVPH: 280, UpperVPH: 320, Stale: true})
	}
	limited := in
	limited.Timing.MaxCycleChangeS = 10
	tests := []struct {
		name        string
		in          topology.Intersection
		d           signal.DecideInput
		coordinated bool
		runs        string // what the note must say the plan runs
	}{
		{"predictive at the common cycle", in, signal.DecideInput{Forecasts: trusted, CycleS: 90, OffsetS: 40}, true, "common cycle 90s, offset 40s"},
		{"offset reduced modulo the cycle", in, signal.DecideInput{Forecasts: trusted, CycleS: 90, OffsetS: 130}, true, "common cycle 90s, offset 40s"},
		{"fixed-time fallback", in, signal.DecideInput{Forecasts: stale, CycleS: 90, OffsetS: 40}, false, "runs cycle 65s at offset 0"},
		{"fixed-time pinned", in, signal.DecideInput{Mode: signal.ModeFixedTime, Forecasts: trusted, CycleS: 90, OffsetS: 40}, false, "runs cycle 65s at offset 0"},
		{"rate-limited on the way to the common cycle", limited, signal.DecideInput{Forecasts: trusted, CycleS: 90, OffsetS: 40, PreviousCycleS: 60}, false, "runs cycle 70s at offset 40"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := signal.Decide(tt.in, tt.d)
			if err != nil {
				t.Fatal(err)
			}
			note := signal.CoordinationNote(p, "high-st", tt.d.CycleS, tt.d.OffsetS)
			if signal.Coordinated(p, tt.d.CycleS, tt.d.OffsetS) != tt.coordinated || !strings.Contains(note, tt.runs) {
				t.Fatalf("plan cycle %g offset %g (%s): note %q, want coordinated %v and %q", p.CycleS, p.OffsetS, p.Reason, note, tt.coordinated, tt.runs)
			}
			if !tt.coordinated && (strings.Contains(note, "common cycle 90s, offset") || !strings.Contains(note, "not coordinated")) {
				t.Fatalf("note %q claims a coordination the plan does not run", note)
			}
		})
	}
}
