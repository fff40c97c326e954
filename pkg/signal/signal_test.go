package signal_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/greenwave-city/greenwave/pkg/signal"
	"github.com/greenwave-city/greenwave/pkg/topology"
)

// phase builds a phase; lost time equal to yellow + all-red makes displayed green equal effective green.
func phase(id string, approaches []string, minG, maxG, yellow, allRed, lost float64) topology.Phase {
	return topology.Phase{ID: id, Approaches: approaches, MinGreenS: minG, MaxGreenS: maxG, YellowS: yellow, AllRedS: allRed, LostTimeS: lost}
}

func approaches(ids ...string) []topology.Approach {
	as := make([]topology.Approach, len(ids))
	for i, id := range ids {
		as[i] = topology.Approach{ID: id, Lanes: 1, SaturationFlowVPHPerLane: 1800, Detectors: []string{"d-" + id}}
	}
	return as
}

// twoPhase is a textbook two-phase intersection: s = 1800 veh/h per approach, yellow 4 + all-red 1 = lost time 5
// per phase (so displayed green = effective green), L = 10 s, cycle 30..120 s.
func twoPhase() topology.Intersection {
	return topology.Intersection{
		ID:         "X",
		Approaches: approaches("N", "S", "E", "W"),
		Phases: []topology.Phase{
			phase("NS", []string{"N", "S"}, 5, 60, 4, 1, 5),
			phase("EW", []string{"E", "W"}, 5, 60, 4, 1, 5),
		},
		Timing: topology.Timing{MinCycleS: 30, MaxCycleS: 120},
	}
}

func flows(n, s, e, w float64) map[string]float64 {
	return map[string]float64{"N": n, "S": s, "E": e, "W": w}
}

func greens(p signal.Plan) []float64 {
	g := make([]float64, len(p.Phases))
	for i, pt := range p.Phases {
		g[i] = pt.GreenS
	}
	return g
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func checkGreens(t *testing.T, p signal.Plan, want []float64, tol float64) {
	t.Helper()
	got := greens(p)
	if len(got) != len(want) {
		t.Fatalf("greens %v, want %v", got, want)
	}
	for i := range want {
		if !near(got[i], want[i], tol) {
			t.Errorf("green[%d] (%s) = %.6f, want %.6f (all %v)", i, p.Phases[i].PhaseID, got[i], want[i], got)
		}
	}
}

func mustValid(t *testing.T, in topology.Intersection, p signal.Plan) {
	t.Helper()
	if err := signal.Validate(in, p); err != nil {
		t.Fatalf("plan invalid: %v\nplan: %+v", err, p)
	}
}

func loadExample(t testing.TB) topology.Topology {
	t.Helper()
	topo, err := topology.Load("../../config/topology.yaml")
	if err != nil {
		t.Fatalf("load example topology: %v", err)
	}
	return topo
}

func TestWebsterTextbook(t *testing.T) {
	t.Parallel()
	threePhase := topology.Intersection{
		ID:         "X",
		Approaches: approaches("A", "B", "C"),
		Phases: []topology.Phase{
			phase("1", []string{"A"}, 5, 60, 3, 1, 4),
			phase("2", []string{"B"}, 5, 60, 3, 1, 4),
			phase("3", []string{"C"}, 5, 60, 3, 1, 4),
		},
		Timing: topology.Timing{MinCycleS: 30, MaxCycleS: 120},
	}
	// Yellow 4, all-red 2, lost time 4: effective green g = G + 4 + 2 − 4 = G + 2.
	displayed := twoPhase()
	displayed.Phases[0] = phase("NS", []string{"N", "S"}, 5, 60, 4, 2, 4)
	displayed.Phases[1] = phase("EW", []string{"E", "W"}, 5, 60, 4, 2, 4)
	tests := []struct {
		name   string
		in     topology.Intersection
		flows  map[string]float64
		wantY  float64
		wantL  float64
		cycle  float64
		greens []float64
	}{
		{
			// y_NS = max(540, 450)/1800 = 0.3, y_EW = max(360, 300)/1800 = 0.2, Y = 0.5, L = 5 + 5 = 10.
			// C0 = (1.5·10 + 5)/(1 − 0.5) = 20/0.5 = 40 s. Effective green 40 − 10 = 30 s split 0.3:0.2 → 18 s
			// and 12 s; lost time = yellow + all-red, so displayed = effective. 18+5 + 12+5 = 40.
			name: "two-phase", in: twoPhase(), flows: flows(540, 450, 360, 300),
			wantY: 0.5, wantL: 10, cycle: 40, greens: []float64{18, 12},
		},
		{
			// y = 450/1800 = 0.25, 360/1800 = 0.2, 0.2; Y = 0.65; L = 3·4 = 12.
			// C0 = (1.5·12 + 5)/(1 − 0.65) = 23/0.35 = 65.714286 s; effective green 53.714286 s:
			// 0.25/0.65 · 53.714286 = 20.659341, 0.2/0.65 · 53.714286 = 16.527473 (twice).
			name: "three-phase", in: threePhase, flows: map[string]float64{"A": 450, "B": 360, "C": 360},
			wantY: 0.65, wantL: 12, cycle: 23 / 0.35, greens: []float64{20.659341, 16.527473, 16.527473},
		},
		{
			// Y = 0.5, L = 8: C0 = (12 + 5)/0.5 = 34 s; effective green 26 s → 15.6 and 10.4; displayed
			// G = g − 2 → 13.6 and 8.4; 13.6+6 + 8.4+6 = 34.
			name: "effective vs displayed green", in: displayed, flows: flows(540, 0, 360, 0),
			wantY: 0.5, wantL: 8, cycle: 34, greens: []float64{13.6, 8.4},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := signal.Webster(tc.in, tc.flows, signal.Options{})
			if err != nil {
				t.Fatal(err)
			}
			mustValid(t, tc.in, p)
			if !near(p.Y, tc.wantY, 1e-12) || !near(p.LostTimeS, tc.wantL, 1e-12) {
				t.Errorf("Y=%g L=%g, want %g, %g", p.Y, p.LostTimeS, tc.wantY, tc.wantL)
			}
			if !near(p.CycleS, tc.cycle, 1e-9) {
				t.Errorf("cycle %.9f, want %.9f", p.CycleS, tc.cycle)
			}
			checkGreens(t, p, tc.greens, 1e-6)
			if p.Oversaturated || p.CycleRateLimited || p.Reason != signal.ReasonPredictive || p.SaturationFactor != 1 {
				t.Errorf("unexpected flags: %+v", p)
			}
			if !strings.Contains(p.Detail, "C0=") {
				t.Errorf("detail %q does not show C0", p.Detail)
			}
		})
	}
}

func TestWebsterClamping(t *testing.T) {
	t.Parallel()
	minGreen := twoPhase()
	minGreen.Phases[1].MinGreenS = 15
	pedestrian := twoPhase()
	pedestrian.Phases[1].PedestrianMinS = 15
	maxGreen := twoPhase()
	maxGreen.Phases[0].MaxGreenS = 20
	bothMax := twoPhase()
	bothMax.Phases[0].MaxGreenS, bothMax.Phases[1].MaxGreenS = 20, 20
	shortMin := twoPhase()
	shortMin.Timing.MinCycleS = 20
	shortMin.Phases[0].LostTimeS, shortMin.Phases[1].LostTimeS = 10, 10
	chain := topology.Intersection{
		ID:         "X",
		Approaches: approaches("A", "B", "C"),
		Phases: []topology.Phase{
			phase("1", []string{"A"}, 5, 15, 4, 1, 5),
			phase("2", []string{"B"}, 5, 14, 4, 1, 5),
			phase("3", []string{"C"}, 5, 60, 4, 1, 5),
		},
		Timing: topology.Timing{MinCycleS: 30, MaxCycleS: 120},
	}
	tests := []struct {
		name   string
		in     topology.Intersection
		flows  map[string]float64
		cycle  float64
		greens []float64
		detail string
	}{
		{
			// Y = 0.45 + 0.02 = 0.47, C0 = 20/0.53 = 37.735849; g_EW = 0.02/0.47·27.735849 = 1.18 < 15 → 15;
			// NS takes the rest: 27.735849 − 15 = 12.735849.
			name: "min green", in: minGreen, flows: flows(810, 0, 36, 0),
			cycle: 20 / 0.53, greens: []float64{20/0.53 - 25, 15}, detail: "EW at min green",
		},
		{
			name: "pedestrian min green", in: pedestrian, flows: flows(810, 0, 36, 0),
			cycle: 20 / 0.53, greens: []float64{20/0.53 - 25, 15}, detail: "EW at min green",
		},
		{
			// Y = 0.6 + 0.1 = 0.7, C0 = 20/0.3 = 66.67, g_NS = 6/7·56.67 = 48.6 > 20 → 20, EW gets 36.67.
			name: "max green", in: maxGreen, flows: flows(1080, 0, 180, 0),
			cycle: 20 / 0.3, greens: []float64{20, 20/0.3 - 30}, detail: "NS at max green",
		},
		{
			// Y = 0.8, C0 = 20/0.2 = 100 s, but two max greens of 20 s fit only 20+5+20+5 = 50 s.
			name: "cycle above max greens", in: bothMax, flows: flows(900, 0, 540, 0),
			cycle: 50, greens: []float64{20, 20}, detail: "cycle bounds",
		},
		{
			// Y = 0.3 + 0.25 + 0.05 = 0.6, L = 15, C0 = 27.5/0.4 = 68.75, effective green 53.75.
			// Proportional: 26.875 > 15 → phase 1 held at 15; the rest 38.75 split 0.25:0.05 gives phase 2
			// 32.29 > 14 → held at 14; phase 3 takes 53.75 − 15 − 14 = 24.75 (the fixed point).
			name: "cascading redistribution", in: chain, flows: map[string]float64{"A": 540, "B": 450, "C": 90},
			cycle: 68.75, greens: []float64{15, 14, 24.75}, detail: "2 at max green",
		},
		{
			// No traffic: the shortest allowed cycle, min cycle 30 > 2·(5+5); the 20 s of green are shared equally.
			name: "zero flows", in: twoPhase(), flows: flows(0, 0, 0, 0),
			cycle: 30, greens: []float64{10, 10}, detail: "no traffic",
		},
		{
			// No traffic, lost time 10 per phase: not C0 = 1.5·20 + 5 = 35 s but the shortest cycle allowed,
			// 2·(5+5) = 20 s, all at min green.
			name: "zero flows, short min cycle", in: shortMin, flows: flows(0, 0, 0, 0),
			cycle: 20, greens: []float64{5, 5}, detail: "no traffic",
		},
		{
			// Only NS has traffic (Y = 0.5, C0 = 40): EW stays at min green and NS takes the rest, 40 − 10 − 5.
			name: "one phase without traffic", in: twoPhase(), flows: flows(900, 0, 0, 0),
			cycle: 40, greens: []float64{25, 5}, detail: "EW at min green",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := signal.Webster(tc.in, tc.flows, signal.Options{})
			if err != nil {
				t.Fatal(err)
			}
			mustValid(t, tc.in, p)
			if !near(p.CycleS, tc.cycle, 1e-9) {
				t.Errorf("cycle %.9f, want %.9f", p.CycleS, tc.cycle)
			}
			checkGreens(t, p, tc.greens, 1e-6)
			if !strings.Contains(p.Detail, tc.detail) {
				t.Errorf("detail %q does not mention %q", p.Detail, tc.detail)
			}
		})
	}
}

func TestWebsterOversaturation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		flows     map[string]float64
		opts      signal.Options
		over      bool
		cycle     float64
		greens    []float64 // nil: not checked
		wantDelay bool
	}{
		// Y = 0.5 + 0.45 = 0.95 ≥ 0.9: max cycle 120, effective green 110 split 0.5:0.45.
		{name: "Y 0.95", flows: flows(900, 0, 810, 0), over: true, cycle: 120, greens: []float64{110 * 0.5 / 0.95, 110 * 0.45 / 0.95}},
		// Y = 0.45 + 0.45 = 0.9 exactly is oversaturated.
		{name: "Y at threshold", flows: flows(810, 0, 810, 0), over: true, cycle: 120, greens: []float64{55, 55}},
		// Y = 0.85 is below the default threshold (C0 = 20/0.15 = 133 → max cycle, not flagged) …
		{name: "Y 0.85 default", flows: flows(900, 0, 630, 0), over: false, cycle: 120},
		// … and above a configured one.
		{name: "Y 0.85 threshold 0.8", flows: flows(900, 0, 630, 0), opts: signal.Options{OversaturationY: 0.8}, over: true, cycle: 120},
		// Absurd flows are oversaturated, not invalid; splits still by ratio (equal here), each phase capped.
		{name: "1e12 veh/h", flows: flows(1e12, 1e12, 1e12, 0), over: true, cycle: 120, greens: []float64{55, 55}},
		{name: "max float", flows: flows(math.MaxFloat64, 0, 1, 0), over: true, cycle: 120, greens: []float64{60, 50}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := twoPhase()
			p, err := signal.Webster(in, tc.flows, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			mustValid(t, in, p)
			if p.Oversaturated != tc.over {
				t.Errorf("oversaturated = %v, want %v (Y=%g)", p.Oversaturated, tc.over, p.Y)
			}
			if tc.over && !strings.Contains(p.Detail, "oversaturated") {
				t.Errorf("detail %q does not explain oversaturation", p.Detail)
			}
			if !near(p.CycleS, tc.cycle, 1e-9) {
				t.Errorf("cycle %g, want %g", p.CycleS, tc.cycle)
			}
			if tc.greens != nil {
				checkGreens(t, p, tc.greens, 1e-6)
			}
			if !(p.EstimatedDelayS >= 0) || math.IsInf(p.EstimatedDelayS, 0) {
				t.Errorf("estimated delay %g", p.EstimatedDelayS)
			}
		})
	}
}

func ptr(v float64) *float64 { return &v }

func TestSaturationFactor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name             string
		rain, snow, visi *float64
		want             float64
	}{
		{"nothing observed", nil, nil, nil, 1},
		{"dry, clear", ptr(0), ptr(0), ptr(10000), 1},
		{"trace", ptr(0.05), nil, nil, 1},
		{"light rain", ptr(1), nil, nil, 0.95},
		{"moderate rain", ptr(2.5), nil, nil, 0.92},
		{"heavy rain", ptr(10), nil, nil, 0.88},
		{"light snow", ptr(0.5), ptr(0.5), nil, 0.88},
		{"heavy snow", ptr(3), ptr(3), nil, 0.80},
		{"heavy rain and light snow: the worse applies", ptr(10), ptr(0.2), nil, 0.88},
		{"fog", nil, nil, ptr(150), 0.90},
		{"visibility 200 m is not fog", nil, nil, ptr(200), 1},
		{"heavy snow in fog", nil, ptr(5), ptr(50), 0.72},
		{"NaN and negative ignored", ptr(math.NaN()), ptr(-1), ptr(math.NaN()), 1},
		{"infinite ignored", ptr(math.Inf(1)), ptr(math.Inf(1)), ptr(math.Inf(-1)), 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := signal.SaturationFactor(tc.rain, tc.snow, tc.visi); !near(got, tc.want, 1e-12) {
				t.Errorf("SaturationFactor = %g, want %g", got, tc.want)
			}
		})
	}

	t.Run("applied to saturation flows", func(t *testing.T) {
		t.Parallel()
		// s·f = 1800·0.8 = 1440: y = 360/1440 = 0.25 and 216/1440 = 0.15; Y = 0.4; C0 = 20/0.6 = 33.33;
		// effective green 23.33 split 0.25:0.15 → 14.583 and 8.75.
		in := twoPhase()
		p, err := signal.Webster(in, flows(360, 0, 216, 0), signal.Options{SaturationFactor: 0.8})
		if err != nil {
			t.Fatal(err)
		}
		mustValid(t, in, p)
		if !near(p.Y, 0.4, 1e-12) || p.SaturationFactor != 0.8 || !strings.Contains(p.Detail, "weather") {
			t.Errorf("Y=%g factor=%g detail=%q", p.Y, p.SaturationFactor, p.Detail)
		}
		checkGreens(t, p, []float64{(20/0.6 - 10) * 0.625, (20/0.6 - 10) * 0.375}, 1e-9)
	})
}

func TestWebsterRateLimit(t *testing.T) {
	t.Parallel()
	limited := twoPhase()
	limited.Timing.MaxCycleChangeS = 10
	tests := []struct {
		name    string
		in      topology.Intersection
		flows   map[string]float64
		prev    float64
		cycle   float64
		limited bool
	}{
		// C0 = 40 (see TestWebsterTextbook).
		{"no previous plan", limited, flows(540, 0, 360, 0), 0, 40, false},
		{"within the limit", limited, flows(540, 0, 360, 0), 45, 40, false},
		{"shrinking held back", limited, flows(540, 0, 360, 0), 60, 50, true},
		{"oversaturation ramps up", limited, flows(900, 0, 900, 0), 60, 70, true},
		{"no limit configured", twoPhase(), flows(540, 0, 360, 0), 100, 40, false},
		// The hard bounds win: a previous cycle of 200 s (old configuration) cannot keep 190 s.
		{"bounds win", limited, flows(540, 0, 360, 0), 200, 120, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := signal.Webster(tc.in, tc.flows, signal.Options{PreviousCycleS: tc.prev})
			if err != nil {
				t.Fatal(err)
			}
			mustValid(t, tc.in, p)
			if !near(p.CycleS, tc.cycle, 1e-9) || p.CycleRateLimited != tc.limited {
				t.Errorf("cycle %g limited %v, want %g %v (%s)", p.CycleS, p.CycleRateLimited, tc.cycle, tc.limited, p.Detail)
			}
			if tc.limited && !strings.Contains(p.Detail, "rate-limited") {
				t.Errorf("detail %q does not mention the rate limit", p.Detail)
			}
		})
	}
}

func TestWebsterInvalidInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		flows map[string]float64
		opts  signal.Options
	}{
		{"NaN flow", flows(math.NaN(), 0, 0, 0), signal.Options{}},
		{"negative flow", flows(100, -1, 0, 0), signal.Options{}},
		{"infinite flow", flows(100, 0, math.Inf(1), 0), signal.Options{}},
		{"negative infinite flow", flows(100, 0, math.Inf(-1), 0), signal.Options{}},
		{"missing approach", map[string]float64{"N": 1, "S": 1, "E": 1}, signal.Options{}},
		{"unknown approach", map[string]float64{"N": 1, "S": 1, "E": 1, "W": 1, "Q": 1}, signal.Options{}},
		{"nil flows", nil, signal.Options{}},
		{"saturation factor too low", flows(1, 1, 1, 1), signal.Options{SaturationFactor: 0.1}},
		{"saturation factor NaN", flows(1, 1, 1, 1), signal.Options{SaturationFactor: math.NaN()}},
		{"threshold 1", flows(1, 1, 1, 1), signal.Options{OversaturationY: 1}},
		{"previous cycle NaN", flows(1, 1, 1, 1), signal.Options{PreviousCycleS: math.NaN()}},
		{"previous cycle negative", flows(1, 1, 1, 1), signal.Options{PreviousCycleS: -5}},
		{"cycle infinite", flows(1, 1, 1, 1), signal.Options{CycleS: math.Inf(1)}},
		{"offset NaN", flows(1, 1, 1, 1), signal.Options{OffsetS: math.NaN()}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := signal.Webster(twoPhase(), tc.flows, tc.opts)
			if !errors.Is(err, signal.ErrInvalidInput) {
				t.Fatalf("err = %v, want ErrInvalidInput", err)
			}
			if p.Phases != nil {
				t.Errorf("plan returned with error: %+v", p)
			}
		})
	}

	t.Run("infeasible intersection", func(t *testing.T) {
		t.Parallel()
		in := twoPhase()
		in.Phases[0].MaxGreenS, in.Phases[1].MaxGreenS = 5, 5 // 2·(5+5) = 20 < min cycle 30
		if _, err := signal.Webster(in, flows(1, 1, 1, 1), signal.Options{}); !errors.Is(err, signal.ErrInfeasible) {
			t.Fatalf("err = %v, want ErrInfeasible", err)
		}
	})
}

func TestWebsterCycleAndOffsetOptions(t *testing.T) {
	t.Parallel()
	in := twoPhase()
	p, err := signal.Webster(in, flows(540, 0, 360, 0), signal.Options{CycleS: 90, OffsetS: -10, Reason: signal.ReasonTimeOfDay})
	if err != nil {
		t.Fatal(err)
	}
	mustValid(t, in, p)
	// Effective green 80 split 0.3:0.2 → 48 and 32.
	if p.CycleS != 90 || p.OffsetS != 80 || p.Reason != signal.ReasonTimeOfDay {
		t.Errorf("cycle %g offset %g reason %v", p.CycleS, p.OffsetS, p.Reason)
	}
	checkGreens(t, p, []float64{48, 32}, 1e-9)
}

func TestOffsets(t *testing.T) {
	t.Parallel()
	topo := loadExample(t)
	// In the example every pair links both ways: I-100 ⇄ I-101 40 s, I-101 ⇄ I-102 35 s.
	tests := []struct {
		name  string
		ins   []topology.Intersection
		root  string
		cycle float64
		want  map[string]float64
	}{
		{"from I-100", topo.Intersections, "I-100", 90, map[string]float64{"I-100": 0, "I-101": 40, "I-102": 75}},
		{"wraps modulo the cycle", topo.Intersections, "I-100", 60, map[string]float64{"I-100": 0, "I-101": 40, "I-102": 15}},
		{"from the other end", topo.Intersections, "I-102", 90, map[string]float64{"I-102": 0, "I-101": 35, "I-100": 75}},
		{"from the middle", topo.Intersections, "I-101", 90, map[string]float64{"I-101": 0, "I-100": 40, "I-102": 35}},
		{
			// Only A names B (platoons B → A take 30 s): from A, B must start 30 s earlier: −30 mod 90 = 60.
			"towards the root", []topology.Intersection{
				{ID: "A", Neighbours: []topology.Link{{Intersection: "B", TravelTimeS: 30}}},
				{ID: "B", Neighbours: []topology.Link{{Intersection: "C", TravelTimeS: 20}}},
				{ID: "C"},
				{ID: "D"}, // not connected
			}, "A", 90, map[string]float64{"A": 0, "B": 60, "C": 40},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := signal.Offsets(tc.ins, tc.root, tc.cycle)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Errorf("offsets %v, want %v", got, tc.want)
			}
			for id, w := range tc.want {
				if g, ok := got[id]; !ok || !near(g, w, 1e-9) {
					t.Errorf("offset[%s] = %v, want %v", id, g, w)
				}
			}
		})
	}

	t.Run("coordinated corridor", func(t *testing.T) {
		t.Parallel()
		// Individual plans, the largest cycle as common cycle, offsets, plans again: all valid, common cycle.
		perFlows := map[string]map[string]float64{
			"I-100": flows(900, 700, 300, 250), "I-101": flows(1200, 1100, 800, 700), "I-102": flows(400, 300, 900, 800),
		}
		common := 0.0
		for _, in := range topo.Intersections {
			p, err := signal.Webster(in, perFlows[in.ID], signal.Options{})
			if err != nil {
				t.Fatal(err)
			}
			common = math.Max(common, p.CycleS)
		}
		offs, err := signal.Offsets(topo.Intersections, "I-100", common)
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range topo.Intersections {
			p, err := signal.Webster(in, perFlows[in.ID], signal.Options{CycleS: common, OffsetS: offs[in.ID]})
			if err != nil {
				t.Fatal(err)
			}
			mustValid(t, in, p)
			if p.CycleS != common || p.OffsetS != offs[in.ID] {
				t.Errorf("%s: cycle %g offset %g, want %g %g", in.ID, p.CycleS, p.OffsetS, common, offs[in.ID])
			}
		}
	})

	for _, tc := range []struct {
		name  string
		ins   []topology.Intersection
		root  string
		cycle float64
	}{
		{"zero cycle", topo.Intersections, "I-100", 0},
		{"NaN cycle", topo.Intersections, "I-100", math.NaN()},
		{"unknown root", topo.Intersections, "I-999", 90},
		{"duplicate", []topology.Intersection{{ID: "A"}, {ID: "A"}}, "A", 90},
		{"infinite travel time", []topology.Intersection{{ID: "A", Neighbours: []topology.Link{{Intersection: "B", TravelTimeS: math.Inf(1)}}}, {ID: "B"}}, "A", 90},
	} {
		t.Run("error/"+tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := signal.Offsets(tc.ins, tc.root, tc.cycle); !errors.Is(err, signal.ErrInvalidInput) {
				t.Errorf("err = %v, want ErrInvalidInput", err)
			}
		})
	}
}

func TestFixedTimePlan(t *testing.T) {
	t.Parallel()
	topo := loadExample(t)
	for _, in := range topo.Intersections {
		t.Run("example "+in.ID, func(t *testing.T) {
			t.Parallel()
			p, err := signal.FixedTimePlan(in)
			if err != nil {
				t.Fatal(err)
			}
			mustValid(t, in, p)
			// NS 34 + 4 + 2, EW 24 + 4 + 2.
			if p.CycleS != 70 || p.Reason != signal.ReasonFixedTime || p.OffsetS != 0 {
				t.Errorf("cycle %g reason %v offset %g", p.CycleS, p.Reason, p.OffsetS)
			}
			checkGreens(t, p, []float64{34, 24}, 0)
		})
	}
	t.Run("empty: minimum greens stretched to the minimum cycle", func(t *testing.T) {
		t.Parallel()
		in := topo.Intersections[0]
		in.FixedTime = nil
		p, err := signal.FixedTimePlan(in)
		if err != nil {
			t.Fatal(err)
		}
		mustValid(t, in, p)
		// Minimum greens 12 (pedestrian) and 10 (pedestrian) + 2·6 = 34 s < min cycle 50: 16 s more, 8 s each.
		if p.CycleS != 50 {
			t.Errorf("cycle %g, want 50", p.CycleS)
		}
		checkGreens(t, p, []float64{20, 18}, 1e-9)
	})
	t.Run("minimum plan passes max greens on", func(t *testing.T) {
		t.Parallel()
		in := twoPhase()
		in.Timing.MinCycleS = 80
		in.Phases[0].MaxGreenS = 10
		p, err := signal.MinimumPlan(in)
		if err != nil {
			t.Fatal(err)
		}
		mustValid(t, in, p)
		checkGreens(t, p, []float64{10, 60}, 1e-9)
	})
	for _, tc := range []struct {
		name  string
		fixed map[string]float64
	}{
		{"green below minimum", map[string]float64{"NS": 5, "EW": 24}},
		{"green above maximum", map[string]float64{"NS": 80, "EW": 24}},
		{"cycle too short", map[string]float64{"NS": 12, "EW": 10}},
		{"phase missing", map[string]float64{"NS": 34}},
		{"unknown phase", map[string]float64{"NS": 34, "EW": 24, "XX": 10}},
		{"NaN green", map[string]float64{"NS": math.NaN(), "EW": 24}},
	} {
		t.Run("invalid/"+tc.name, func(t *testing.T) {
			t.Parallel()
			in := topo.Intersections[0]
			in.FixedTime = tc.fixed
			if _, err := signal.FixedTimePlan(in); err == nil {
				t.Fatal("invalid fixed-time plan accepted")
			}
			p, err := signal.Safe(in, signal.Plan{}, errors.New("no prediction"))
			if err != nil {
				t.Fatal(err)
			}
			mustValid(t, in, p)
			if !strings.Contains(p.Detail, "minimum plan") || !strings.Contains(p.Detail, "fixed-time plan rejected") {
				t.Errorf("detail %q", p.Detail)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	in := loadExample(t).Intersections[0]
	good, err := signal.FixedTimePlan(in)
	if err != nil {
		t.Fatal(err)
	}
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
		want []signal.ViolationKind
	}{
		{"other intersection", edit(func(p *signal.Plan) { p.IntersectionID = "I-101" }), []signal.ViolationKind{signal.ViolationIntersection}},
		{"phase missing", edit(func(p *signal.Plan) { p.Phases = p.Phases[:1]; p.CycleS = 40 }), []signal.ViolationKind{signal.ViolationPhases, signal.ViolationCycleBounds}},
		{"phases swapped", edit(func(p *signal.Plan) { p.Phases[0], p.Phases[1] = p.Phases[1], p.Phases[0] }), []signal.ViolationKind{signal.ViolationPhases}},
		{"phase twice", edit(func(p *signal.Plan) { p.Phases[1] = p.Phases[0]; p.CycleS = 80 }), []signal.ViolationKind{signal.ViolationPhases}},
		{"unknown phase", edit(func(p *signal.Plan) { p.Phases[1].PhaseID = "XX" }), []signal.ViolationKind{signal.ViolationPhases}},
		{"extra phase", edit(func(p *signal.Plan) {
			p.Phases = append(p.Phases, signal.PhaseTiming{PhaseID: "XX", GreenS: 10})
			p.CycleS = 80
		}), []signal.ViolationKind{signal.ViolationPhases}},
		{"below vehicle min green", edit(func(p *signal.Plan) { p.Phases[0].GreenS = 9; p.Phases[1].GreenS = 49 }), []signal.ViolationKind{signal.ViolationMinGreen}},
		{"below pedestrian min green", edit(func(p *signal.Plan) { p.Phases[0].GreenS = 11; p.Phases[1].GreenS = 47 }), []signal.ViolationKind{signal.ViolationMinGreen}},
		{"above max green", edit(func(p *signal.Plan) { p.Phases[0].GreenS = 61; p.Phases[1].GreenS = 12; p.CycleS = 85 }), []signal.ViolationKind{signal.ViolationMaxGreen}},
		{"yellow shortened", edit(func(p *signal.Plan) { p.Phases[0].YellowS = 3; p.Phases[0].GreenS = 35 }), []signal.ViolationKind{signal.ViolationYellow}},
		{"all-red dropped", edit(func(p *signal.Plan) { p.Phases[1].AllRedS = 0; p.CycleS = 68 }), []signal.ViolationKind{signal.ViolationAllRed}},
		{"sum off", edit(func(p *signal.Plan) { p.CycleS = 70.001 }), []signal.ViolationKind{signal.ViolationCycleSum}},
		{"cycle below min", edit(func(p *signal.Plan) { p.Phases[0].GreenS = 12; p.Phases[1].GreenS = 10; p.CycleS = 34 }), []signal.ViolationKind{signal.ViolationCycleBounds}},
		{"cycle above max", edit(func(p *signal.Plan) { p.Phases[0].GreenS = 60; p.Phases[1].GreenS = 100; p.CycleS = 172 }), []signal.ViolationKind{signal.ViolationMaxGreen, signal.ViolationCycleBounds}},
		{"offset negative", edit(func(p *signal.Plan) { p.OffsetS = -1 }), []signal.ViolationKind{signal.ViolationOffset}},
		{"offset equals cycle", edit(func(p *signal.Plan) { p.OffsetS = 70 }), []signal.ViolationKind{signal.ViolationOffset}},
		{"NaN green", edit(func(p *signal.Plan) { p.Phases[0].GreenS = math.NaN() }), []signal.ViolationKind{signal.ViolationNonFinite, signal.ViolationMinGreen, signal.ViolationMaxGreen, signal.ViolationCycleSum}},
		{"infinite delay", edit(func(p *signal.Plan) { p.EstimatedDelayS = math.Inf(1) }), []signal.ViolationKind{signal.ViolationNonFinite}},
		{"NaN cycle", edit(func(p *signal.Plan) { p.CycleS = math.NaN() }), []signal.ViolationKind{signal.ViolationNonFinite, signal.ViolationCycleSum, signal.ViolationCycleBounds, signal.ViolationOffset}},
		{"zero plan", signal.Plan{}, []signal.ViolationKind{signal.ViolationIntersection, signal.ViolationPhases, signal.ViolationCycleBounds, signal.ViolationOffset}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := signal.Validate(in, tc.plan)
			var pe *signal.PlanError
			if !errors.As(err, &pe) || !errors.Is(err, signal.ErrInvalidPlan) {
				t.Fatalf("err = %v, want a *PlanError", err)
			}
			kinds := map[signal.ViolationKind]bool{}
			for _, v := range pe.Violations {
				kinds[v.Kind] = true
			}
			for _, k := range tc.want {
				if !pe.Has(k) {
					t.Errorf("missing violation %v in %v", k, err)
				}
				delete(kinds, k)
			}
			for k := range kinds {
				t.Errorf("unexpected violation %v in %v", k, err)
			}
		})
	}
	t.Run("lists every violation", func(t *testing.T) {
		t.Parallel()
		p := edit(func(p *signal.Plan) {
			p.Phases[0].GreenS, p.Phases[0].YellowS = 1, 1
			p.Phases[1].GreenS, p.Phases[1].AllRedS = 100, 9
			p.OffsetS = 500
		})
		err := signal.Validate(in, p)
		for _, want := range []string{"min_green: phase NS", "yellow: phase NS", "max_green: phase EW", "all_red: phase EW", "cycle_sum", "offset"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("error %v does not contain %q", err, want)
			}
		}
	})
}

func TestSafe(t *testing.T) {
	t.Parallel()
	in := loadExample(t).Intersections[0]
	good, err := signal.Webster(in, flows(800, 700, 300, 200), signal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	broken := good
	broken.Phases = append([]signal.PhaseTiming(nil), good.Phases...)
	broken.Phases[0].YellowS = 0

	timeOfDay := func() (signal.Plan, error) {
		return signal.Webster(in, flows(600, 600, 300, 300), signal.Options{Reason: signal.ReasonTimeOfDay})
	}
	failing := func() (signal.Plan, error) { return signal.Plan{}, errors.New("no history") }

	tests := []struct {
		name      string
		candidate signal.Plan
		err       error
		fallbacks []func() (signal.Plan, error)
		reason    signal.Reason
		detail    []string
	}{
		{"valid candidate", good, nil, nil, signal.ReasonPredictive, []string{"webster"}},
		{"candidate error", signal.Plan{}, errors.New("prediction stale"), nil, signal.ReasonFixedTime, []string{"fallback to fixed-time plan", "prediction stale"}},
		{"invalid candidate", broken, nil, nil, signal.ReasonFixedTime, []string{"fallback to fixed-time plan", "yellow: phase NS"}},
		{"fallback used", broken, nil, []func() (signal.Plan, error){nil, timeOfDay}, signal.ReasonTimeOfDay, []string{"fallback to fallback plan 2"}},
		{"failing fallback skipped", broken, nil, []func() (signal.Plan, error){failing}, signal.ReasonFixedTime, []string{"fallback plan 1 rejected: no history", "fallback to fixed-time plan"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := signal.Safe(in, tc.candidate, tc.err, tc.fallbacks...)
			if err != nil {
				t.Fatal(err)
			}
			mustValid(t, in, p)
			if p.Reason != tc.reason {
				t.Errorf("reason %v, want %v", p.Reason, tc.reason)
			}
			for _, d := range tc.detail {
				if !strings.Contains(p.Detail, d) {
					t.Errorf("detail %q does not contain %q", p.Detail, d)
				}
			}
		})
	}

	t.Run("infeasible intersection", func(t *testing.T) {
		t.Parallel()
		bad := in
		bad.FixedTime = nil
		bad.Phases = append([]topology.Phase(nil), in.Phases...)
		bad.Phases[0].MaxGreenS, bad.Phases[1].MaxGreenS = 12, 10 // 12+6 + 10+6 = 34 < min cycle 50
		if err := signal.Feasible(bad); !errors.Is(err, signal.ErrInfeasible) {
			t.Fatalf("Feasible = %v", err)
		}
		p, err := signal.Safe(bad, good, nil)
		if !errors.Is(err, signal.ErrNoSafePlan) || p.Phases != nil {
			t.Fatalf("Safe = %+v, %v; want ErrNoSafePlan and no plan", p, err)
		}
	})
}

func TestDelayWebster(t *testing.T) {
	t.Parallel()
	in := twoPhase() // lost time = yellow + all-red: effective green = displayed green
	plan := func(gNS float64) signal.Plan {
		return signal.Plan{IntersectionID: "X", CycleS: 60, SaturationFactor: 1, Phases: []signal.PhaseTiming{
			{PhaseID: "NS", GreenS: gNS, YellowS: 4, AllRedS: 1},
			{PhaseID: "EW", GreenS: 50 - gNS, YellowS: 4, AllRedS: 1},
		}}
	}
	tests := []struct {
		name  string
		plan  signal.Plan
		flows map[string]float64
		want  float64
		tol   float64
	}{
		{
			// C = 60, g = 27, λ = 0.45, q = 540/3600 = 0.15 veh/s, s = 0.5 veh/s, x = 0.15/(0.45·0.5) = 2/3.
			// d1 = 60·0.55²/(2(1 − 0.45·2/3)) = 18.15/1.4 = 12.964286
			// d2 = (4/9)/(2·0.15·(1/3)) = 4.444444
			// d3 = 0.65·(60/0.0225)^(1/3)·(2/3)^(2+2.25) = 0.65·13.8672·0.17850 = 1.608848
			// d = 12.964286 + 4.444444 − 1.608848 = 15.799882 s. Only N has traffic.
			name: "hand computed", plan: plan(27), flows: flows(540, 0, 0, 0), want: 15.799882, tol: 1e-5,
		},
		{
			// Flow-weighted: two identical approaches give the same average.
			name: "two equal approaches", plan: plan(27), flows: flows(540, 540, 0, 0), want: 15.799882, tol: 1e-5,
		},
		{
			// x = (1000/3600)/(0.45·0.5) = 1.234568 > 1: Webster at x = 0.98 gives 97.184931, plus the overflow
			// term 900/2·(1.234568 − 1) = 105.555556 → 202.740486.
			name: "oversaturated", plan: plan(27), flows: flows(1000, 0, 0, 0), want: 202.740486, tol: 1e-5,
		},
		{name: "no traffic", plan: plan(27), flows: flows(0, 0, 0, 0), want: 0},
		{name: "no flows at all", plan: plan(27), flows: nil, want: 0},
		{name: "invalid flows carry no weight", plan: plan(27), flows: flows(540, math.NaN(), -5, math.Inf(1)), want: 15.799882, tol: 1e-5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := signal.DelayWebster(in, tc.plan, tc.flows); !near(got, tc.want, tc.tol) {
				t.Errorf("DelayWebster = %.6f, want %.6f", got, tc.want)
			}
		})
	}
	t.Run("zero cycle", func(t *testing.T) {
		t.Parallel()
		if got := signal.DelayWebster(in, signal.Plan{}, flows(1, 1, 1, 1)); !math.IsNaN(got) {
			t.Errorf("DelayWebster = %g, want NaN", got)
		}
	})
	t.Run("Webster's plan minimises delay near C0", func(t *testing.T) {
		t.Parallel()
		f := flows(540, 450, 360, 300)
		best, err := signal.Webster(in, f, signal.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []float64{30, 120} {
			other, err := signal.Webster(in, f, signal.Options{CycleS: c})
			if err != nil {
				t.Fatal(err)
			}
			if other.EstimatedDelayS <= best.EstimatedDelayS {
				t.Errorf("cycle %g delay %g ≤ Webster's %g at %g", c, other.EstimatedDelayS, best.EstimatedDelayS, best.CycleS)
			}
		}
	})
}

func TestReasonAndKindStrings(t *testing.T) {
	t.Parallel()
	if signal.ReasonFixedTime.String() != "fixed_time" || signal.Reason(99).String() != "reason(99)" {
		t.Error("Reason.String")
	}
	if signal.ViolationMinGreen.String() != "min_green" || signal.ViolationKind(99).String() != "violation(99)" {
		t.Error("ViolationKind.String")
	}
}

func TestFeasible(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit func(in *topology.Intersection)
		ok   bool
	}{
		{"textbook", func(*topology.Intersection) {}, true},
		{"max greens just reach the min cycle", func(in *topology.Intersection) { in.Phases[0].MaxGreenS, in.Phases[1].MaxGreenS = 10, 10 }, true},
		{"max greens cannot reach the min cycle", func(in *topology.Intersection) { in.Phases[0].MaxGreenS, in.Phases[1].MaxGreenS = 9, 10 }, false},
		{"min greens exceed the max cycle", func(in *topology.Intersection) { in.Phases[0].MinGreenS, in.Phases[0].MaxGreenS = 111, 111 }, false},
		{"no phases", func(in *topology.Intersection) { in.Phases = nil }, false},
		{"duplicate phase", func(in *topology.Intersection) { in.Phases[1].ID = "NS" }, false},
		{"NaN yellow", func(in *topology.Intersection) { in.Phases[0].YellowS = math.NaN() }, false},
		{"infinite max green", func(in *topology.Intersection) { in.Phases[0].MaxGreenS = math.Inf(1) }, false},
		{"negative lost time", func(in *topology.Intersection) { in.Phases[0].LostTimeS = -1 }, false},
		{"max green below pedestrian minimum", func(in *topology.Intersection) { in.Phases[0].PedestrianMinS = 70 }, false},
		{"cycle bounds reversed", func(in *topology.Intersection) { in.Timing.MinCycleS, in.Timing.MaxCycleS = 100, 50 }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := twoPhase()
			tc.edit(&in)
			err := signal.Feasible(in)
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, signal.ErrInfeasible)) {
				t.Fatalf("Feasible = %v, want ok=%v", err, tc.ok)
			}
			_, werr := signal.Webster(in, flows(500, 500, 500, 500), signal.Options{})
			p, serr := signal.Safe(in, signal.Plan{}, werr)
			if tc.ok {
				if werr != nil || serr != nil {
					t.Fatalf("Webster %v, Safe %v", werr, serr)
				}
				mustValid(t, in, p)
			} else if werr == nil {
				t.Fatal("Webster planned an infeasible intersection")
			}
		})
	}
}

// TestManyPhases goes past the sizes the package keeps on the stack.
func TestManyPhases(t *testing.T) {
	t.Parallel()
	in := topology.Intersection{ID: "M", Timing: topology.Timing{MinCycleS: 20, MaxCycleS: 300}}
	f := map[string]float64{}
	for i := range 20 {
		id := string(rune('a' + i))
		in.Approaches = append(in.Approaches, approaches(id)...)
		in.Phases = append(in.Phases, phase(id, []string{id}, 4, 20, 3, 0, 3))
		f[id] = float64(10 * i)
	}
	p, err := signal.Webster(in, f, signal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustValid(t, in, p)
	if p.Phases[0].GreenS != 4 || p.Phases[19].GreenS <= p.Phases[10].GreenS {
		t.Errorf("greens %v", greens(p))
	}
}
