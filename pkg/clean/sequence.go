package clean

import (
	"fmt"
	"math"
	"time"
)

// The sequence checks (stuck detector, Hampel outlier filter) look at each detector's valid readings in
// event-time order, when their window closes, separately for each measured quantity.

// quantity is a measured quantity of a reading the sequence checks look at; it indexes detState.Seq.
type quantity int

const (
	qFlow  quantity = iota // veh/h (the stuck check looks at the count)
	qSpeed                 // km/h
	qOcc                   // ratio 0..1
	numQuantities
)

var quantityNames = [numQuantities]string{"flow", "speed", "occupancy"}

// seqState is one detector's sequence state for one quantity.
type seqState struct {
	// Hist holds the quantity's last Config.HampelWindow values, oldest first. Flagged values are kept, so that
	// a genuine level shift (a lane closed, a new speed limit) stops being flagged after HampelWindow/2
	// readings. Base holds, for each, the seasonal profile's value at its time as it was before the value was
	// learned (−1: the profile did not cover it, or the raw mode): residuals against the profile as it stood
	// then are out-of-sample, whereas against today's profile, which has learned the value itself, they would
	// shrink towards zero.
	Hist []float64 `json:"hist,omitempty"`
	Base []float64 `json:"base,omitempty"`
	// Mean and Weight are the seasonal profile of Config.HampelSeasonal: hoursPerWeek bucket means, each an
	// exponentially forgetting kernel average of the unflagged values near the bucket's centre, and the kernel
	// weight each bucket has received (capped at 1/HampelProfileAlpha, past which it no longer matters). Both
	// are float32 values (rounded at every update) and nil until the first value.
	Mean   []float64 `json:"mean,omitempty"`
	Weight []float64 `json:"weight,omitempty"`
	// Last is the value of the current run of equal values (the count for flow), Run its length; Run is 0
	// when the last reading did not carry the quantity.
	Last float64 `json:"last,omitempty"`
	Run  int     `json:"run,omitempty"`
}

// maxProfileWeight caps a profile bucket's weight: past 1/HampelProfileAlpha it no longer matters, and a
// bound keeps restored state checkable.
const maxProfileWeight = 1e6

// minProfileWeight is the kernel weight a profile bucket needs before the seasonal filter relies on it: about
// one reading at its centre. Before that the filter falls back to the raw values.
const minProfileWeight = 1

// slot is where a reading falls in the seasonal profile: between buckets b0 (weight 1−f) and b1 (weight f).
type slot struct {
	b0, b1 int
	f      float64
}

// profileSlot places the midpoint of r's interval (local time) in the profile. Bucket (day, h) is centred on
// h:30, so a reading falls between the buckets of the hours around it, weighted by how close their centres
// are: a reading of a whole hour starting on the hour lands exactly on its bucket, and sub-hourly readings
// see a profile without steps at the hours.
func (s *Intersection) profileSlot(r *Reading) slot {
	t := r.Start.Add(time.Duration(r.IntervalS)*time.Second/2 - 30*time.Minute).In(s.loc)
	f := float64(t.Minute()*60+t.Second()) / 3600
	return slot{weekHour(t), weekHour(t.Add(time.Hour)), f}
}

// weekHour is the hour-of-week bucket of a local time: hours since Monday 00:00.
func weekHour(t time.Time) int { return ((int(t.Weekday())+6)%7)*24 + t.Hour() }

// baseline is the seasonal profile's value at sl, and whether every bucket it draws on has enough weight to
// be relied on.
func (q *seqState) baseline(sl slot) (float64, bool) {
	if q.Mean == nil {
		return 0, false
	}
	if (sl.f < 1 && q.Weight[sl.b0] < minProfileWeight) || (sl.f > 0 && q.Weight[sl.b1] < minProfileWeight) {
		return 0, false
	}
	return q.Mean[sl.b0] + sl.f*(q.Mean[sl.b1]-q.Mean[sl.b0]), true
}

// learn moves the two buckets around position u towards x, each by its kernel weight k times
// max(1/weight, alpha): a running mean while a bucket is young, exponential forgetting afterwards.
func (q *seqState) learn(sl slot, x, alpha float64) {
	if q.Mean == nil {
		q.Mean = make([]float64, hoursPerWeek)
		q.Weight = make([]float64, hoursPerWeek)
	}
	for _, bk := range [2]struct {
		b int
		k float64
	}{{sl.b0, 1 - sl.f}, {sl.b1, sl.f}} {
		if bk.k <= 0 {
			continue
		}
		// float32 by design (4 bytes a bucket in the state); a weight past 1/alpha no longer matters, so it
		// stops there.
		w := f32(math.Min(q.Weight[bk.b]+bk.k, math.Min(maxProfileWeight, math.Max(minProfileWeight, 1/alpha))))
		q.Weight[bk.b] = w
		q.Mean[bk.b] = f32(q.Mean[bk.b] + bk.k*math.Max(1/w, alpha)*(x-q.Mean[bk.b]))
	}
}

// push appends x and its baseline (−1: none) to the history, keeping the last n values.
func (q *seqState) push(x, base float64, n int) {
	q.Hist = append(q.Hist, x)
	q.Base = append(q.Base, base)
	if len(q.Hist) > n {
		q.Hist = append(q.Hist[:0], q.Hist[len(q.Hist)-n:]...)
		q.Base = append(q.Base[:0], q.Base[len(q.Base)-n:]...)
	}
}

// hampel reports whether x is an outlier against q's history, and the value expected instead. base is the
// seasonal baseline of x (−1: none). It needs max(3, HampelWindow/2) previous values. When x has a baseline and
// so do at least max(3, HampelWindow/2) values of the history, it compares residuals from the profile, eᵢ =
// Hist[i] − Base[i] over those values and e = x − base (a rush-hour ramp, which the profile knows, is then no
// outlier); otherwise the raw values (eᵢ = Hist[i], e = x). Either way x is flagged when
// |e − median(eᵢ)| > K·1.4826·max(MAD(eᵢ), floor, HampelMinMADFraction·|base + median(eᵢ)|), and the value
// expected instead is base + median(eᵢ). seasonal reports which of the two comparisons was made.
func (s *Intersection) hampel(q *seqState, x, base, floor float64) (want float64, out, seasonal bool) {
	if len(q.Hist) < max(3, s.cfg.HampelWindow/2) {
		return 0, false, false
	}
	res := s.resBuf[:0]
	seasonal = base >= 0
	for i := 0; seasonal && i < len(q.Hist); i++ {
		if q.Base[i] >= 0 {
			res = append(res, q.Hist[i]-q.Base[i])
		}
	}
	if seasonal && len(res) < max(3, s.cfg.HampelWindow/2) {
		seasonal = false
	}
	if !seasonal {
		base = 0
		res = append(res[:0], q.Hist...)
	}
	buf := append(s.sortBuf[:0], res...)
	med := median(buf)
	for i, e := range res {
		buf[i] = math.Abs(e - med)
	}
	mad := median(buf)
	s.resBuf, s.sortBuf = res, buf
	thr := s.cfg.HampelK * 1.4826 * math.Max(mad, math.Max(floor, s.cfg.HampelMinMADFraction*math.Abs(base+med)))
	return base + med, math.Abs(x-base-med) > thr, seasonal
}

// sequence runs the stuck-detector check and the outlier filter on one valid reading of detector d and
// advances the detector's sequence state. It returns the reading as it is aggregated (flagged values replaced
// by the expected ones when Config.ReplaceOutliers; Count stays the observed one, the weight of the speed
// average), whether any of its quantities was flagged, and its stuck_detector rejection (nil when not stuck;
// a stuck reading is not aggregated).
func (s *Intersection) sequence(d int, r Reading) (Reading, bool, *Rejection) {
	ds := &s.st.Dets[d]
	// A zero speed over an interval without vehicles means that nothing passed, not a standstill: it is no
	// speed measurement.
	// A reading without a count has no flow to check (a speed-only reading's zero speed is then no measurement
	// either: nothing tells a standstill from an empty road).
	has := [numQuantities]bool{!r.NoCount, r.HasSpeed && !(r.SpeedKMH == 0 && r.Count == 0), r.HasOccupancy}
	runOf := [numQuantities]float64{r.Count, r.SpeedKMH, r.Occupancy}
	var stuck *Rejection
	for q := range numQuantities {
		sq := &ds.Seq[q]
		v := runOf[q]
		switch {
		case !has[q]:
			sq.Run, v = 0, 0
		case v > 0 && sq.Run > 0 && v == sq.Last:
			sq.Run++
		default:
			sq.Run = 1
		}
		sq.Last = v
		if stuck == nil && s.cfg.StuckRun > 0 && v > 0 && sq.Run >= s.cfg.StuckRun {
			stuck = &Rejection{Reading: r, Reason: ReasonStuckDetector,
				Detail: fmt.Sprintf("%s repeated in %d consecutive intervals", describe(q, v), sq.Run)}
		}
	}
	if stuck != nil {
		return r, false, stuck
	}
	var u slot
	if s.cfg.HampelSeasonal {
		u = s.profileSlot(&r)
	}
	vals := [numQuantities]*float64{&r.FlowVPH, &r.SpeedKMH, &r.Occupancy}
	floors := [numQuantities]float64{s.cfg.HampelMinMADVPH, s.cfg.HampelMinMADKMH, s.cfg.HampelMinMADOccupancy}
	highs := [numQuantities]float64{s.dets[d].maxFlowVPH, MaxSpeedKMH, 1}
	flagged := false
	for q := range numQuantities {
		if !has[q] {
			continue
		}
		sq := &ds.Seq[q]
		x := *vals[q]
		base := -1.0
		if s.cfg.HampelSeasonal {
			if b, ok := sq.baseline(u); ok {
				base = b
			}
		}
		want, out, seasonal := s.hampel(sq, x, base, floors[q])
		sq.push(x, base, s.cfg.HampelWindow)
		if out {
			flagged = true
			if s.cfg.ReplaceOutliers {
				*vals[q] = math.Min(math.Max(want, 0), highs[q])
			}
		}
		// What the profile calls an outlier stays out of it, or one incident would shift the baseline of its
		// hour for weeks. What only the raw comparison flagged goes in: at hourly data that is every rush-hour
		// ramp, and keeping those out would keep the profile from ever covering them.
		if s.cfg.HampelSeasonal && (!out || !seasonal) {
			sq.learn(u, x, s.cfg.HampelProfileAlpha)
		}
	}
	return r, flagged, nil
}

// describe names a quantity's value for a stuck_detector detail.
func describe(q quantity, v float64) string {
	switch q {
	case qSpeed:
		return fmt.Sprintf("speed %s km/h", ftoa(v))
	case qOcc:
		return fmt.Sprintf("occupancy %s", ftoa(v))
	}
	return fmt.Sprintf("count %s", ftoa(v))
}
