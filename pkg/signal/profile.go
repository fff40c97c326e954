package signal

import (
	"math"
	"time"

	"github.com/greenwave-city/greenwave/pkg/topology"
)

// ProfileBuckets is the number of time-of-week buckets of a Profile: one per hour of the week.
const ProfileBuckets = 7 * 24

// ProfileBucket returns the hour-of-week bucket of t in its location: 0 is Monday 00:00–01:00, 167 Sunday
// 23:00–24:00. Callers choose the location (time.In) so the profile follows local traffic patterns.
func ProfileBucket(t time.Time) int {
	wd := (int(t.Weekday()) + 6) % 7 // Monday = 0
	return wd*24 + t.Hour()
}

// ProfileCell is the learned flow of one approach in one bucket.
type ProfileCell struct {
	// MeanVPH is the exponentially weighted mean of the observed flows, veh/h.
	MeanVPH float64 `json:"m"`
	// Samples counts the observations learned (saturating).
	Samples uint32 `json:"n"`
}

// Profile is an intersection's time-of-week profile of observed approach flows, the history the time-of-day
// fallback plans from. The zero value is empty and ready to use. It is a plain value with no internal
// synchronisation: one goroutine (the partition's) owns it. It round-trips exactly through encoding/json.
type Profile struct {
	// Cells maps approach ID → bucket → cell; absent cells have no samples.
	Cells map[string]map[int]ProfileCell `json:"cells,omitempty"`
}

// Observe learns one observed flow of an approach in a bucket: the cell's mean moves towards flow by the
// weight max(alpha, 1/n) where n counts the samples including this one, so the first samples average
// arithmetically and later ones forget geometrically with factor 1 − alpha. It ignores (and returns false for)
// a bucket outside [0, ProfileBuckets), a flow that is NaN, infinite or negative, or alpha outside (0, 1].
func (p *Profile) Observe(approach string, bucket int, flowVPH, alpha float64) bool {
	if bucket < 0 || bucket >= ProfileBuckets || !(flowVPH >= 0) || math.IsInf(flowVPH, 1) || !(alpha > 0 && alpha <= 1) {
		return false
	}
	if p.Cells == nil {
		p.Cells = map[string]map[int]ProfileCell{}
	}
	cells := p.Cells[approach]
	if cells == nil {
		cells = map[int]ProfileCell{}
		p.Cells[approach] = cells
	}
	c := cells[bucket]
	if c.Samples < math.MaxUint32 {
		c.Samples++
	}
	w := math.Max(alpha, 1/float64(c.Samples))
	c.MeanVPH += w * (flowVPH - c.MeanVPH)
	cells[bucket] = c
	return true
}

// Flows returns the learned flow of every approach of in that has at least minSamples samples in a bucket, for
// DecideInput.TimeOfDayFlows, or nil when none has. An approach with fewer samples is absent: Decide plans from
// a partial profile only when the absent approaches' detectors failed (held at recall); otherwise a plan from
// it would be a guess, and the time-of-day path fails.
func (p Profile) Flows(in topology.Intersection, bucket int, minSamples uint32) map[string]float64 {
	if minSamples == 0 {
		minSamples = 1
	}
	var out map[string]float64
	for _, a := range in.Approaches {
		c, ok := p.Cells[a.ID][bucket]
		if !ok || c.Samples < minSamples {
			continue
		}
		if out == nil {
			out = make(map[string]float64, len(in.Approaches))
		}
		out[a.ID] = c.MeanVPH
	}
	return out
}
