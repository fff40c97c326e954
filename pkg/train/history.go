package train

import (
	"fmt"
	"math"
	"slices"
)

// Seasonal inputs: the regression inputs the learner appends, per horizon, to the frame's features (see Seasonal
// inputs in the package documentation). They are computed by seasonalInputs from the history, by Apply when it
// makes a pending input and by Predict from the snapshot, so that training and serving see the same values.
const (
	// InputHATarget is the historical average baseline's forecast of t+h (UTC time-of-week bucket) / scale.
	InputHATarget = "ha_target"
	// InputHATargetPresent is 1 when the historical average of t+h's bucket exists.
	InputHATargetPresent = "ha_target_present"
	// InputHARamp is (historical average of t+h's bucket − of t's bucket) / scale; 0 unless both exist.
	InputHARamp = "ha_ramp"
	// InputSNTarget is the seasonal naive baseline's forecast of t+h (the target at t+h−7d) / scale.
	InputSNTarget = "sn_target"
	// InputSNTargetPresent is 1 when the seasonal naive forecast exists.
	InputSNTargetPresent = "sn_target_present"
	// InputProfileTarget is the recent weekly profile at t+h's local time-of-week bucket / scale.
	InputProfileTarget = "profile_target"
	// InputProfileTargetPresent is 1 when that profile bucket has data.
	InputProfileTargetPresent = "profile_target_present"
	// InputProfileRamp is (profile at t+h's local bucket − at t's) / scale; 0 unless both exist.
	InputProfileRamp = "profile_ramp"
)

// seasonalNames are the seasonal inputs in the order they follow the frame's features.
var seasonalNames = [...]string{
	InputHATarget, InputHATargetPresent, InputHARamp,
	InputSNTarget, InputSNTargetPresent,
	InputProfileTarget, InputProfileTargetPresent, InputProfileRamp,
}

// numSeasonal is the number of seasonal inputs.
const numSeasonal = len(seasonalNames)

// profileMemoryWeeks is the memory of the recent weekly profile: a bucket's mean is the running mean of its first
// samples, then an exponentially weighted mean whose sample weight is 1/(profileMemoryWeeks × samples per bucket
// and week). Long enough to average out single odd weeks, short enough to follow the slow change of demand over
// months and years that the all-time historical average cannot.
const profileMemoryWeeks = 26

// Names of the calendar features (package features) from which the local time of week is read.
const (
	dowSinName = "dow_sin"
	dowCosName = "dow_cos"
)

// history is what the baselines and the seasonal inputs know of the past targets of one approach: the week ring,
// the all-time time-of-week sums (UTC buckets) and the recent weekly profile (local buckets). It is the shared
// section of the snapshot's baseline state.
type history struct {
	windowS, bucketS int64
	// ring[(start/windowS) mod len] is the observed target of the window, NaN when absent; only windows in
	// (last − 1 week, last] are valid (see slot).
	ring      []float64
	bucketSum []float64
	bucketN   []uint64
	// profMean and profN are the recent weekly profile per local time-of-week bucket (bucketS wide).
	profMean []float64
	profN    []uint64
}

func newHistory(windowS, bucketS int64) history {
	h := history{windowS: windowS, bucketS: bucketS, ring: make([]float64, week/windowS)}
	for i := range h.ring {
		h.ring[i] = math.NaN()
	}
	nb := week / bucketS
	h.bucketSum, h.bucketN = make([]float64, nb), make([]uint64, nb)
	h.profMean, h.profN = make([]float64, nb), make([]uint64, nb)
	return h
}

// record adds window start's target (natural units) to the history. prev is the previously recorded window when
// hasPrev; the ring slots of the windows between the two are cleared. localTOW is the window's local time of
// week in seconds (see localTimeOfWeek).
func (h *history) record(start int64, prev int64, hasPrev bool, y float64, observed bool, localTOW int64) {
	n := int64(len(h.ring))
	idx := start / h.windowS
	if hasPrev {
		// Clear the slots of the windows skipped since the last one (at most a week of them).
		p := prev / h.windowS
		for k := p + 1; k < idx && k <= p+n; k++ {
			h.ring[mod(k, n)] = math.NaN()
		}
	}
	if !observed {
		h.ring[mod(idx, n)] = math.NaN()
		return
	}
	h.ring[mod(idx, n)] = y
	b := mod(start, week) / h.bucketS
	h.bucketSum[b] += y
	h.bucketN[b]++
	pb := localTOW / h.bucketS
	h.profN[pb]++
	w := max(1/float64(h.profN[pb]), float64(h.windowS)/float64(profileMemoryWeeks*h.bucketS))
	h.profMean[pb] += w * (y - h.profMean[pb])
}

// slot returns the observed target of window w given that last is the last recorded window, NaN when absent or
// outside the ring's week.
func (h *history) slot(w, last int64) float64 {
	if w > last || w <= last-week {
		return math.NaN()
	}
	return h.ring[mod(w/h.windowS, int64(len(h.ring)))]
}

// average returns the historical average of the UTC time-of-week bucket of instant at, NaN when empty.
func (h *history) average(at int64) float64 {
	b := mod(at, week) / h.bucketS
	if h.bucketN[b] == 0 {
		return math.NaN()
	}
	return h.bucketSum[b] / float64(h.bucketN[b])
}

// profile returns the recent weekly profile at local time of week tow (seconds), NaN when empty.
func (h *history) profile(tow int64) float64 {
	b := mod(tow, week) / h.bucketS
	if h.profN[b] == 0 {
		return math.NaN()
	}
	return h.profMean[b]
}

// calendar locates the local time-of-week features in a regression input; -1 when the feature set has none
// (the local time of week is then UTC's).
type calendar struct{ sin, cos int }

func calendarOf(names []string) calendar {
	return calendar{slices.Index(names, dowSinName), slices.Index(names, dowCosName)}
}

// localTimeOfWeek returns the local time of week of window start, in seconds since local Monday 00:00, read
// from the continuous day-of-week features (package features: dow = 2π(d + s/86400)/7 in local time), so that
// the profile follows local time across daylight-saving changes without the learner knowing the time zone.
func (c calendar) localTimeOfWeek(start int64, x []float64) int64 {
	if c.sin < 0 || c.cos < 0 {
		return mod(start, week)
	}
	turn := math.Atan2(x[c.sin], x[c.cos]) / (2 * math.Pi)
	return mod(int64(math.Round(turn*week)), week)
}

// seasonalInputs writes the seasonal inputs of the forecast of start+hs into dst (numSeasonal values, in
// seasonalNames order). last is the history's last recorded window: start itself in Apply, which records the
// window first (Predict does the same on a copy of the snapshot's history when the snapshot is older than the
// frame). localTOW is start's local time of week and scale the target's fixed divisor.
func (h *history) seasonalInputs(dst []float64, start, last, hs, localTOW int64, scale float64) {
	at := start + hs
	scaled := func(v float64) (float64, float64) {
		if math.IsNaN(v) {
			return 0, 0
		}
		return clampInput(v / scale), 1
	}
	ramp := func(to, from float64) float64 {
		if math.IsNaN(to) || math.IsNaN(from) {
			return 0
		}
		return clampInput((to - from) / scale)
	}
	haTo, haFrom := h.average(at), h.average(start)
	dst[0], dst[1] = scaled(haTo)
	dst[2] = ramp(haTo, haFrom)
	dst[3], dst[4] = scaled(h.slot(at-week, last))
	prTo, prFrom := h.profile(localTOW+hs), h.profile(localTOW)
	dst[5], dst[6] = scaled(prTo)
	dst[7] = ramp(prTo, prFrom)
}

// clampInput keeps a derived input within MaxAbsFeature (a pathological history, such as flows of 1e12 veh/h on
// a tiny capacity, must not produce an input that Apply would reject in a frame).
func clampInput(v float64) float64 {
	return math.Max(-MaxAbsFeature, math.Min(MaxAbsFeature, v))
}

// baseNames returns the frame's feature names (without "bias") of a model's regression inputs, which end with
// the seasonal inputs; ok is false when they do not (a model of an older format).
func baseNames(names []string) (base []string, ok bool) {
	k := len(names) - numSeasonal
	if k < 0 || !slices.Equal(names[k:], seasonalNames[:]) {
		return nil, false
	}
	return names[:k:k], true
}

// bucketSOf returns the time-of-week bucket width for windows of windowS seconds: one hour when the window is at
// most an hour, else one window.
func bucketSOf(windowS int64) int64 {
	if windowS <= hour {
		return hour
	}
	return windowS
}

// validWindow reports whether windows of ws seconds are supported (see Config.WindowS).
func validWindow(ws int64) bool {
	switch {
	case ws <= 0:
		return false
	case ws <= hour:
		return hour%ws == 0
	default:
		return ws%hour == 0 && week%ws == 0
	}
}

// historyFromBlob decodes the shared section of a snapshot's baseline state, sized by the window it records.
func historyFromBlob(b []byte) (history, error) {
	r := &blobReader{b: b, off: min(len(b), len(blobMagic))}
	ws := int64(r.uvarint())
	if r.err != nil || !validWindow(ws) || int64(len(b)) < 8*(week/ws) {
		// Checked before sizing the ring so that corrupt bytes cannot ask for a huge allocation.
		return history{}, fmt.Errorf("baseline state: window %d s: %w", ws, ErrInvalidSnapshot)
	}
	h := newHistory(ws, bucketSOf(ws))
	if _, err := h.decodeShared(b); err != nil {
		return history{}, err
	}
	return h, nil
}
