package signal_test

import (
	"errors"
	"testing"

	"github.com/greenwave-city/greenwave/pkg/signal"
)

func TestActuation(t *testing.T) {
	t.Parallel()
	in := twoPhase()
	webster := func(factor float64, n, s, e, w float64) signal.Plan {
		t.Helper()
		p, err := signal.Webster(in, flows(n, s, e, w), signal.Options{SaturationFactor: factor})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name    string
		plan    signal.Plan
		wantMax []float64 // per phase; the min is always the phase's min green, 5 s
		wantGap float64
	}{
		// Cycle 120 - 10 s of yellow and all-red leaves 110 s of green: the split stretched to it, within 60 s.
		{name: "light traffic stretches to the longest cycle", plan: webster(1, 300, 200, 300, 200), wantGap: 2},
		{name: "a saturated phase stops at its max green", plan: webster(1, 900, 100, 300, 100), wantGap: 2},
		// Weather lowers the saturation flow to 1440 veh/h: vehicles leave a queue 2.5 s apart.
		{name: "weather lengthens the gap-out", plan: webster(0.8, 300, 200, 300, 200), wantGap: 2.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := signal.Actuation(in, tt.plan)
			mustValid(t, in, got)
			greens := 0.0
			for _, pt := range tt.plan.Phases {
				greens += pt.GreenS
			}
			for i, pt := range got.Phases {
				want := min(60, max(pt.GreenS, pt.GreenS*110/greens))
				if pt.GreenS != tt.plan.Phases[i].GreenS || pt.MinGreenS != 5 || !near(pt.MaxGreenS, want, 1e-9) {
					t.Errorf("phase %s: green %g within [%g, %g], want %g within [5, %g]",
						pt.PhaseID, pt.GreenS, pt.MinGreenS, pt.MaxGreenS, tt.plan.Phases[i].GreenS, want)
				}
			}
			if !near(got.GapOutS, tt.wantGap, 1e-9) {
				t.Errorf("gap-out %g, want %g", got.GapOutS, tt.wantGap)
			}
			if got.CycleS != tt.plan.CycleS || got.OffsetS != tt.plan.OffsetS {
				t.Errorf("cycle or offset changed: %+v", got)
			}
		})
	}
	t.Run("invalid or bounded plans stay as they are", func(t *testing.T) {
		t.Parallel()
		invalid := webster(1, 300, 200, 300, 200)
		invalid.CycleS++
		if got := signal.Actuation(in, invalid); got.GapOutS != 0 || got.Phases[0].MaxGreenS != 0 {
			t.Errorf("an invalid plan got bounds: %+v", got)
		}
		bounded := signal.Actuation(in, webster(1, 300, 200, 300, 200))
		bounded.Phases[0].MaxGreenS = bounded.Phases[0].GreenS
		if got := signal.Actuation(in, bounded); got.Phases[0].MaxGreenS != bounded.Phases[0].GreenS {
			t.Errorf("bounds replaced: %+v", got)
		}
	})
}

func TestValidateActuation(t *testing.T) {
	t.Parallel()
	in := twoPhase()
	plain, err := signal.Webster(in, flows(300, 200, 300, 200), signal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	good := signal.Actuation(in, plain)
	mustValid(t, in, good)
	edit := func(f func(p *signal.Plan)) signal.Plan {
		p := good
		p.Phases = append([]signal.PhaseTiming(nil), good.Phases...)
		f(&p)
		return p
	}
	tests := []struct {
		name string
		plan signal.Plan
	}{
		{"min above green", edit(func(p *signal.Plan) { p.Phases[0].MinGreenS = p.Phases[0].GreenS + 1 })},
		{"min below the phase's min green", edit(func(p *signal.Plan) { p.Phases[0].MinGreenS = 4 })},
		{"max below green", edit(func(p *signal.Plan) { p.Phases[1].MaxGreenS = p.Phases[1].GreenS - 1 })},
		{"max above the phase's max green", edit(func(p *signal.Plan) { p.Phases[1].MaxGreenS = 61 })},
		{"bounds on one phase only", edit(func(p *signal.Plan) { p.Phases[1].MinGreenS, p.Phases[1].MaxGreenS = 0, 0 })},
		{"bounds without gap-out", edit(func(p *signal.Plan) { p.GapOutS = 0 })},
		{"gap-out too long", edit(func(p *signal.Plan) { p.GapOutS = signal.MaxGapOutS + 1 })},
		{"gap-out without bounds", func() signal.Plan { p := plain; p.GapOutS = 2; return p }()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var pe *signal.PlanError
			if err := signal.Validate(in, tc.plan); !errors.As(err, &pe) || !pe.Has(signal.ViolationActuation) || len(pe.Violations) != 1 {
				t.Errorf("Validate = %v, want one actuation violation", err)
			}
		})
	}
}

func TestDecideActuation(t *testing.T) {
	t.Parallel()
	in := twoPhase()
	tests := []struct {
		mode    signal.Mode
		bounded bool
	}{
		{signal.ModeAdaptive, true},   // a fixed-time fallback too: no forecasts
		{signal.ModeTimeOfDay, true},  // no history: the fixed-time plan
		{signal.ModeFixedTime, false}, // the operator pinned fixed time
	}
	for _, tt := range tests {
		p, err := signal.Decide(in, signal.DecideInput{Mode: tt.mode})
		if err != nil {
			t.Fatal(err)
		}
		mustValid(t, in, p)
		if got := p.GapOutS > 0 && p.Phases[0].MaxGreenS > 0; got != tt.bounded {
			t.Errorf("mode %v: bounds %v, want %v: %+v", tt.mode, got, tt.bounded, p)
		}
	}
}
