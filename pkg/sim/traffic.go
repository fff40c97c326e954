package sim

import (
	"math"
	"math/rand/v2"
	"time"

	"github.com/greenwave-city/greenwave/pkg/ingest"

	"github.com/greenwave-city/greenwave/pkg/topology"
)

// Traffic model constants; see the package documentation.
const (
	jamDensityVehPerKm   = 150.0
	approachNoiseMemoryS = 900.0
	approachNoiseSigma   = 0.08
	measurementNoise     = 0.05
	minSpeedKmh          = 3.0
)

// approach holds what the detectors of one approach share: peak flow, free-flow speed and a slowly varying
// demand factor.
type approach struct {
	peakVPH     float64
	freeFlowKmh float64
	logNoise    float64
	rng         *rand.Rand
}

func newApproach(intersection string, a topology.Approach, cfg Config) *approach {
	rng := newRNG(cfg.Seed, "approach:"+intersection+"/"+a.ID)
	ratio := cfg.PeakDemandRatio * (0.7 + 0.6*rng.Float64())
	return &approach{
		peakVPH:     min(ratio, 1) * a.CapacityVPH(),
		freeFlowKmh: 45 + 15*rng.Float64(),
		logNoise:    approachNoiseSigma * rng.NormFloat64(),
		rng:         rng,
	}
}

// advance steps the AR(1) log-demand noise by one interval; decay is exp(-interval/memory).
func (a *approach) advance(decay float64) {
	a.logNoise = decay*a.logNoise + math.Sqrt(1-decay*decay)*approachNoiseSigma*a.rng.NormFloat64()
}

// factor is the approach's current multiplicative demand noise, with mean 1.
func (a *approach) factor() float64 {
	return math.Exp(a.logNoise - approachNoiseSigma*approachNoiseSigma/2)
}

// detector is one detector's generator, including its fault behaviour.
type detector struct {
	intersection, approach, id, lane string
	app                              *approach
	share                            float64 // share of the approach flow
	lanes                            float64 // lanes this detector covers
	station                          int     // index into Simulator.stations, -1 for none
	rng                              *rand.Rand

	fault       FaultKind
	faultActive bool
	toggleAt    time.Time
	last        measurement // last healthy measurement with a non-zero count
}

// measurement is what a detector reports for one interval.
type measurement struct {
	count     float64
	occupancy float64
	speed     float64 // 0: absent
}

// reading generates the detector's reading for the interval starting at at; demand is the profile value times
// the weather factor. Only the measured fields are set.
func (d *detector) reading(at time.Time, intervalS int, demand float64) ingest.TrafficReading {
	mean := d.app.peakVPH * d.share * demand * d.app.factor() * float64(intervalS) / 3600
	if d.fault == FaultStuck || d.fault == FaultDead {
		d.updateSpell(at)
	}
	m := d.measure(poisson(d.rng, mean), intervalS)
	stuck := d.fault == FaultStuck && d.faultActive
	if m.count > 0 && !stuck {
		d.last = m
	}
	switch {
	case stuck:
		if d.last.count == 0 {
			d.last = d.measure(max(1, math.Round(mean)), intervalS)
		}
		m = d.last
	case d.fault == FaultDead && d.faultActive:
		m = measurement{}
	}

	r := ingest.TrafficReading{Count: m.count}
	occ, speed := m.occupancy, m.speed
	if d.fault == FaultSpiky {
		switch u := d.rng.Float64(); {
		case u < 0.005:
			occ = 1.3
		case u < 0.01:
			speed = -(10 + math.Round(30*d.rng.Float64()))
		case u < 0.04:
			r.Count *= 5
		}
	}
	r.FlowVPH = r.Count * 3600 / float64(intervalS)
	r.OccupancyRatio, r.HasOccupancy = occ, true
	if speed != 0 {
		r.SpeedKMH, r.HasSpeed = speed, true
	}
	return r
}

// measure turns a count into a measurement with the Greenshields free-flow branch, per lane.
func (d *detector) measure(count float64, intervalS int) measurement {
	if count <= 0 {
		return measurement{}
	}
	q := count * 3600 / float64(intervalS) / d.lanes
	k := greenshieldsDensity(q, d.app.freeFlowKmh)
	occ := k / jamDensityVehPerKm * (1 + measurementNoise*d.rng.NormFloat64())
	speed := d.app.freeFlowKmh * (1 - k/jamDensityVehPerKm) * (1 + measurementNoise*d.rng.NormFloat64())
	return measurement{
		count:     count,
		occupancy: math.Round(clamp(occ, 0.001, 1)*1e4) / 1e4,
		speed:     math.Round(max(speed, minSpeedKmh)*10) / 10,
	}
}

// greenshieldsDensity returns the density (veh/km/lane) on the free-flow branch of Greenshields' model for the
// flow q (veh/h/lane) and free-flow speed vf (km/h); flows above capacity vf·kj/4 give the critical density kj/2.
func greenshieldsDensity(q, vf float64) float64 {
	kj := jamDensityVehPerKm
	capacity := vf * kj / 4
	if q >= capacity {
		return kj / 2
	}
	return kj / 2 * (1 - math.Sqrt(1-q/capacity))
}

// updateSpell switches a stuck or dead detector between healthy periods and fault spells.
func (d *detector) updateSpell(at time.Time) {
	for !at.Before(d.toggleAt) {
		d.faultActive = !d.faultActive
		mean := healthyMean
		if d.faultActive {
			mean = d.fault.spellMean()
		}
		dur := time.Duration(d.rng.ExpFloat64() * float64(mean))
		d.toggleAt = d.toggleAt.Add(max(dur, minSpell))
	}
}

// poisson draws a Poisson variate with the given mean: Knuth's product method below 30, a rounded normal
// approximation above.
func poisson(rng *rand.Rand, mean float64) float64 {
	if mean <= 0 {
		return 0
	}
	if mean >= 30 {
		return max(0, math.Round(mean+math.Sqrt(mean)*rng.NormFloat64()))
	}
	limit := math.Exp(-mean)
	n, p := 0.0, rng.Float64()
	for p > limit {
		n++
		p *= rng.Float64()
	}
	return n
}

func clamp(x, lo, hi float64) float64 {
	return math.Min(math.Max(x, lo), hi)
}
