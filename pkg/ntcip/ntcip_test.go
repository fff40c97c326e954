package ntcip

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/greenwave-city/greenwave/pkg/signal"
	"github.com/greenwave-city/greenwave/pkg/topology"
)

// intersection is two phases as in config/topology.yaml: NS (min 12 s with pedestrians) and EW (min 10 s).
func intersection() topology.Intersection {
	return topology.Intersection{ID: "I-100",
		Phases: []topology.Phase{
			{ID: "NS", MinGreenS: 10, MaxGreenS: 60, PedestrianMinS: 12, YellowS: 4, AllRedS: 2, LostTimeS: 4},
			{ID: "EW", MinGreenS: 8, MaxGreenS: 50, PedestrianMinS: 10, YellowS: 4, AllRedS: 2, LostTimeS: 4},
		},
		Timing: topology.Timing{MinCycleS: 50, MaxCycleS: 150}}
}

func mapping() Mapping {
	return Mapping{Pattern: 200, Split: 200, Phases: []PhaseMap{{"NS", []int{2, 6}}, {"EW", []int{4, 8}}}, Omit: []int{1, 5}}
}

func plan(cycle, offset float64, greens ...float64) signal.Plan {
	p := signal.Plan{IntersectionID: "I-100", CycleS: cycle, OffsetS: offset}
	for i, g := range greens {
		p.Phases = append(p.Phases, signal.PhaseTiming{PhaseID: []string{"NS", "EW"}[i], GreenS: g, YellowS: 4, AllRedS: 2})
	}
	return p
}

func TestEncode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		plan    signal.Plan
		m       Mapping
		want    Timing
		wantErr error
	}{
		{name: "whole seconds", plan: plan(90, 30, 48, 30), m: mapping(),
			want: Timing{Pattern: 200, Split: 200, CycleS: 90, OffsetS: 30, Rows: []SplitRow{
				{1, 0, SplitModePhaseOmitted, 0}, {2, 54, SplitModeNone, 1}, {4, 36, SplitModeNone, 0},
				{5, 0, SplitModePhaseOmitted, 0}, {6, 54, SplitModeNone, 1}, {8, 36, SplitModeNone, 0}}}},
		{name: "largest fraction gets the second", plan: plan(90, 12.4, 47.3, 30.7),
			m: Mapping{Pattern: 1, Split: 3, Phases: []PhaseMap{{"NS", []int{2}}, {"EW", []int{4}}}},
			want: Timing{Pattern: 1, Split: 3, CycleS: 90, OffsetS: 12, Rows: []SplitRow{
				{2, 53, SplitModeNone, 1}, {4, 37, SplitModeNone, 0}}}},
		{name: "a phase at its minimum gets the second first", plan: plan(68.6, 0, 12.4, 44.2),
			m: Mapping{Pattern: 1, Split: 1, Phases: []PhaseMap{{"NS", []int{2}}, {"EW", []int{4}}}},
			// NS floors to 18 s (green 12 s, its minimum): fine; EW 50.2 → 50; 69 - 68 = 1 s to the larger fraction (NS .4 vs EW .2)
			want: Timing{Pattern: 1, Split: 1, CycleS: 69, OffsetS: 0, Rows: []SplitRow{
				{2, 19, SplitModeNone, 1}, {4, 50, SplitModeNone, 0}}}},
		{name: "offset rounding to the cycle wraps to 0", plan: plan(90, 89.6, 48, 30),
			m: Mapping{Pattern: 1, Split: 1, Phases: []PhaseMap{{"NS", []int{2}}, {"EW", []int{4}}}},
			want: Timing{Pattern: 1, Split: 1, CycleS: 90, OffsetS: 0, Rows: []SplitRow{
				{2, 54, SplitModeNone, 1}, {4, 36, SplitModeNone, 0}}}},
		{name: "offset at the start of the coordinated yellow", plan: plan(90, 50.4, 48, 30),
			m: Mapping{Pattern: 1, Split: 1, Phases: []PhaseMap{{"NS", []int{2}}, {"EW", []int{4}}}, OffsetReference: OffsetYellowStart},
			// 50 s + NS green 48 s = 98 s, modulo the 90 s cycle
			want: Timing{Pattern: 1, Split: 1, CycleS: 90, OffsetS: 8, Rows: []SplitRow{
				{2, 54, SplitModeNone, 1}, {4, 36, SplitModeNone, 0}}}},
		{name: "unknown phase", plan: signal.Plan{IntersectionID: "I-100", CycleS: 90, Phases: []signal.PhaseTiming{
			{PhaseID: "NS", GreenS: 48, YellowS: 4, AllRedS: 2}, {PhaseID: "XX", GreenS: 30, YellowS: 4, AllRedS: 2}}},
			m: mapping(), wantErr: ErrPhaseMapping},
		{name: "missing phase", plan: plan(54, 0, 48), m: mapping(), wantErr: ErrPhaseMapping},
		{name: "cycle above 255 s", plan: plan(300, 0, 150, 138), m: mapping(), wantErr: ErrUnrepresentable},
		{name: "cycle below the minimum after rounding", plan: plan(47.8, 0, 11.9, 23.9), m: mapping(), wantErr: ErrUnrepresentable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Encode(intersection(), tc.m, tc.plan)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Encode: %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Encode =\n%+v, want\n%+v", got, tc.want)
			}
		})
	}
}

// TestEncodeInvariants: every valid plan Greenwave can make for the intersection encodes to splits adding up to
// the cycle, within a second of the plan's spans, with greens within bounds.
func TestEncodeInvariants(t *testing.T) {
	t.Parallel()
	in := intersection()
	m := Mapping{Pattern: 1, Split: 1, Phases: []PhaseMap{{"NS", []int{2}}, {"EW", []int{4}}}}
	for ns := 12.0; ns <= 60; ns += 0.37 {
		for ew := 10.0; ew <= 50; ew += 0.53 {
			p := plan(ns+ew+12, 0, ns, ew)
			p.OffsetS = p.CycleS * 0.7
			if err := signal.Validate(in, p); err != nil {
				continue
			}
			tm, err := Encode(in, m, p)
			if err != nil {
				// Rounding may push a green off a bound only when it sat within a second of it.
				if !errors.Is(err, ErrUnrepresentable) {
					t.Fatalf("ns %g ew %g: %v", ns, ew, err)
				}
				continue
			}
			sum := 0
			for i, r := range tm.Rows {
				sum += r.TimeS
				if d := float64(r.TimeS) - p.Phases[i].SpanS(); d <= -1 || d >= 1 {
					t.Fatalf("ns %g ew %g: split %d s for span %g s", ns, ew, r.TimeS, p.Phases[i].SpanS())
				}
			}
			if sum != tm.CycleS || tm.OffsetS < 0 || tm.OffsetS >= tm.CycleS {
				t.Fatalf("ns %g ew %g: %+v", ns, ew, tm)
			}
		}
	}
}

func TestCheckMapping(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		m      Mapping
		fields []string // FieldError.Field of each problem, in order
	}{
		{name: "valid", m: mapping()},
		{name: "unknown phase", m: Mapping{Pattern: 1, Split: 1, Phases: []PhaseMap{{"NS", []int{2}}, {"EW", []int{4}}, {"XX", []int{6}}}},
			fields: []string{"phases.XX"}},
		{name: "unmapped phase", m: Mapping{Pattern: 1, Split: 1, Phases: []PhaseMap{{"NS", []int{2}}}}, fields: []string{"phases"}},
		{name: "duplicate NTCIP phase", m: Mapping{Pattern: 1, Split: 1, Phases: []PhaseMap{{"NS", []int{2}}, {"EW", []int{2}}}},
			fields: []string{"phases.EW"}},
		{name: "omitted phase also mapped", m: Mapping{Pattern: 1, Split: 1, Phases: []PhaseMap{{"NS", []int{2}}, {"EW", []int{4}}}, Omit: []int{4}},
			fields: []string{"omit[0]"}},
		{name: "phase mapped twice", m: Mapping{Pattern: 1, Split: 1, Phases: []PhaseMap{{"NS", []int{2}}, {"EW", []int{4}}, {"NS", []int{6}}}},
			fields: []string{"phases.NS"}},
		{name: "no NTCIP phase, out of range", m: Mapping{Pattern: 1, Split: 1, Phases: []PhaseMap{{"NS", nil}, {"EW", []int{0}}}},
			fields: []string{"phases.NS", "phases.EW"}},
		{name: "pattern and split out of range", m: Mapping{Pattern: 254, Split: 0, Phases: mapping().Phases},
			fields: []string{"pattern", "split"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := CheckMapping(intersection(), tc.m)
			if tc.fields == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var me *MappingError
			if !errors.As(err, &me) || !errors.Is(err, ErrInvalidMapping) {
				t.Fatalf("CheckMapping: %v, want a *MappingError", err)
			}
			var got []string
			for _, p := range me.Problems {
				got = append(got, p.Field)
			}
			if !reflect.DeepEqual(got, tc.fields) {
				t.Errorf("fields %v, want %v (%v)", got, tc.fields, err)
			}
		})
	}
}

func TestVars(t *testing.T) {
	t.Parallel()
	tm := Timing{Pattern: 7, Split: 9, CycleS: 90, OffsetS: 5, Rows: []SplitRow{{2, 54, SplitModeNone, 1}}}
	got := append(append(tm.SplitVars(), tm.PatternVars()...), tm.ActivateVar())
	want := []Var{
		{"1.3.6.1.4.1.1206.4.2.1.4.9.1.3.9.2", 54}, {"1.3.6.1.4.1.1206.4.2.1.4.9.1.4.9.2", 2}, {"1.3.6.1.4.1.1206.4.2.1.4.9.1.5.9.2", 1},
		{"1.3.6.1.4.1.1206.4.2.1.4.7.1.2.7", 90}, {"1.3.6.1.4.1.1206.4.2.1.4.7.1.3.7", 5}, {"1.3.6.1.4.1.1206.4.2.1.4.7.1.4.7", 9},
		{"1.3.6.1.4.1.1206.4.2.1.4.14.0", 7},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("vars\n%v\nwant\n%v", got, want)
	}
	if !strings.HasPrefix(OIDSystemPatternControl, OIDCoord) {
		t.Error("OIDs outside coord")
	}
}

func TestClearances(t *testing.T) {
	t.Parallel()
	m := Mapping{Pattern: 1, Split: 1, Phases: []PhaseMap{{"NS", []int{2, 6}}, {"EW", []int{4}}}}
	p := plan(90, 0, 48, 30)
	p.Phases[1].YellowS, p.Phases[1].AllRedS = 3.5, 1.25
	want := []Var{
		{"1.3.6.1.4.1.1206.4.2.1.1.2.1.8.2", 40}, {"1.3.6.1.4.1.1206.4.2.1.1.2.1.9.2", 20},
		{"1.3.6.1.4.1.1206.4.2.1.1.2.1.8.6", 40}, {"1.3.6.1.4.1.1206.4.2.1.1.2.1.9.6", 20},
		{"1.3.6.1.4.1.1206.4.2.1.1.2.1.8.4", 35}, {"1.3.6.1.4.1.1206.4.2.1.1.2.1.9.4", 13},
	}
	if got := Clearances(m, p); !reflect.DeepEqual(got, want) {
		t.Errorf("Clearances\n%v\nwant\n%v", got, want)
	}
}

func TestMinimumGreenLimits(t *testing.T) {
	t.Parallel()
	m := Mapping{Pattern: 1, Split: 1, Phases: []PhaseMap{{"NS", []int{2}}, {"EW", []int{4, 8}}}}
	p := plan(90, 0, 47.5, 30.5)
	tm, err := Encode(intersection(), m, p)
	if err != nil {
		t.Fatal(err)
	}
	// splits 54 s (NS 53.5 + the second) and 36 s: greens 48 s and 30 s
	want := []Var{{"1.3.6.1.4.1.1206.4.2.1.1.2.1.4.2", 48}, {"1.3.6.1.4.1.1206.4.2.1.1.2.1.4.4", 30}, {"1.3.6.1.4.1.1206.4.2.1.1.2.1.4.8", 30}}
	if got := MinimumGreenLimits(m, p, tm); !reflect.DeepEqual(got, want) {
		t.Errorf("MinimumGreenLimits\n%v\nwant\n%v (timing %+v)", got, want, tm)
	}
}
