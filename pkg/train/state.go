package train

import (
	"fmt"
	"math"
	"slices"

	"github.com/greenwave-city/greenwave/pkg/regression"
)

// The typed exact state of schema version 2 (see Snapshot format in the package documentation): the seasonal
// history, the recent windows and the noise accumulators as protobuf fields instead of schema 1's opaque
// baseline_state bytes, P as its upper triangle, and the pending inputs' forecasts as a packed list.

// state returns the history as a SeasonalHistory (which shares nothing with h).
func (h *history) state() *SeasonalHistory {
	ring := slices.Clone(h.ring)
	for i, v := range ring {
		if math.IsNaN(v) {
			ring[i] = math.NaN() // one canonical bit pattern
		}
	}
	return &SeasonalHistory{
		WindowS: uint32(h.windowS), Ring: ring,
		BucketS: uint32(h.bucketS), BucketSum: slices.Clone(h.bucketSum), BucketCount: slices.Clone(h.bucketN),
		ProfileMean: slices.Clone(h.profMean), ProfileCount: slices.Clone(h.profN),
	}
}

// setState restores a SeasonalHistory into h, whose ring and buckets are sized by the configuration.
func (h *history) setState(p *SeasonalHistory) error {
	switch {
	case p == nil:
		return fmt.Errorf("no seasonal history: %w", ErrInvalidSnapshot)
	case int64(p.WindowS) != h.windowS:
		return fmt.Errorf("seasonal history of %d s windows, configured %d s: %w", p.WindowS, h.windowS, ErrInvalidSnapshot)
	case int64(p.BucketS) != h.bucketS:
		return fmt.Errorf("seasonal history buckets of %d s, configured %d s: %w", p.BucketS, h.bucketS, ErrInvalidSnapshot)
	case len(p.Ring) != len(h.ring):
		return fmt.Errorf("seasonal history of %d windows, want %d: %w", len(p.Ring), len(h.ring), ErrInvalidSnapshot)
	case len(p.BucketSum) != len(h.bucketSum) || len(p.BucketCount) != len(h.bucketN) ||
		len(p.ProfileMean) != len(h.profMean) || len(p.ProfileCount) != len(h.profN):
		return fmt.Errorf("seasonal history with %d/%d bucket sums/counts and %d/%d profile means/counts, want %d each: %w",
			len(p.BucketSum), len(p.BucketCount), len(p.ProfileMean), len(p.ProfileCount), len(h.bucketN), ErrInvalidSnapshot)
	}
	for _, v := range p.Ring {
		if math.IsInf(v, 0) || math.Abs(v) > maxAbsValue {
			return fmt.Errorf("seasonal history value %g: %w", v, ErrInvalidSnapshot)
		}
	}
	for _, v := range p.BucketSum {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("seasonal history bucket sum %g: %w", v, ErrInvalidSnapshot)
		}
	}
	for _, v := range p.ProfileMean {
		if !(math.Abs(v) <= maxAbsValue) {
			return fmt.Errorf("seasonal history profile mean %g: %w", v, ErrInvalidSnapshot)
		}
	}
	copy(h.ring, p.Ring)
	copy(h.bucketSum, p.BucketSum)
	copy(h.bucketN, p.BucketCount)
	copy(h.profMean, p.ProfileMean)
	copy(h.profN, p.ProfileCount)
	return nil
}

// historyOf decodes a SeasonalHistory sized by the window it records (the predictor has no trainer
// configuration).
func historyOf(p *SeasonalHistory) (history, error) {
	if p == nil {
		p = &SeasonalHistory{} // fails the window check below
	}
	ws := int64(p.WindowS)
	if !validWindow(ws) || len(p.Ring) != int(week/ws) {
		// Checked before sizing the ring so that a corrupt record cannot ask for a huge allocation.
		return history{}, fmt.Errorf("seasonal history: window %d s with %d slots: %w", ws, len(p.Ring), ErrInvalidSnapshot)
	}
	h := newHistory(ws, bucketSOf(ws))
	if err := h.setState(p); err != nil {
		return history{}, err
	}
	return h, nil
}

// upperTriangle returns the upper triangle of the n×n row-major matrix p, row by row.
func upperTriangle(p []float64, n int) []float64 {
	out := make([]float64, 0, n*(n+1)/2)
	for i := 0; i < n; i++ {
		out = append(out, p[i*n+i:i*n+n]...)
	}
	return out
}

// fullCovariance returns the row-major P of an RLSState, from covariance_upper (schema 2) or covariance
// (schema 1), for nf features. A state with both, neither, or the wrong length is invalid.
func fullCovariance(st RLSState, nf int) ([]float64, error) {
	n := nf + 1
	up, full := st.CovarianceUpper, st.Covariance
	switch {
	case len(up) > 0 && len(full) > 0:
		return nil, fmt.Errorf("covariance given both in full and as upper triangle: %w", ErrInvalidSnapshot)
	case len(full) > 0:
		if len(full) != n*n {
			return nil, fmt.Errorf("%d covariance values for %d features: %w", len(full), nf, ErrInvalidSnapshot)
		}
		return slices.Clone(full), nil
	case len(up) != n*(n+1)/2:
		return nil, fmt.Errorf("%d upper-triangle covariance values for %d features: %w", len(up), nf, ErrInvalidSnapshot)
	}
	p := make([]float64, n*n)
	k := 0
	for i := 0; i < n; i++ {
		for j := i; j < n; j++ {
			p[i*n+j], p[j*n+i] = up[k], up[k]
			k++
		}
	}
	return p, nil
}

// Covariance returns the full row-major P (n+1)×(n+1) of an RLSState of either schema version (nil allowed):
// covariance as it is, or covariance_upper mirrored. It returns nil when st holds no covariance (the
// ModelService omits it unless asked) or a covariance of no square size.
func Covariance(st *RLSState) []float64 {
	if full := deref(st).Covariance; len(full) > 0 {
		return slices.Clone(full)
	}
	m := len(deref(st).CovarianceUpper)
	n := int((math.Sqrt(float64(8*m+1)) - 1) / 2)
	if m == 0 || n*(n+1)/2 != m {
		return nil
	}
	p, _ := fullCovariance(*st, n-1)
	return p
}

// recentErrors encodes the recent windows of evals; a forecaster whose labels equal an earlier one's refers to
// it instead of repeating them (the candidates are nearly always scored on the same labels).
func recentErrors(evals []eval) []RecentErrors {
	out := make([]RecentErrors, len(evals))
	states := make([]regression.WindowStatsState, len(evals))
	for k, e := range evals {
		st := e.recent.State()
		states[k] = st
		r := RecentErrors{Size: uint32(st.Size), Forecast: st.Predicted}
		for j := 0; j < k; j++ {
			if out[j].ActualAs == 0 && len(st.Actual) > 0 && bitsEqual(states[j].Actual, st.Actual) {
				r.ActualAs = uint32(j + 1)
				break
			}
		}
		if r.ActualAs == 0 {
			r.Actual = st.Actual
		}
		out[k] = r
	}
	return out
}

// bitsEqual reports whether a and b hold the same float64 bit patterns.
func bitsEqual(a, b []float64) bool {
	return slices.EqualFunc(a, b, func(x, y float64) bool { return math.Float64bits(x) == math.Float64bits(y) })
}

// recentWindows decodes the recent windows of ne forecasters.
func recentWindows(rs []RecentErrors, ne int) ([]regression.WindowStatsState, error) {
	if len(rs) != ne {
		return nil, fmt.Errorf("%d recent windows for %d forecasters: %w", len(rs), ne, ErrInvalidSnapshot)
	}
	out := make([]regression.WindowStatsState, ne)
	for k, r := range rs {
		actual := r.Actual
		if a := r.ActualAs; a > 0 {
			if int(a) > k || len(actual) > 0 || rs[a-1].ActualAs != 0 {
				return nil, fmt.Errorf("recent window %d refers to the labels of window %d: %w", k, a, ErrInvalidSnapshot)
			}
			actual = rs[a-1].Actual
		}
		if r.Size > maxRecentLimit || len(actual) != len(r.Forecast) || len(actual) > int(r.Size) {
			return nil, fmt.Errorf("recent window %d of %d labels and %d forecasts, size %d: %w", k, len(actual), len(r.Forecast), r.Size, ErrInvalidSnapshot)
		}
		out[k] = regression.WindowStatsState{Size: int(r.Size), Actual: slices.Clone(actual), Predicted: slices.Clone(r.Forecast)}
	}
	return out, nil
}
