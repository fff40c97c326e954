package train

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/greenwave-city/greenwave/pkg/features"
	"github.com/greenwave-city/greenwave/pkg/regression"
)

// referencePredict is Predict as it was before Compile (each call decodes the history into a fresh copy and
// restores the candidate), kept verbatim as the reference that Model.Predict must match bit for bit.
func referencePredict(snap *Snapshot, f features.Frame, v features.Vector, confidence float64) (Forecast, error) {
	if snap == nil {
		return Forecast{}, fmt.Errorf("nil snapshot: %w", ErrInvalidSnapshot)
	}
	if !(confidence > 0 && confidence < 1) {
		return Forecast{}, fmt.Errorf("confidence %g not in (0, 1): %w", confidence, ErrInvalidInput)
	}
	names := snap.FeatureNames
	base, ok := baseNames(names)
	if !ok {
		return Forecast{}, fmt.Errorf("model inputs %v lack the seasonal inputs (older format): %w", names, ErrInvalidSnapshot)
	}
	if uint32(f.FeatureSetVersion) != snap.FeatureSetVersion || f.FeatureSetVersion < 0 || !checkNames(f.Names, base) {
		return Forecast{}, fmt.Errorf("frame feature set %d, model %d: %w", f.FeatureSetVersion, snap.FeatureSetVersion, ErrFeatureMismatch)
	}
	tgt, err := targetOfSnapshot(snap.Target)
	if err != nil {
		return Forecast{}, err
	}
	x, err := inputs(f.Names, v, len(names))
	if err != nil {
		return Forecast{}, err
	}
	scale, err := tgt.scale(v)
	if err != nil {
		return Forecast{}, err
	}
	if x, err = referenceSeasonal(snap, f, v, tgt, x, base, scale); err != nil {
		return Forecast{}, err
	}
	var st *RLSState
	for i := range snap.Candidates {
		c := &snap.Candidates[i]
		if c.Name == snap.Promoted {
			st = c.State
			break
		}
	}
	if st == nil {
		return Forecast{}, fmt.Errorf("promoted candidate %q not in snapshot: %w", snap.Promoted, ErrInvalidSnapshot)
	}
	n := len(names) + 1
	rs := regression.RLSState{
		Features: len(names), Lambda: st.ForgettingFactor, Delta: st.InitialCovariance,
		MaxTrace:     math.Inf(1), // the wind-up guard plays no part in prediction
		Coefficients: st.Coefficients, Covariance: Covariance(st), Updates: st.Updates,
	}
	// The noise estimate exists after n+1 updates (see regression.RLS); noise_variance carries it.
	ready := st.Updates >= uint64(n+1)
	if ready {
		rs.NoiseSum, rs.NoiseWeight = st.NoiseVariance, 1
	}
	r, err := regression.FromState(rs)
	if err != nil {
		return Forecast{}, fmt.Errorf("promoted candidate %q: %w: %w", snap.Promoted, ErrInvalidSnapshot, err)
	}
	if !ready {
		return Forecast{}, fmt.Errorf("promoted candidate %q after %d updates, needs %d: %w", snap.Promoted, st.Updates, n+1, ErrNotReady)
	}
	y, err := r.Predict(x)
	if err != nil {
		return Forecast{}, fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	pv, err := r.PredictiveVariance(x)
	if err != nil {
		return Forecast{}, fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	lo, hi, err := r.Interval(x, confidence)
	if err != nil {
		return Forecast{}, fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	out := Forecast{Value: y * scale, Lower: lo * scale, Upper: hi * scale, StdErr: math.Sqrt(pv) * scale}
	if math.IsNaN(sane(out.Value)) || math.IsInf(out.Lower, 0) || math.IsInf(out.Upper, 0) {
		return Forecast{}, fmt.Errorf("forecast %g [%g, %g] not finite: %w", out.Value, out.Lower, out.Upper, ErrInvalidInput)
	}
	// Since physical forecasts: the served values lie in the target's range.
	out.Linear = out.Value
	out.Value, out.Lower, out.Upper = tgt.physical(out.Value), tgt.physical(out.Lower), tgt.physical(out.Upper)
	beta := st.Coefficients
	out.Contributions = make([]Contribution, 0, n)
	out.Contributions = append(out.Contributions, Contribution{InterceptName, beta[0] * scale})
	for i, name := range names {
		out.Contributions = append(out.Contributions, Contribution{name, beta[i+1] * x[i] * scale})
	}
	slices.SortStableFunc(out.Contributions, func(a, b Contribution) int {
		return cmp.Compare(math.Abs(b.Value), math.Abs(a.Value))
	})
	return out, nil
}

// referenceSeasonal is withSeasonal as it was before Compile. It appends the seasonal inputs of the snapshot's horizon to the frame's inputs x, computed from the
// snapshot's history exactly as Apply computes them. When the snapshot has not applied the frame's window yet
// (the usual case: the predictor sees a frame before the trainer's snapshot of it), the window's target is first
// recorded into a copy of the history, as Apply would record it; the inputs are then bit-identical to those the
// trainer stores for the window, provided the snapshot's last window is the previous one (windows the snapshot
// lacks in between count as missing). A snapshot newer than the frame is used as it is.
func referenceSeasonal(snap *Snapshot, f features.Frame, v features.Vector, tgt target, x []float64, base []string, scale float64) ([]float64, error) {
	h, err := historyOf(snap.History)
	if err != nil {
		return nil, err
	}
	start, _, err := window(f, h.windowS)
	if err != nil {
		return nil, err
	}
	hs := int64(snap.HorizonS)
	if hs <= 0 || hs > week || hs%h.windowS != 0 {
		return nil, fmt.Errorf("horizon %d s with %d s windows: %w", hs, h.windowS, ErrInvalidSnapshot)
	}
	tow := calendarOf(base).localTimeOfWeek(start, x)
	w := snap.LastAppliedWindow
	last, applied := deref(w).Seconds, w != nil
	if !applied || last < start {
		y, observed := tgt.observed(v)
		h.record(start, last, applied, y, observed, tow)
		last = start
	}
	n := len(x)
	x = append(x, make([]float64, numSeasonal)...)
	h.seasonalInputs(x[n:], start, last, hs, tow, scale)
	return x, nil
}

// predictCase is a snapshot with the frames to predict with it.
type predictCase struct {
	name   string
	snap   *snapT
	frames []frameT // every frame's vector is Approaches[0]
}

// modelCases returns snapshots of the named learners ("traffic", "week") at several points of their lives, each with frames around its
// last applied window: older than it (a week and more too), at it, the next (the usual case), after gaps of up
// to more than a week, observed, imputed and gaps — and frames every error path of Predict rejects.
//
// "traffic" is the default configuration (two candidates) over eight days of the synthetic traffic series with
// missing and imputed windows, local time of week from the calendar features, horizons 15 min, 1 h and 1 day;
// "week" has the tiny inputs (UTC time of week) and a one-week horizon, whose seasonal naive input is the
// frame's own window.
func modelCases(t testing.TB, learnerNames ...string) []predictCase {
	t.Helper()
	s := newTrafficSeries(8, 5)
	cfg := DefaultConfig()
	cfg.Candidates = cfg.Candidates[:2]
	cfg.Horizons = []time.Duration{15 * time.Minute, time.Hour, 24 * time.Hour}
	cfg.MaxPending = 300
	traffic := func(i int) frameT {
		f := s.frames[mod(int64(i), int64(len(s.frames)))]
		f.WindowStart = base.Add(time.Duration(i) * 5 * time.Minute)
		f.WindowEnd = f.WindowStart.Add(5 * time.Minute)
		f.Approaches = slices.Clone(f.Approaches)
		return f
	}
	tiny := func(i int) frameT {
		f, _ := frame(300, i, tinyNames, []float64{float64(i%7) / 7, float64(i%5) / 5}, obs{flow: 300 + float64(i%288)}, 1000)
		return f
	}
	weekCfg := tinyConfig(5*time.Minute, 7*24*time.Hour)
	weekCfg.MaxPending = 2016
	learners := []struct {
		name   string
		names  []string
		cfg    Config
		frame  func(int) frameT
		n      int
		snapAt []int
	}{
		{"traffic", s.names, cfg, traffic, len(s.frames), []int{0, 20, 2200, len(s.frames)}},
		{"week", tinyNames, weekCfg, tiny, 2100, []int{2050, 2100}},
	}
	var out []predictCase
	for _, lc := range learners {
		if !slices.Contains(learnerNames, lc.name) {
			continue
		}
		l := mustLearner(t, lc.names, lc.cfg)
		var last int
		snapshot := func() {
			for _, sn := range roundTrip(t, l.Snapshots()) {
				var frames []frameT
				for _, d := range []int{-2017, -2016, -300, -1, 0, 1, 2, 5, 288, 2015, 2016, 2017, 5000} {
					f := lc.frame(last + d)
					frames = append(frames, f)
					for _, mut := range []func(*vectorT){
						func(v *vectorT) { v.Observed.Imputed = true },
						func(v *vectorT) { v.Gap, v.Observed.Imputed = true, true },
					} {
						g := f
						g.Approaches = slices.Clone(f.Approaches)
						mut(&g.Approaches[0])
						frames = append(frames, g)
					}
				}
				out = append(out, predictCase{fmt.Sprintf("%s/%d/%ds", lc.name, last, sn.HorizonS), sn, frames})
			}
		}
		for i := range lc.n {
			if slices.Contains(lc.snapAt, i) {
				snapshot()
			}
			if i%97 == 13 {
				continue // a window the trainer never saw
			}
			f := lc.frame(i)
			if i%53 == 7 {
				f.Approaches[0].Observed.Imputed = true
			}
			mustApply(t, l, f, f.Approaches[0])
			last = i
		}
		if slices.Contains(lc.snapAt, lc.n) {
			snapshot()
		}
	}
	return out
}

// badFrames returns frames of f that Predict rejects, by the error they must give.
func badFrames(f frameT) map[string]frameT {
	with := func(mut func(*frameT, *vectorT)) frameT {
		g := f
		g.Approaches = slices.Clone(f.Approaches)
		g.Approaches[0].Values = slices.Clone(g.Approaches[0].Values)
		mut(&g, &g.Approaches[0])
		return g
	}
	return map[string]frameT{
		"feature set version": with(func(g *frameT, _ *vectorT) { g.FeatureSetVersion++ }),
		"negative version":    with(func(g *frameT, _ *vectorT) { g.FeatureSetVersion = -1 }),
		"names":               with(func(g *frameT, _ *vectorT) { g.Names = slices.Concat(g.Names, []string{"extra"}) }),
		"NaN feature":         with(func(_ *frameT, v *vectorT) { v.Values[len(v.Values)-1] = math.NaN() }),
		"short vector":        with(func(_ *frameT, v *vectorT) { v.Values = v.Values[1:] }),
		"capacity":            with(func(_ *frameT, v *vectorT) { v.CapacityVPH = math.Inf(1) }),
		"unaligned window":    with(func(g *frameT, _ *vectorT) { g.WindowStart = g.WindowStart.Add(time.Second) }),
		"window length":       with(func(g *frameT, _ *vectorT) { g.WindowEnd = g.WindowEnd.Add(time.Minute) }),
	}
}

// sameForecast reports whether a and b are identical, bit for bit.
func sameForecast(a, b Forecast) bool {
	same := func(x, y float64) bool { return math.Float64bits(x) == math.Float64bits(y) }
	if !same(a.Value, b.Value) || !same(a.Lower, b.Lower) || !same(a.Upper, b.Upper) || !same(a.StdErr, b.StdErr) || !same(a.Linear, b.Linear) ||
		len(a.Contributions) != len(b.Contributions) {
		return false
	}
	for i, c := range a.Contributions {
		if c.Feature != b.Contributions[i].Feature || !same(c.Value, b.Contributions[i].Value) {
			return false
		}
	}
	return true
}

// checkSame fails unless got/gotErr is what the reference implementation returns for the snapshot: the same
// forecast bit for bit, or the same error message.
func checkSame(t *testing.T, snap *snapT, f frameT, confidence float64, got Forecast, gotErr error) {
	t.Helper()
	want, wantErr := referencePredict(snap, f, f.Approaches[0], confidence)
	if wantErr != nil {
		wantErr = fmt.Errorf("predict %s: %w", snap.ModelID, wantErr)
	}
	switch {
	case (gotErr == nil) != (wantErr == nil):
		t.Fatalf("window %v: error %v, reference %v", f.WindowStart, gotErr, wantErr)
	case gotErr != nil && gotErr.Error() != wantErr.Error():
		t.Fatalf("window %v: error %q, reference %q", f.WindowStart, gotErr, wantErr)
	case gotErr == nil && !sameForecast(got, want):
		t.Fatalf("window %v: forecast %+v, reference %+v", f.WindowStart, got, want)
	}
}

// TestModelPredictMatchesReference checks that Model.Predict, and Predict, give what Predict gave before models
// were compiled, bit for bit — values, intervals, contributions and errors — and that predicting leaves the
// compiled history exactly as the snapshot's.
func TestModelPredictMatchesReference(t *testing.T) {
	t.Parallel()
	var forecasts, seasonal, errs int
	for _, tc := range modelCases(t, "traffic", "week") {
		m, err := Compile(tc.snap)
		if err != nil {
			t.Fatalf("%s: Compile: %v", tc.name, err)
		}
		for _, f := range tc.frames {
			for _, conf := range []float64{0.9, 0.5} {
				got, err := m.Predict(f, f.Approaches[0], conf)
				checkSame(t, tc.snap, f, conf, got, err)
				got2, err2 := Predict(tc.snap, f, f.Approaches[0], conf)
				checkSame(t, tc.snap, f, conf, got2, err2)
				if err != nil {
					errs++
					continue
				}
				forecasts++
				for _, c := range got.Contributions {
					if slices.Contains(seasonalNames[:], c.Feature) && c.Value != 0 {
						seasonal++
					}
				}
			}
		}
		for name, f := range badFrames(tc.frames[0]) {
			_, err := m.Predict(f, f.Approaches[0], 0.9)
			if err == nil {
				t.Fatalf("%s: %s: no error", tc.name, name)
			}
			checkSame(t, tc.snap, f, 0.9, Forecast{}, err)
		}
		_, err = m.Predict(tc.frames[0], tc.frames[0].Approaches[0], 1)
		checkSame(t, tc.snap, tc.frames[0], 1, Forecast{}, err)
		fresh, err := Compile(tc.snap)
		if err != nil {
			t.Fatal(err)
		}
		if !m.hist.state().equal(fresh.hist.state()) {
			t.Fatalf("%s: predicting changed the compiled history", tc.name)
		}
	}
	// The cases must reach every path: forecasts with seasonal inputs, not-ready models and rejections.
	if forecasts < 500 || seasonal == 0 || errs == 0 {
		t.Fatalf("%d forecasts (%d seasonal contributions), %d errors: the cases miss paths", forecasts, seasonal, errs)
	}
}

// TestModelConcurrentPredict predicts with one Model from several goroutines, frames newer than the snapshot
// (those record into the history and restore it) and older, and checks every result against the reference. Run
// with -race.
func TestModelConcurrentPredict(t *testing.T) {
	t.Parallel()
	cases := modelCases(t, "week")
	tc := cases[len(cases)-1] // the one-week horizon, last window 2099
	m, err := Compile(tc.snap)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		fc  Forecast
		err error
	}
	const workers = 4
	results := make([][]result, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for _, f := range tc.frames {
				fc, err := m.Predict(f, f.Approaches[0], 0.9)
				results[w] = append(results[w], result{fc, err})
			}
		})
	}
	wg.Wait()
	for w := range workers {
		for i, f := range tc.frames {
			checkSame(t, tc.snap, f, 0.9, results[w][i].fc, results[w][i].err)
		}
	}
}

// TestCompileErrors checks that a corrupt snapshot does not compile, with ErrInvalidSnapshot, and that a model
// without a noise estimate compiles and answers ErrNotReady.
func TestCompileErrors(t *testing.T) {
	t.Parallel()
	l := mustLearner(t, tinyNames, tinyConfig())
	f, v := frame(300, 0, tinyNames, []float64{0.4, 0.5}, obs{flow: 100}, 1000)
	mustApply(t, l, f, v)
	good := l.Snapshots()[0]
	tests := []struct {
		name   string
		mutate func(s *snapT)
	}{
		{"no seasonal inputs", func(s *snapT) { s.FeatureNames = s.FeatureNames[:2] }},
		{"target", func(s *snapT) { s.Target = "" }},
		{"history", func(s *snapT) { s.History.Ring = s.History.Ring[:100] }},
		{"history missing", func(s *snapT) { s.History = nil }},
		{"history window", func(s *snapT) { s.History.WindowS = 7 }},
		{"schema version", func(s *snapT) { s.SchemaVersion = 3 }},
		{"horizon", func(s *snapT) { s.HorizonS = 301 }},
		{"horizon over a week", func(s *snapT) { s.HorizonS = week + 300 }},
		{"promoted", func(s *snapT) { s.Promoted = "nobody" }},
		{"covariance", func(s *snapT) { candidate(s, s.Promoted).State.CovarianceUpper[0] = -1 }},
		{"covariance length", func(s *snapT) { st := candidate(s, s.Promoted).State; st.CovarianceUpper = st.CovarianceUpper[1:] }},
		{"coefficients", func(s *snapT) { candidate(s, s.Promoted).State.Coefficients = nil }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := roundTrip(t, []*Snapshot{good})[0]
			tc.mutate(s)
			if _, err := Compile(s); !errors.Is(err, ErrInvalidSnapshot) {
				t.Fatalf("Compile: %v, want ErrInvalidSnapshot", err)
			}
			if _, err := Predict(s, f, v, 0.9); !errors.Is(err, ErrInvalidSnapshot) {
				t.Fatalf("Predict: %v, want ErrInvalidSnapshot", err)
			}
		})
	}
	if _, err := Compile(nil); !errors.Is(err, ErrInvalidSnapshot) {
		t.Fatalf("nil snapshot: %v", err)
	}
	m, err := Compile(good)
	if err != nil {
		t.Fatalf("a fresh model does not compile: %v", err)
	}
	if _, err := m.Predict(f, v, 0.9); !errors.Is(err, ErrNotReady) {
		t.Fatalf("fresh model: %v, want ErrNotReady", err)
	}
}
