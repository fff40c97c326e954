package train

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/greenwave-city/greenwave/pkg/regression"
)

// The trainer-owned ModelSnapshot.baseline_state bytes of schema version 1 snapshots, format 2 (see Snapshot
// format in the package documentation). Only read: schema version 2 carries the same state in typed fields.
// Little-endian float64 bits and unsigned varints, in this order:
//
//	"GWT" 0x02
//	shared section (identical in every horizon's snapshot of a learner):
//	  window_s, len(ring), ring values (NaN = absent), bucket_s, len(buckets), bucket sums, bucket counts,
//	  len(profile), profile means, profile counts
//	horizon section:
//	  len(candidates), per candidate: noise sum, noise weight
//	  len(forecasters), per forecaster (candidates, then baselines): window size, len(pairs), pairs (actual,
//	  forecast) oldest first
//
// Version 1 (before the seasonal inputs) had no profile; it is not read: its models have fewer inputs, and the
// trainer starts them afresh.
var blobMagic = []byte{'G', 'W', 'T', 2}

type noiseAcc struct{ sum, weight float64 }

type blobHorizon struct {
	noise  []noiseAcc
	recent []regression.WindowStatsState
}

// blobReader decodes with bounds checks; the first error sticks.
type blobReader struct {
	b   []byte
	off int
	err error
}

var errTruncated = errors.New("truncated")

func (r *blobReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		r.err = errTruncated
		return 0
	}
	r.off += n
	return v
}

func (r *blobReader) f64() float64 {
	if r.err != nil {
		return 0
	}
	if len(r.b)-r.off < 8 {
		r.err = errTruncated
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(r.b[r.off:]))
	r.off += 8
	return v
}

// count reads a length that must equal want (when want ≥ 0) and fit in the remaining bytes at minBytes each.
func (r *blobReader) count(want int, minBytes int) int {
	v := r.uvarint()
	if r.err != nil {
		return 0
	}
	if (want >= 0 && v != uint64(want)) || v > uint64((len(r.b)-r.off)/minBytes) {
		r.err = fmt.Errorf("length %d (want %d) does not fit", v, want)
		return 0
	}
	return int(v)
}

// decodeShared restores the shared section into h (whose ring and buckets are sized by the configuration) and
// returns the offset of the horizon section.
func (h *history) decodeShared(b []byte) (int, error) {
	if len(b) < len(blobMagic) || string(b[:len(blobMagic)]) != string(blobMagic) {
		return 0, fmt.Errorf("baseline state: unknown format (older snapshots are not restored; start a new model): %w", ErrInvalidSnapshot)
	}
	r := &blobReader{b: b, off: len(blobMagic)}
	if ws := r.uvarint(); r.err == nil && ws != uint64(h.windowS) {
		return 0, fmt.Errorf("baseline state: window %d s, configured %d s: %w", ws, h.windowS, ErrInvalidSnapshot)
	}
	n := r.count(len(h.ring), 8)
	for i := 0; i < n; i++ {
		v := r.f64()
		if math.IsInf(v, 0) || math.Abs(v) > maxAbsValue {
			r.err = fmt.Errorf("history value %g", v)
		}
		h.ring[i] = v
	}
	if bs := r.uvarint(); r.err == nil && bs != uint64(h.bucketS) {
		return 0, fmt.Errorf("baseline state: bucket %d s, configured %d s: %w", bs, h.bucketS, ErrInvalidSnapshot)
	}
	nb := r.count(len(h.bucketSum), 9)
	for i := 0; i < nb; i++ {
		v := r.f64()
		if math.IsNaN(v) || math.IsInf(v, 0) {
			r.err = fmt.Errorf("bucket sum %g", v)
		}
		h.bucketSum[i] = v
	}
	for i := 0; i < nb; i++ {
		h.bucketN[i] = r.uvarint()
	}
	np := r.count(len(h.profMean), 9)
	for i := 0; i < np; i++ {
		v := r.f64()
		if !(math.Abs(v) <= maxAbsValue) {
			r.err = fmt.Errorf("profile mean %g", v)
		}
		h.profMean[i] = v
	}
	for i := 0; i < np; i++ {
		h.profN[i] = r.uvarint()
	}
	if r.err != nil {
		return 0, fmt.Errorf("baseline state: shared section: %w: %w", r.err, ErrInvalidSnapshot)
	}
	return r.off, nil
}

// decodeHorizon decodes a horizon section for nCands candidates and nEvals forecasters.
func decodeHorizon(b []byte, off, nCands, nEvals int) (blobHorizon, error) {
	r := &blobReader{b: b, off: off}
	var out blobHorizon
	n := r.count(nCands, 16)
	for i := 0; i < n; i++ {
		out.noise = append(out.noise, noiseAcc{r.f64(), r.f64()})
	}
	ne := r.count(nEvals, 2)
	for i := 0; i < ne && r.err == nil; i++ {
		size := r.uvarint()
		k := r.count(-1, 16)
		if r.err == nil && (size > maxRecentLimit || uint64(k) > size) {
			r.err = fmt.Errorf("recent window of %d pairs, size %d", k, size)
		}
		st := regression.WindowStatsState{Size: int(size), Actual: make([]float64, k), Predicted: make([]float64, k)}
		for j := 0; j < k; j++ {
			st.Actual[j], st.Predicted[j] = r.f64(), r.f64()
		}
		out.recent = append(out.recent, st)
	}
	if r.err == nil && r.off != len(b) {
		r.err = fmt.Errorf("%d trailing bytes", len(b)-r.off)
	}
	if r.err != nil {
		return blobHorizon{}, fmt.Errorf("baseline state: horizon section: %w: %w", r.err, ErrInvalidSnapshot)
	}
	return out, nil
}
