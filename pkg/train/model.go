package train

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/greenwave-city/greenwave/pkg/features"
	"github.com/greenwave-city/greenwave/pkg/regression"
)

// Model is a Snapshot compiled for serving: the promoted candidate restored as an RLS and the seasonal
// history decoded, once. Predict on a snapshot decodes both on every call (the history alone is a week of
// windows, about 16 KB); a server that predicts many frames with one snapshot compiles it once and calls
// Model.Predict. Predict(snap, …) is Compile(snap) followed by Model.Predict, so both give identical results.
//
// A Model does not refer to the snapshot after Compile returns. It is safe for concurrent use; concurrent
// Predict calls of one Model for frames newer than the snapshot are serialised (see Model.Predict), which costs
// nothing when, as in the predictor, each model is used by one partition's goroutine.
type Model struct {
	id       string
	names    []string // regression inputs: the frame's features without "bias", then the seasonal inputs
	base     []string // the frame's features without "bias"
	fsv      uint32
	tgt      target
	cal      calendar
	horizonS int64
	// last is the snapshot's last applied window start (Unix seconds), valid when applied.
	last    int64
	applied bool

	promoted string
	updates  uint64
	ready    bool            // the promoted candidate has a noise estimate
	rls      *regression.RLS // read-only after Compile: Predict, PredictiveVariance and Interval do not mutate
	beta     []float64       // the promoted coefficients, intercept first

	// mu guards hist while Predict records a frame's window into it and restores it (see seasonal).
	mu   sync.Mutex
	hist history
	save []float64 // scratch for the ring slots record overwrites, guarded by mu
}

// Compile decodes a snapshot for Model.Predict. It returns ErrInvalidSnapshot, wrapped with the model id, for a
// nil or corrupt snapshot (unknown inputs, target, history or horizon, missing or invalid promoted candidate).
// A snapshot whose promoted candidate has too few labels for a noise estimate compiles; its Predict returns
// ErrNotReady. Compile only reads the snapshot.
func Compile(snap *Snapshot) (*Model, error) {
	m, err := compile(snap)
	if err != nil {
		return nil, fmt.Errorf("compile model %s: %w", snap.id(), err)
	}
	return m, nil
}

func compile(snap *Snapshot) (*Model, error) {
	if snap == nil {
		return nil, fmt.Errorf("nil snapshot: %w", ErrInvalidSnapshot)
	}
	names := slices.Clone(snap.FeatureNames)
	base, ok := baseNames(names)
	if !ok {
		return nil, fmt.Errorf("model inputs %v lack the seasonal inputs (older format): %w", names, ErrInvalidSnapshot)
	}
	tgt, err := targetOfSnapshot(snap.Target)
	if err != nil {
		return nil, err
	}
	m, err := seasonalModel(snap, tgt, base)
	if err != nil {
		return nil, err
	}
	var st *RLSState
	for _, c := range snap.Candidates {
		if c.Name == snap.Promoted {
			st = c.State
			break
		}
	}
	if st == nil {
		return nil, fmt.Errorf("promoted candidate %q not in snapshot: %w", snap.Promoted, ErrInvalidSnapshot)
	}
	n := len(names) + 1
	p, err := fullCovariance(*st, len(names))
	if err != nil {
		return nil, fmt.Errorf("promoted candidate %q: %w", snap.Promoted, err)
	}
	rs := regression.RLSState{
		Features: len(names), Lambda: st.ForgettingFactor, Delta: st.InitialCovariance,
		MaxTrace:     math.Inf(1), // the wind-up guard plays no part in prediction
		Coefficients: st.Coefficients, Covariance: p, Updates: st.Updates,
	}
	// The noise estimate exists after n+1 updates (see regression.RLS); noise_variance carries it.
	ready := st.Updates >= uint64(n+1)
	if ready {
		rs.NoiseSum, rs.NoiseWeight = st.NoiseVariance, 1
	}
	r, err := regression.FromState(rs) // validates and copies: the Model does not alias the snapshot
	if err != nil {
		return nil, fmt.Errorf("promoted candidate %q: %w: %w", snap.Promoted, ErrInvalidSnapshot, err)
	}
	m.id, m.names, m.base, m.fsv = snap.ModelID, names, base, snap.FeatureSetVersion
	m.promoted, m.updates, m.ready, m.rls, m.beta = snap.Promoted, st.Updates, ready, r, r.Coefficients()
	return m, nil
}

// seasonalModel returns the part of a Model that computes the seasonal inputs (Model.seasonal): the snapshot's
// history, horizon and last applied window.
func seasonalModel(snap *Snapshot, tgt target, base []string) (*Model, error) {
	var (
		h   history
		err error
	)
	switch snap.SchemaVersion {
	case SchemaVersion:
		h, err = historyOf(snap.History)
	case SchemaVersion1:
		h, err = historyFromBlob(snap.BaselineState)
	default:
		err = fmt.Errorf("schema version %d, want %d (or %d): %w", snap.SchemaVersion, SchemaVersion, SchemaVersion1, ErrInvalidSnapshot)
	}
	if err != nil {
		return nil, err
	}
	hs := int64(snap.HorizonS)
	if hs <= 0 || hs > week || hs%h.windowS != 0 {
		return nil, fmt.Errorf("horizon %d s with %d s windows: %w", hs, h.windowS, ErrInvalidSnapshot)
	}
	w := snap.LastAppliedWindow
	return &Model{tgt: tgt, cal: calendarOf(base), horizonS: hs, last: deref(w).Seconds, applied: w != nil, hist: h}, nil
}

// ID returns the model id of the compiled snapshot.
func (m *Model) ID() string { return m.id }

// Predict applies the model to vector v of frame f, exactly as the package-level Predict applies the snapshot
// the model was compiled from (same values, bit for bit, and the same errors for the same frame): see Predict
// for the maths and the errors. It is safe for concurrent use.
func (m *Model) Predict(f features.Frame, v features.Vector, confidence float64) (Forecast, error) {
	fc, err := m.predict(f, v, confidence)
	if err != nil {
		return Forecast{}, fmt.Errorf("predict %s: %w", m.id, err)
	}
	return fc, nil
}

func (m *Model) predict(f features.Frame, v features.Vector, confidence float64) (Forecast, error) {
	if !(confidence > 0 && confidence < 1) {
		return Forecast{}, fmt.Errorf("confidence %g not in (0, 1): %w", confidence, ErrInvalidInput)
	}
	if uint32(f.FeatureSetVersion) != m.fsv || f.FeatureSetVersion < 0 || !checkNames(f.Names, m.base) {
		return Forecast{}, fmt.Errorf("frame feature set %d, model %d: %w", f.FeatureSetVersion, m.fsv, ErrFeatureMismatch)
	}
	x, err := inputs(f.Names, v, len(m.names))
	if err != nil {
		return Forecast{}, err
	}
	scale, err := m.tgt.scale(v)
	if err != nil {
		return Forecast{}, err
	}
	if x, err = m.seasonal(f, v, x, scale); err != nil {
		return Forecast{}, err
	}
	if !m.ready {
		return Forecast{}, fmt.Errorf("promoted candidate %q after %d updates, needs %d: %w", m.promoted, m.updates, len(m.names)+2, ErrNotReady)
	}
	out, err := predictRLS(m.rls, m.tgt, x, confidence, scale)
	if err != nil {
		return Forecast{}, err
	}
	beta := m.beta
	out.Contributions = make([]Contribution, 0, len(beta))
	out.Contributions = append(out.Contributions, Contribution{InterceptName, beta[0] * scale})
	for i, name := range m.names {
		out.Contributions = append(out.Contributions, Contribution{name, beta[i+1] * x[i] * scale})
	}
	slices.SortStableFunc(out.Contributions, func(a, b Contribution) int {
		return cmp.Compare(math.Abs(b.Value), math.Abs(a.Value))
	})
	return out, nil
}

// predictRLS is the forecast of estimator r for the full regression input x (seasonal inputs included) without
// contributions: the value, interval and standard error of Model.Predict, converted back with the target's
// scale and kept within its physical range. Model.predict and Learner.Forecast share it, so that both compute
// the same bits.
func predictRLS(r *regression.RLS, tgt target, x []float64, confidence, scale float64) (Forecast, error) {
	y, pv, lo, hi, err := r.PredictInterval(x, confidence)
	if err != nil {
		return Forecast{}, fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	out := Forecast{Value: y * scale, Lower: lo * scale, Upper: hi * scale, StdErr: math.Sqrt(pv) * scale}
	if math.IsNaN(sane(out.Value)) || math.IsInf(out.Lower, 0) || math.IsInf(out.Upper, 0) {
		return Forecast{}, fmt.Errorf("forecast %g [%g, %g] not finite: %w", out.Value, out.Lower, out.Upper, ErrInvalidInput)
	}
	out.Linear = out.Value
	out.Value, out.Lower, out.Upper = tgt.physical(out.Value), tgt.physical(out.Lower), tgt.physical(out.Upper)
	return out, nil
}

// seasonal appends the seasonal inputs of the model's horizon to the frame's inputs x, computed from the
// snapshot's history exactly as Apply computes them. When the snapshot has not applied the frame's window yet
// (the usual case: the predictor sees a frame before the trainer's snapshot of it), the window's target is first
// recorded into the history, as Apply would record it; the inputs are then bit-identical to those the trainer
// stores for the window, provided the snapshot's last window is the previous one (windows the snapshot lacks in
// between count as missing). A snapshot newer than the frame is used as it is.
//
// Recording runs the history's own record, under mu, and then puts back every value it overwrote (the ring
// slots from the one after the last applied window to the frame's, and the two time-of-week buckets): the
// history is the snapshot's again when mu is released. That costs a few assignments instead of a copy of the
// week ring per prediction, and keeps training and serving on the same code.
func (m *Model) seasonal(f features.Frame, v features.Vector, x []float64, scale float64) ([]float64, error) {
	h := &m.hist
	start, _, err := window(f, h.windowS)
	if err != nil {
		return nil, err
	}
	tow := m.cal.localTimeOfWeek(start, x)
	n := len(x)
	x = append(x, make([]float64, numSeasonal)...)
	m.mu.Lock()
	defer m.mu.Unlock()
	last := m.last
	if !m.applied || last < start {
		y, observed := m.tgt.observed(v)
		saved := m.saveTouched(start, tow)
		h.record(start, last, m.applied, y, observed, tow)
		h.seasonalInputs(x[n:], start, start, m.horizonS, tow, scale)
		m.restore(saved)
		return x, nil
	}
	h.seasonalInputs(x[n:], start, last, m.horizonS, tow, scale)
	return x, nil
}

// touched locates the history values record overwrites: ring slots first… (their old values are in Model.save)
// and the time-of-week buckets b (UTC) and pb (local), with their old values.
type touched struct {
	first     int64
	b, pb     int64
	sum, mean float64
	cnt, pn   uint64
}

// saveTouched saves the history values that record(start, m.last, m.applied, …, localTOW) may overwrite, for
// restore. Callers hold mu.
func (m *Model) saveTouched(start, localTOW int64) touched {
	h := &m.hist
	size := int64(len(h.ring))
	idx := start / h.windowS
	first := idx // record clears the slots after the last applied window's, and sets the frame's
	if m.applied {
		// More than a week of slots to clear covers the whole ring once.
		first = min(idx, max(m.last/h.windowS+1, idx-size+1))
	}
	m.save = m.save[:0]
	for k := first; k <= idx; k++ {
		m.save = append(m.save, h.ring[mod(k, size)])
	}
	t := touched{first: first, b: mod(start, week) / h.bucketS, pb: localTOW / h.bucketS}
	t.sum, t.cnt, t.mean, t.pn = h.bucketSum[t.b], h.bucketN[t.b], h.profMean[t.pb], h.profN[t.pb]
	return t
}

// restore puts back the values saveTouched saved. Callers hold mu.
func (m *Model) restore(t touched) {
	h := &m.hist
	size := int64(len(h.ring))
	for i, val := range m.save {
		h.ring[mod(t.first+int64(i), size)] = val
	}
	h.bucketSum[t.b], h.bucketN[t.b], h.profMean[t.pb], h.profN[t.pb] = t.sum, t.cnt, t.mean, t.pn
}
