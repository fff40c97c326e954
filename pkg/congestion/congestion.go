// Package congestion maps a predicted degree of saturation (flow over capacity, v/c) to a congestion level and a
// Highway Capacity Manual level of service.
//
// The default thresholds on v/c follow the HCM's volume-to-capacity bands used for planning-level analysis:
//
//	level     v/c            LOS
//	free      < 0.60         A
//	light     0.60 – 0.70    B
//	moderate  0.70 – 0.85    C, D (D from 0.80)
//	heavy     0.85 – 1.00    E (from 0.90); D below
//	severe    ≥ 1.00         F
//
// HCM defines signalised-intersection LOS by control delay; v/c bands are the accepted proxy when only flows are
// forecast. Thresholds are configurable.
//
// Speed and occupancy forecasts have their own documented bands ([SpeedThresholds], [OccupancyThresholds]);
// [Classifier] picks the right one for a forecast's target.
package congestion

import (
	"fmt"
	"math"
)

// Level is a congestion level, from free to severe; LevelUnspecified when a value cannot be classified.
type Level int

// The levels, in increasing congestion.
const (
	LevelUnspecified Level = iota
	LevelFree
	LevelLight
	LevelModerate
	LevelHeavy
	LevelSevere
)

// Levels returns every level, LevelUnspecified first.
func Levels() []Level {
	return []Level{LevelUnspecified, LevelFree, LevelLight, LevelModerate, LevelHeavy, LevelSevere}
}

// String returns the level's name ("free", …; "unspecified").
func (l Level) String() string {
	switch l {
	case LevelFree:
		return "free"
	case LevelLight:
		return "light"
	case LevelModerate:
		return "moderate"
	case LevelHeavy:
		return "heavy"
	case LevelSevere:
		return "severe"
	case LevelUnspecified:
		return "unspecified"
	}
	return fmt.Sprintf("Level(%d)", int(l))
}

// Thresholds are the upper v/c bounds of the free, light, moderate and heavy levels; above Heavy is severe.
type Thresholds struct {
	Free, Light, Moderate, Heavy float64
}

// DefaultThresholds returns the documented defaults.
func DefaultThresholds() Thresholds {
	return Thresholds{Free: 0.60, Light: 0.70, Moderate: 0.85, Heavy: 1.00}
}

// Validate checks the thresholds are finite and increasing.
func (t Thresholds) Validate() error {
	if !(t.Free > 0 && t.Free < t.Light && t.Light < t.Moderate && t.Moderate < t.Heavy && !math.IsInf(t.Heavy, 0)) {
		return fmt.Errorf("congestion thresholds must increase: free %g < light %g < moderate %g < heavy %g", t.Free, t.Light, t.Moderate, t.Heavy)
	}
	return nil
}

// Level maps a degree of saturation to a congestion level; NaN gives UNSPECIFIED.
func (t Thresholds) Level(dos float64) Level {
	switch {
	case math.IsNaN(dos):
		return LevelUnspecified
	case dos < t.Free:
		return LevelFree
	case dos < t.Light:
		return LevelLight
	case dos < t.Moderate:
		return LevelModerate
	case dos < t.Heavy:
		return LevelHeavy
	default:
		return LevelSevere
	}
}

// LevelOfService maps a degree of saturation to the HCM letter A–F ("" for NaN).
func LevelOfService(dos float64) string {
	switch {
	case math.IsNaN(dos):
		return ""
	case dos <= 0.60:
		return "A"
	case dos <= 0.70:
		return "B"
	case dos <= 0.80:
		return "C"
	case dos <= 0.90:
		return "D"
	case dos <= 1.00:
		return "E"
	default:
		return "F"
	}
}
