package regression

import (
	"errors"
	"fmt"
	"math"
	"sync"

	"gonum.org/v1/gonum/stat/distuv"
)

// MaxFeatures bounds the number of features of an RLS model. It exists so that a
// corrupt configuration or snapshot yields an error instead of an allocation
// panic; at the bound P alone takes 128 MiB.
const MaxFeatures = 4096

// RLSConfig configures an [RLS] model. The zero value is not valid; start from
// [DefaultRLSConfig].
type RLSConfig struct {
	// Lambda is the exponential forgetting factor, 0 < Lambda ≤ 1. An
	// observation k steps old has weight Lambda^k; the effective memory is about
	// 1/(1-Lambda) updates. Lambda = 1 is ordinary (growing-window) least squares.
	Lambda float64
	// Delta is the prior covariance scale: P starts at Delta·I, which is the same
	// as a ridge penalty of ‖β‖²/Delta on the first rows. Must be finite and > 0.
	// Large values (1e4..1e8) make the model agree with OLS after a few rows;
	// see the package documentation for the scaling assumption.
	Delta float64
	// MaxTrace bounds trace(P) and sets the variance cap of the covariance
	// wind-up guard: no coefficient variance P_ii exceeds MaxTrace/(nFeatures+1)
	// (see "Wind-up guard" at [RLS]). Zero selects the default,
	// Delta·(nFeatures+1), i.e. no coefficient is ever more uncertain than
	// under the prior. +Inf disables the guard. Otherwise it must be
	// ≥ Delta·(nFeatures+1) so that the initial state satisfies it.
	MaxTrace float64
}

// DefaultRLSConfig returns a configuration suited to features scaled to O(1):
// Lambda 0.99 (memory of about 100 updates), Delta 1000 and the default trace
// bound.
func DefaultRLSConfig() RLSConfig {
	return RLSConfig{Lambda: 0.99, Delta: 1000}
}

// validate reports every problem with cfg for a model of nParams coefficients
// (features plus intercept). It does not apply defaults.
func (cfg RLSConfig) validate(nParams int) error {
	var errs []error
	if !(cfg.Lambda > 0 && cfg.Lambda <= 1) {
		errs = append(errs, fmt.Errorf("lambda %g not in (0, 1]: %w", cfg.Lambda, ErrInvalidConfig))
	}
	if !(cfg.Delta > 0) || math.IsInf(cfg.Delta, 1) {
		errs = append(errs, fmt.Errorf("delta %g not finite and > 0: %w", cfg.Delta, ErrInvalidConfig))
	}
	switch {
	case math.IsNaN(cfg.MaxTrace) || cfg.MaxTrace < 0:
		errs = append(errs, fmt.Errorf("max trace %g not ≥ 0: %w", cfg.MaxTrace, ErrInvalidConfig))
	case cfg.MaxTrace != 0 && cfg.Delta > 0 && cfg.MaxTrace < cfg.Delta*float64(nParams):
		errs = append(errs, fmt.Errorf("max trace %g below initial trace delta·(features+1) = %g: %w",
			cfg.MaxTrace, cfg.Delta*float64(nParams), ErrInvalidConfig))
	}
	return errors.Join(errs...)
}

// RLS is a recursive least squares model y = β0 + Σ βi·xi with exponential
// forgetting. β0, the intercept, is the first coefficient; callers pass the
// features x without the leading 1.
//
// Only the upper triangle of the covariance P is kept, packed row by row
// (n(n+1)/2 values for n coefficients), so P is exactly symmetric and takes
// half the memory of the full matrix; a wind-up guard bounds P per
// coefficient where the data carry no information, without biasing β or
// slowing forgetting elsewhere; the noise variance is estimated from
// standardised a priori residuals. The algorithm,
// the guard's properties and the tests that pin them are in docs/model.md
// ("Recursive least squares").
//
// Update and Reset need exclusive access; Predict, PredictiveVariance,
// Interval and the accessors only read and may run concurrently. Predict and
// PredictiveVariance do not allocate on success, and neither does Update once
// the pool below holds a workspace of the model's size.
//
// A model holds only its coefficients and P: the scratch space of an update
// (the candidate P, φ, P·φ) is borrowed from a pool shared by every model of
// the same size, because a process that keeps thousands of models (the
// trainer keeps 24 per approach) updates only a few at a time.
type RLS struct {
	nParams int
	cfg     RLSConfig // resolved: MaxTrace > 0
	capTau  float64   // τ, the clamp target of the wind-up guard; +Inf when the guard is off

	theta []float64
	p     []float64 // the upper triangle of P, packed: row i is p[rowStart(i) : rowStart(i)+nParams−i]

	updates   uint64
	resets    uint64
	covResets uint64

	noiseSum    float64
	noiseWeight float64
}

// NewRLS returns a model with nFeatures features plus an intercept, all
// coefficients zero and P = Delta·I.
func NewRLS(nFeatures int, cfg RLSConfig) (*RLS, error) {
	if nFeatures < 0 || nFeatures > MaxFeatures {
		return nil, fmt.Errorf("new rls: %d features not in [0, %d]: %w", nFeatures, MaxFeatures, ErrInvalidConfig)
	}
	n := nFeatures + 1
	if err := cfg.validate(n); err != nil {
		return nil, fmt.Errorf("new rls: %w", err)
	}
	if cfg.MaxTrace == 0 {
		cfg.MaxTrace = cfg.Delta * float64(n)
	}
	r := newRLS(n, cfg)
	r.initCovariance(r.p)
	return r, nil
}

func newRLS(n int, cfg RLSConfig) *RLS {
	return &RLS{
		nParams: n,
		cfg:     cfg,
		capTau:  clampTarget(cfg, n),
		theta:   make([]float64, n),
		p:       make([]float64, packedLen(n)),
	}
}

// packedLen is the length of the packed upper triangle of an n×n matrix.
func packedLen(n int) int { return n * (n + 1) / 2 }

// rowStart is the offset of row i (its diagonal entry) in the packed upper
// triangle of an n×n matrix: rows 0…i−1 hold n, n−1, …, n−i+1 values.
func rowStart(n, i int) int { return i*n - i*(i-1)/2 }

// rlsScratch is the workspace of one Update: the candidate P (packed upper
// triangle), φ = (1, x), u = P·φ and a column of P for a clamp. Update takes
// one from the pool of its size and puts one back, swapping its P with the
// candidate's on success, so that no copy is made.
type rlsScratch struct {
	p, phi, u, col []float64
}

// scratchPools holds a *sync.Pool of *rlsScratch per model size (nParams).
var scratchPools sync.Map

// getScratch returns a workspace for models of n coefficients; its contents
// are arbitrary.
func getScratch(n int) (*rlsScratch, *sync.Pool) {
	pl, ok := scratchPools.Load(n)
	if !ok {
		pl, _ = scratchPools.LoadOrStore(n, &sync.Pool{})
	}
	pool := pl.(*sync.Pool)
	if s, ok := pool.Get().(*rlsScratch); ok {
		return s, pool
	}
	return &rlsScratch{
		p: make([]float64, packedLen(n)), phi: make([]float64, n), u: make([]float64, n), col: make([]float64, n),
	}, pool
}

// minTauRatio is the floor of τ/C = λ^(n−1): below it dead variances would be
// driven so far under the excited ones that P loses its scaling.
const minTauRatio = 0x1p-100

// clampTarget returns τ = (MaxTrace/n)·λ^(n−1) (see "Wind-up guard" at [RLS])
// for a resolved configuration. It is derived, never stored, so a restored
// model computes the same bits.
func clampTarget(cfg RLSConfig, n int) float64 {
	c := cfg.MaxTrace / float64(n)
	if math.IsInf(c, 1) {
		return c
	}
	return c * math.Max(math.Pow(cfg.Lambda, float64(n-1)), minTauRatio)
}

// initCovariance sets dst (packed) to Delta·I.
func (r *RLS) initCovariance(dst []float64) {
	clear(dst)
	for i, off := 0, 0; i < r.nParams; i++ {
		dst[off] = r.cfg.Delta
		off += r.nParams - i
	}
}

// Features returns the number of features (coefficients minus the intercept).
func (r *RLS) Features() int { return r.nParams - 1 }

// Config returns the configuration with defaults resolved (MaxTrace > 0).
func (r *RLS) Config() RLSConfig { return r.cfg }

// checkX validates the length and finiteness of a feature vector.
func (r *RLS) checkX(x []float64) error {
	if len(x) != r.nParams-1 {
		return fmt.Errorf("%d features, model has %d: %w", len(x), r.nParams-1, ErrDimension)
	}
	for i, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("feature %d is %g: %w", i, v, ErrNonFinite)
		}
	}
	return nil
}

// predict returns βᵀ(1, x) for a validated x.
func (r *RLS) predict(x []float64) float64 {
	s := r.theta[0]
	th := r.theta[1:]
	for i, v := range x {
		s += th[i] * v
	}
	return s
}

// Predict returns the point prediction β0 + Σ βi·xi. It returns ErrDimension or
// ErrNonFinite for a bad x.
func (r *RLS) Predict(x []float64) (float64, error) {
	if err := r.checkX(x); err != nil {
		return 0, fmt.Errorf("rls predict: %w", err)
	}
	return r.predict(x), nil
}

// quadForm returns φᵀPφ with φ = (1, x) from the upper triangle of P, without
// scratch space so that it is safe for concurrent readers.
func (r *RLS) quadForm(x []float64) float64 {
	n := r.nParams
	var q float64
	for i, off := 0, 0; i < n; i++ {
		fi := 1.0
		if i > 0 {
			fi = x[i-1]
		}
		row := r.p[off : off+n-i]
		off += n - i
		xs := x[i:] // x[j-1] for j > i
		var s float64
		for j := 1; j < len(row); j++ {
			s += row[j] * xs[j-1]
		}
		q += fi * (row[0]*fi + 2*s)
	}
	return q
}

// NoiseVariance returns the running estimate of the observation noise variance
// σ² (see the RLS type documentation for the estimator). It returns ErrNotReady
// until nFeatures+2 updates have been applied.
func (r *RLS) NoiseVariance() (float64, error) {
	if r.noiseWeight == 0 {
		return 0, fmt.Errorf("rls noise variance after %d updates, need %d: %w", r.updates, r.nParams+1, ErrNotReady)
	}
	return r.noiseSum / r.noiseWeight, nil
}

// PredictiveVariance returns the variance of a new observation at x,
// σ²·(1 + φᵀPφ) with φ = (1, x): noise plus coefficient uncertainty. It
// returns ErrNotReady before the noise variance is available.
func (r *RLS) PredictiveVariance(x []float64) (float64, error) {
	if err := r.checkX(x); err != nil {
		return 0, fmt.Errorf("rls predictive variance: %w", err)
	}
	s2, err := r.NoiseVariance()
	if err != nil {
		return 0, fmt.Errorf("rls predictive variance: %w", err)
	}
	q := r.quadForm(x)
	if q < 0 { // only possible through rounding of a nearly singular P
		q = 0
	}
	return s2 * (1 + q), nil
}

// Interval returns a two-sided prediction interval at x with the given
// confidence in (0, 1), e.g. 0.9: prediction ± z·sqrt(PredictiveVariance),
// with z the normal quantile of (1+confidence)/2. The normal (rather than
// Student t) quantile assumes the effective sample size is large compared with
// the number of coefficients.
func (r *RLS) Interval(x []float64, confidence float64) (lo, hi float64, err error) {
	if !(confidence > 0 && confidence < 1) {
		return 0, 0, fmt.Errorf("rls interval: confidence %g not in (0, 1): %w", confidence, ErrInvalidConfig)
	}
	v, err := r.PredictiveVariance(x)
	if err != nil {
		return 0, 0, fmt.Errorf("rls interval: %w", err)
	}
	z := distuv.UnitNormal.Quantile(0.5 + confidence/2)
	m := r.predict(x)
	h := z * math.Sqrt(v)
	return m - h, m + h, nil
}

// PredictInterval returns what Predict(x), PredictiveVariance(x) and
// Interval(x, confidence) return, bit for bit, validating x and computing
// φᵀPφ once instead of three and two times: a forecast with its interval, as
// a predictor serves it. On error it returns the error the first of the three
// calls to fail would return.
func (r *RLS) PredictInterval(x []float64, confidence float64) (y, variance, lo, hi float64, err error) {
	if err := r.checkX(x); err != nil {
		return 0, 0, 0, 0, fmt.Errorf("rls predict: %w", err)
	}
	s2, err := r.NoiseVariance()
	if err != nil {
		return 0, 0, 0, 0, fmt.Errorf("rls predictive variance: %w", err)
	}
	if !(confidence > 0 && confidence < 1) {
		return 0, 0, 0, 0, fmt.Errorf("rls interval: confidence %g not in (0, 1): %w", confidence, ErrInvalidConfig)
	}
	q := r.quadForm(x)
	if q < 0 { // as in PredictiveVariance
		q = 0
	}
	variance = s2 * (1 + q)
	y = r.predict(x)
	h := distuv.UnitNormal.Quantile(0.5+confidence/2) * math.Sqrt(variance)
	return y, variance, y - h, y + h, nil
}

// Update applies one observation (x, y). It returns an error wrapping
// ErrDimension, ErrNonFinite (NaN or ±Inf in x or y) or ErrNumerical (the
// update would overflow), and in every error case leaves the model untouched.
func (r *RLS) Update(x []float64, y float64) error {
	if err := r.checkX(x); err != nil {
		return fmt.Errorf("rls update: %w", err)
	}
	if math.IsNaN(y) || math.IsInf(y, 0) {
		return fmt.Errorf("rls update: target is %g: %w", y, ErrNonFinite)
	}
	e := y - r.predict(x)
	if math.IsInf(e*e, 0) { // also catches a non-finite e
		return fmt.Errorf("rls update: a priori error %g overflows when squared: %w", e, ErrNumerical)
	}
	s, pool := getScratch(r.nParams)
	defer pool.Put(s)
	s.phi[0] = 1
	copy(s.phi[1:], x)

	q, st := r.downdate(s, r.p, s.p)
	if st == stepOK {
		st = r.capVariance(s, s.p)
	}
	covReset := false
	if st == stepIndefinite {
		// Rounding made P indefinite: restart the covariance from the prior,
		// keep the coefficients, and apply the update to the restarted P.
		r.initCovariance(s.p)
		q, st = r.downdate(s, s.p, s.p)
		if st == stepOK {
			st = r.capVariance(s, s.p)
		}
		covReset = true
	}
	if st != stepOK {
		return fmt.Errorf("rls update: covariance update not finite (|x| too large?): %w", ErrNumerical)
	}
	// s.u now holds P·φ for the P the candidate was computed from.
	d := r.cfg.Lambda + q
	noiseSum := r.cfg.Lambda*r.noiseSum + e*e/(1+q)
	if math.IsInf(noiseSum, 0) {
		return fmt.Errorf("rls update: noise variance overflows: %w", ErrNumerical)
	}
	for i := range r.theta {
		if t := r.theta[i] + s.u[i]/d*e; math.IsNaN(t) || math.IsInf(t, 0) {
			return fmt.Errorf("rls update: coefficient %d overflows: %w", i, ErrNumerical)
		}
	}
	for i := range r.theta {
		r.theta[i] += s.u[i] / d * e
	}
	// The candidate becomes P and the old P the pool's scratch.
	r.p, s.p = s.p, r.p
	if covReset {
		r.covResets++
	}
	if r.updates >= uint64(r.nParams) {
		r.noiseSum = noiseSum
		r.noiseWeight = r.cfg.Lambda*r.noiseWeight + 1
	}
	r.updates++
	return nil
}

type stepStatus int

const (
	stepOK         stepStatus = iota
	stepIndefinite            // src behaves as indefinite: q < 0 or a non-positive diagonal
	stepOverflow              // a non-finite value appeared
)

// downdate computes u = src·φ into s.u (φ is s.phi) and writes the updated
// covariance (src − u·uᵀ/d)/λ into dst, reading and writing packed upper
// triangles. dst may be src. It returns q = φᵀ·src·φ. On a status other than
// stepOK dst may be partly written.
func (r *RLS) downdate(s *rlsScratch, src, dst []float64) (float64, stepStatus) {
	n := r.nParams
	phi, u := s.phi[:n], s.u[:n]
	clear(u)
	for i, off := 0, 0; i < n; i++ {
		// Row i of the upper triangle contributes P_ij·φ_j to u_i and, by
		// symmetry, P_ij·φ_i to u_j.
		row := src[off : off+n-i]
		off += n - i
		ph := phi[i:]
		uu := u[i:]
		uu = uu[:len(row)]
		ph = ph[:len(row)]
		pi := ph[0]
		s := row[0] * pi
		for j := 1; j < len(row); j++ {
			s += row[j] * ph[j]
			uu[j] += row[j] * pi
		}
		uu[0] += s
	}
	var q float64
	for i, v := range u {
		q += phi[i] * v
	}
	if math.IsNaN(q) || math.IsInf(q, 0) {
		return q, stepOverflow
	}
	if q < 0 {
		return q, stepIndefinite
	}
	invD := 1 / (r.cfg.Lambda + q)
	f := 1 / r.cfg.Lambda
	var check float64
	for i, off := 0, 0; i < n; i++ {
		ki := u[i] * invD
		srow := src[off : off+n-i]
		drow := dst[off : off+n-i]
		off += n - i
		drow = drow[:len(srow)]
		uu := u[i:]
		uu = uu[:len(srow)]
		// The diagonal is checked before it is written: a non-positive
		// variance means rounding made P indefinite.
		dv := (srow[0] - ki*uu[0]) * f
		if !(dv > 0) {
			if math.IsNaN(dv) {
				return q, stepOverflow
			}
			return q, stepIndefinite
		}
		drow[0] = dv
		check += dv
		for j := 1; j < len(srow); j++ {
			v := (srow[j] - ki*uu[j]) * f
			drow[j] = v
			check += v
		}
	}
	if math.IsNaN(check) || math.IsInf(check, 0) {
		return q, stepOverflow
	}
	return q, stepOK
}

// capVariance applies the wind-up guard to p (packed upper triangle, finite,
// positive diagonal): it clamps the largest diagonal entry to τ if it is above τ, then,
// while trace(p) > MaxTrace, the next largest (see "Wind-up guard" at [RLS]).
// A clamped entry is exactly τ and no entry grows, so no coordinate is
// clamped twice and the loop ends after at most n clamps.
func (r *RLS) capVariance(s *rlsScratch, p []float64) stepStatus {
	if math.IsInf(r.capTau, 1) {
		return stepOK
	}
	n := r.nParams
	for first := true; ; first = false {
		imax, pmax, tr := 0, p[0], p[0]
		for i, off := 1, n; i < n; i++ {
			d := p[off]
			off += n - i
			tr += d
			if d > pmax {
				imax, pmax = i, d
			}
		}
		if !(pmax > r.capTau) || (!first && !(tr > r.cfg.MaxTrace)) {
			return stepOK
		}
		if st := r.clamp(s, p, imax, pmax); st != stepOK {
			return st
		}
	}
}

// clamp adds the pseudo-observation "coefficient i equals its current value"
// with the weight that brings P_ii = pii down to τ: P ← P − s·cᵀc with c the
// i-th column of P and s = (pii − τ)/pii² (p packed, col from the scratch).
// On stepIndefinite (a variance rounded to ≤ 0) p is partly written.
func (r *RLS) clamp(sc *rlsScratch, p []float64, i int, pii float64) stepStatus {
	n := r.nParams
	col := sc.col[:n]
	for j, off := 0, 0; j < i; j++ {
		col[j] = p[off+i-j]
		off += n - j
	}
	ri := rowStart(n, i)
	copy(col[i:], p[ri:ri+n-i])
	// Divided twice rather than by pii² so that a large pii cannot overflow.
	s := (pii - r.capTau) / pii / pii
	for j, off := 0, 0; j < n; j++ {
		sj := s * col[j]
		row := p[off : off+n-j]
		off += n - j
		cc := col[j:]
		cc = cc[:len(row)]
		dv := row[0] - sj*cc[0]
		if !(dv > 0) {
			return stepIndefinite
		}
		row[0] = dv
		for k := 1; k < len(row); k++ {
			row[k] -= sj * cc[k]
		}
	}
	// Exactly τ, not the rounded pii − s·pii²: the termination argument of
	// capVariance relies on it.
	p[ri] = r.capTau
	return stepOK
}

// Coefficients returns a copy of (β0, β1, …, βn), intercept first.
func (r *RLS) Coefficients() []float64 { return append([]float64(nil), r.theta...) }

// Covariance returns a row-major copy of the (nFeatures+1)² matrix P. P is the
// unscaled covariance: the coefficient covariance is about σ²·P.
func (r *RLS) Covariance() []float64 {
	n := r.nParams
	c := make([]float64, n*n)
	k := 0
	for i := 0; i < n; i++ {
		for j := i; j < n; j++ {
			c[i*n+j] = r.p[k]
			c[j*n+i] = r.p[k]
			k++
		}
	}
	return c
}

// Trace returns trace(P), the quantity bounded by MaxTrace.
func (r *RLS) Trace() float64 {
	var t float64
	for i, off := 0, 0; i < r.nParams; i++ {
		t += r.p[off]
		off += r.nParams - i
	}
	return t
}

// Updates returns the number of updates applied since creation or the last
// Reset.
func (r *RLS) Updates() uint64 { return r.updates }

// CovarianceResets returns how many times rounding made P indefinite and it was
// restarted from Delta·I (lifetime count, kept across Reset).
func (r *RLS) CovarianceResets() uint64 { return r.covResets }

// Resets returns how many times Reset was called (lifetime count).
func (r *RLS) Resets() uint64 { return r.resets }

// Reset returns the model to its initial state (zero coefficients, P =
// Delta·I, no noise estimate, zero updates) and increments Resets.
func (r *RLS) Reset() {
	clear(r.theta)
	r.initCovariance(r.p)
	r.updates = 0
	r.noiseSum, r.noiseWeight = 0, 0
	r.resets++
}

// RLSState is the complete state of an [RLS] model as plain data, for
// snapshots. [RLS.State] followed by [FromState] is bit-exact: the restored
// model continues with results identical (==) to the original.
type RLSState struct {
	Features int // number of features, excluding the intercept
	// Lambda, Delta and MaxTrace are the resolved configuration. MaxTrace may be
	// +Inf (guard disabled), which encoders must support (protobuf double does).
	Lambda   float64
	Delta    float64
	MaxTrace float64
	// Coefficients holds Features+1 values, intercept first.
	Coefficients []float64
	// Covariance holds P row-major, (Features+1)² values, exactly symmetric.
	Covariance       []float64
	Updates          uint64
	Resets           uint64
	CovarianceResets uint64
	// NoiseSum and NoiseWeight are S and W of the noise estimator σ² = S/W.
	NoiseSum    float64
	NoiseWeight float64
}

// State returns a deep copy of the model state.
func (r *RLS) State() RLSState {
	return RLSState{
		Features:         r.nParams - 1,
		Lambda:           r.cfg.Lambda,
		Delta:            r.cfg.Delta,
		MaxTrace:         r.cfg.MaxTrace,
		Coefficients:     r.Coefficients(),
		Covariance:       r.Covariance(),
		Updates:          r.updates,
		Resets:           r.resets,
		CovarianceResets: r.covResets,
		NoiseSum:         r.noiseSum,
		NoiseWeight:      r.noiseWeight,
	}
}

// FromState restores a model from a snapshot. It validates the configuration,
// dimensions and finiteness, that the covariance is exactly symmetric with a
// positive diagonal and within MaxTrace, and copies the slices.
//
// These are exactly the invariants Update maintains. FromState deliberately
// does not demand numerical positive definiteness (a Cholesky factorisation):
// an extreme but finite row (φᵀPφ ≫ λ/ε) can legitimately leave P singular to
// working precision, and a snapshot of it must restore. Update detects an
// indefinite P when it matters and restarts the covariance (see [RLS]).
func FromState(s RLSState) (*RLS, error) {
	if s.Features < 0 || s.Features > MaxFeatures {
		return nil, fmt.Errorf("rls from state: %d features not in [0, %d]: %w", s.Features, MaxFeatures, ErrInvalidState)
	}
	n := s.Features + 1
	cfg := RLSConfig{Lambda: s.Lambda, Delta: s.Delta, MaxTrace: s.MaxTrace}
	if err := cfg.validate(n); err != nil {
		return nil, fmt.Errorf("rls from state: %w: %w", ErrInvalidState, err)
	}
	if s.MaxTrace == 0 {
		return nil, fmt.Errorf("rls from state: max trace not resolved: %w", ErrInvalidState)
	}
	if len(s.Coefficients) != n || len(s.Covariance) != n*n {
		return nil, fmt.Errorf("rls from state: %d coefficients and %d covariance values for %d features: %w",
			len(s.Coefficients), len(s.Covariance), s.Features, ErrInvalidState)
	}
	for i, v := range s.Coefficients {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("rls from state: coefficient %d is %g: %w", i, v, ErrInvalidState)
		}
	}
	var tr float64
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			v := s.Covariance[i*n+j]
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("rls from state: covariance (%d,%d) is %g: %w", i, j, v, ErrInvalidState)
			}
			if v != s.Covariance[j*n+i] {
				return nil, fmt.Errorf("rls from state: covariance not symmetric at (%d,%d): %w", i, j, ErrInvalidState)
			}
		}
		if d := s.Covariance[i*n+i]; !(d > 0) {
			return nil, fmt.Errorf("rls from state: covariance diagonal %d is %g: %w", i, d, ErrInvalidState)
		}
		tr += s.Covariance[i*n+i]
	}
	// Update keeps the trace at or below MaxTrace, but summing the diagonal
	// in another order can land a few ulps above it.
	if tr > s.MaxTrace*(1+1e-12) {
		return nil, fmt.Errorf("rls from state: trace %g exceeds max trace %g: %w", tr, s.MaxTrace, ErrInvalidState)
	}
	if !(s.NoiseSum >= 0) || math.IsInf(s.NoiseSum, 1) || !(s.NoiseWeight >= 0) || math.IsInf(s.NoiseWeight, 1) ||
		(s.NoiseWeight == 0 && s.NoiseSum != 0) {
		return nil, fmt.Errorf("rls from state: noise sum %g, weight %g: %w", s.NoiseSum, s.NoiseWeight, ErrInvalidState)
	}
	r := newRLS(n, cfg)
	copy(r.theta, s.Coefficients)
	k := 0
	for i := 0; i < n; i++ {
		k += copy(r.p[k:], s.Covariance[i*n+i:i*n+n])
	}
	r.updates = s.Updates
	r.resets = s.Resets
	r.covResets = s.CovarianceResets
	r.noiseSum = s.NoiseSum
	r.noiseWeight = s.NoiseWeight
	return r, nil
}
