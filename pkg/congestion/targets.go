package congestion

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/greenwave-city/greenwave/pkg/train"
)

// SpeedThresholds are the lower bounds of the speed ratio (predicted speed over the approach's free-flow
// speed) of the free, light, moderate and heavy levels; below Heavy is severe. A falling speed means congestion,
// so the bounds decrease.
//
// The defaults follow the HCM urban-street level-of-service bands on travel speed as a share of the base
// free-flow speed (A > 80 %, B > 67 %, C > 50 %, D > 40 %, E > 30 %, F ≤ 30 %), with D and E merged into heavy:
//
//	level     speed / free-flow    LOS
//	free      ≥ 0.80               A
//	light     0.67 – 0.80          B
//	moderate  0.50 – 0.67          C
//	heavy     0.30 – 0.50          D (from 0.40), E
//	severe    < 0.30               F
type SpeedThresholds struct {
	Free, Light, Moderate, Heavy float64
}

// DefaultSpeedThresholds returns the documented speed-ratio defaults.
func DefaultSpeedThresholds() SpeedThresholds {
	return SpeedThresholds{Free: 0.80, Light: 0.67, Moderate: 0.50, Heavy: 0.30}
}

// Validate checks the bounds decrease within (0, 1].
func (t SpeedThresholds) Validate() error {
	if !(t.Free <= 1 && t.Free > t.Light && t.Light > t.Moderate && t.Moderate > t.Heavy && t.Heavy > 0) {
		return fmt.Errorf("speed-ratio thresholds must decrease within (0, 1]: free %g > light %g > moderate %g > heavy %g", t.Free, t.Light, t.Moderate, t.Heavy)
	}
	return nil
}

// Level maps a speed ratio (speed / free-flow speed) to a congestion level; NaN gives UNSPECIFIED.
func (t SpeedThresholds) Level(ratio float64) Level {
	switch {
	case math.IsNaN(ratio):
		return LevelUnspecified
	case ratio >= t.Free:
		return LevelFree
	case ratio >= t.Light:
		return LevelLight
	case ratio >= t.Moderate:
		return LevelModerate
	case ratio >= t.Heavy:
		return LevelHeavy
	default:
		return LevelSevere
	}
}

// SpeedLevelOfService maps a speed ratio to the HCM urban-street letter A–F ("" for NaN).
func SpeedLevelOfService(ratio float64) string {
	switch {
	case math.IsNaN(ratio):
		return ""
	case ratio > 0.80:
		return "A"
	case ratio > 0.67:
		return "B"
	case ratio > 0.50:
		return "C"
	case ratio > 0.40:
		return "D"
	case ratio > 0.30:
		return "E"
	default:
		return "F"
	}
}

// OccupancyThresholds are the upper bounds of the detector occupancy ratio (0..1) of the free, light, moderate
// and heavy levels; at or above Heavy is severe.
//
// The HCM defines no level of service on occupancy. The defaults are the usual loop-detector rule of thumb: flow
// is free below about 10 % occupancy and breaks down past the critical occupancy of about 20–25 %; heavily
// queued approaches sit above 35 %. Calibrate them per site when the detectors' length or placement differ:
//
//	level     occupancy
//	free      < 0.10
//	light     0.10 – 0.15
//	moderate  0.15 – 0.25
//	heavy     0.25 – 0.35
//	severe    ≥ 0.35
type OccupancyThresholds struct {
	Free, Light, Moderate, Heavy float64
}

// DefaultOccupancyThresholds returns the documented occupancy defaults.
func DefaultOccupancyThresholds() OccupancyThresholds {
	return OccupancyThresholds{Free: 0.10, Light: 0.15, Moderate: 0.25, Heavy: 0.35}
}

// Validate checks the bounds increase within (0, 1].
func (t OccupancyThresholds) Validate() error {
	if !(t.Free > 0 && t.Free < t.Light && t.Light < t.Moderate && t.Moderate < t.Heavy && t.Heavy <= 1) {
		return fmt.Errorf("occupancy thresholds must increase within (0, 1]: free %g < light %g < moderate %g < heavy %g", t.Free, t.Light, t.Moderate, t.Heavy)
	}
	return nil
}

// Level maps an occupancy ratio to a congestion level; NaN gives UNSPECIFIED.
func (t OccupancyThresholds) Level(occ float64) Level {
	return Thresholds(t).Level(occ) // same shape: increasing upper bounds
}

// ParseBounds parses four comma-separated numbers (a configuration value such as "0.6,0.7,0.85,1") as the free,
// light, moderate and heavy bounds.
func ParseBounds(fields []string) (free, light, moderate, heavy float64, err error) {
	if len(fields) == 1 {
		fields = strings.Split(fields[0], ",")
	}
	if len(fields) != 4 {
		return 0, 0, 0, 0, fmt.Errorf("want 4 bounds (free, light, moderate, heavy), got %d", len(fields))
	}
	var v [4]float64
	for i, f := range fields {
		if v[i], err = strconv.ParseFloat(strings.TrimSpace(f), 64); err != nil || math.IsNaN(v[i]) {
			return 0, 0, 0, 0, fmt.Errorf("bound %d %q is not a number", i+1, f)
		}
	}
	return v[0], v[1], v[2], v[3], nil
}

// Classifier maps a forecast of any target to a congestion level and, where the HCM defines one, a level of
// service. The zero value is not valid; start from DefaultClassifier.
type Classifier struct {
	// Saturation applies to flow forecasts, via the degree of saturation (flow / capacity).
	Saturation Thresholds
	// Speed applies to speed forecasts, via the ratio to FreeFlowSpeedKMH.
	Speed SpeedThresholds
	// Occupancy applies to occupancy forecasts directly.
	Occupancy OccupancyThresholds
	// FreeFlowSpeedKMH is the speed of an uncongested approach, the divisor of the speed ratio.
	FreeFlowSpeedKMH float64
}

// DefaultClassifier returns the documented defaults with a 50 km/h free-flow speed (the usual urban limit).
func DefaultClassifier() Classifier {
	return Classifier{Saturation: DefaultThresholds(), Speed: DefaultSpeedThresholds(), Occupancy: DefaultOccupancyThresholds(), FreeFlowSpeedKMH: 50}
}

// Validate reports every invalid part.
func (c Classifier) Validate() []error {
	var errs []error
	for _, err := range []error{c.Saturation.Validate(), c.Speed.Validate(), c.Occupancy.Validate()} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if !(c.FreeFlowSpeedKMH > 0 && c.FreeFlowSpeedKMH < 300) {
		errs = append(errs, fmt.Errorf("free-flow speed %g km/h not in (0, 300)", c.FreeFlowSpeedKMH))
	}
	return errs
}

// Classify returns the level and level of service of a forecast value of the target, in the target's natural
// unit (veh/h, ratio, km/h), and the degree of saturation for flow (NaN otherwise or without a capacity).
// target is a train target name (train.TargetFlow, …). A value that cannot be classified (NaN, flow without
// capacity, unknown target) gives LevelUnspecified and "".
func (c Classifier) Classify(target string, value, capacityVPH float64) (level Level, los string, dos float64) {
	dos = math.NaN()
	switch target {
	case train.TargetFlow:
		if capacityVPH > 0 && !math.IsInf(capacityVPH, 0) {
			dos = value / capacityVPH
		}
		return c.Saturation.Level(dos), LevelOfService(dos), dos
	case train.TargetSpeed:
		r := value / c.FreeFlowSpeedKMH
		return c.Speed.Level(r), SpeedLevelOfService(r), dos
	case train.TargetOccupancy:
		return c.Occupancy.Level(value), "", dos
	}
	return LevelUnspecified, "", dos
}
