package sim

import (
	"strconv"
	"time"
)

// FaultKind is the way a faulty detector misbehaves.
type FaultKind int

// The fault kinds, assigned in this rotation to the detectors chosen as faulty.
const (
	// FaultNone is a healthy detector.
	FaultNone FaultKind = iota
	// FaultStuck repeats one non-zero reading unchanged during spells.
	FaultStuck
	// FaultDead reports zero count and zero occupancy during spells.
	FaultDead
	// FaultSpiky multiplies its count by 5 now and then and occasionally sends an impossible value
	// (occupancy 1.3 or a negative speed).
	FaultSpiky
)

// String returns the kind's lower-case name.
func (k FaultKind) String() string {
	switch k {
	case FaultNone:
		return "none"
	case FaultStuck:
		return "stuck"
	case FaultDead:
		return "dead"
	case FaultSpiky:
		return "spiky"
	}
	return "FaultKind(" + strconv.Itoa(int(k)) + ")"
}

// Fault names a faulty detector and how it misbehaves.
type Fault struct {
	// IntersectionID is the intersection the detector belongs to.
	IntersectionID string
	// DetectorID is the faulty detector.
	DetectorID string
	// Kind is how it misbehaves.
	Kind FaultKind
}

// Spell lengths of stuck and dead detectors (exponentially distributed, at least minSpell).
const (
	healthyMean = 3 * time.Hour
	stuckMean   = 90 * time.Minute
	deadMean    = time.Hour
	minSpell    = 10 * time.Minute
	firstOnset  = time.Hour
)

func (k FaultKind) spellMean() time.Duration {
	if k == FaultStuck {
		return stuckMean
	}
	return deadMean
}

// Faults returns the faulty detectors in topology order.
func (s *Simulator) Faults() []Fault {
	var out []Fault
	for _, d := range s.detectors {
		if d.fault != FaultNone {
			out = append(out, Fault{IntersectionID: d.intersection, DetectorID: d.id, Kind: d.fault})
		}
	}
	return out
}

// assignFaults picks cfg.FaultyDetectors detectors with the seed and gives them kinds in rotation.
func (s *Simulator) assignFaults() {
	n := min(s.cfg.FaultyDetectors, len(s.detectors))
	if n == 0 {
		return
	}
	rng := newRNG(s.cfg.Seed, "faults")
	kinds := []FaultKind{FaultStuck, FaultDead, FaultSpiky}
	for i, idx := range rng.Perm(len(s.detectors))[:n] {
		d := s.detectors[idx]
		d.fault = kinds[i%len(kinds)]
		if d.fault == FaultStuck || d.fault == FaultDead {
			// The first spell starts within the first hour; faultActive is toggled on at toggleAt.
			d.toggleAt = s.at.Add(time.Duration(d.rng.Float64() * float64(firstOnset)))
		}
	}
}
