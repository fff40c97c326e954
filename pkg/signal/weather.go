package signal

import "math"

// Weather factors applied to saturation flows by SaturationFactor.
const (
	// FactorLightRain applies for precipitation in [RainTraceMMH, ModerateRainMMH).
	FactorLightRain = 0.95
	// FactorModerateRain applies for precipitation in [ModerateRainMMH, HeavyRainMMH).
	FactorModerateRain = 0.92
	// FactorHeavyRain applies for precipitation of HeavyRainMMH or more.
	FactorHeavyRain = 0.88
	// FactorLightSnow applies for any snowfall below HeavySnowMMH.
	FactorLightSnow = 0.88
	// FactorHeavySnow applies for snowfall of HeavySnowMMH or more.
	FactorHeavySnow = 0.80
	// FactorFog applies when visibility is below FogVisibilityM.
	FactorFog = 0.90
)

// Weather thresholds used by SaturationFactor (the usual meteorological intensity classes).
const (
	// RainTraceMMH: less precipitation than this is a trace and treated as dry.
	RainTraceMMH = 0.1
	// ModerateRainMMH and HeavyRainMMH separate light, moderate and heavy rain.
	ModerateRainMMH = 2.5
	HeavyRainMMH    = 7.6
	// HeavySnowMMH separates light from heavy snowfall (liquid equivalent, as reported by weather feeds).
	HeavySnowMMH = 1.0
	// FogVisibilityM: visibility below this counts as fog.
	FogVisibilityM = 200
)

// SaturationFactor returns the factor by which weather reduces saturation flows, for Options.SaturationFactor.
// Inputs are the weather observation's precipitation (mm/h), snowfall (mm/h) and visibility (m); nil means not
// observed, and a nil, NaN, infinite or negative value leaves its effect out (factor 1 for it).
//
// Factors: rain ≥ 0.1 mm/h light 0.95, ≥ 2.5 mm/h moderate 0.92, ≥ 7.6 mm/h heavy 0.88; snow > 0 light 0.88,
// ≥ 1 mm/h heavy 0.80; visibility < 200 m (fog) 0.90. Precipitation feeds usually include snow, so rain and snow
// are not compounded: the smaller of the two applies. Fog is independent and multiplies, so the result lies in
// [0.72, 1].
//
// The values sit inside the ranges usually quoted: the HCM 2010 (ch. 10) weather capacity adjustment factors,
// roughly 0.85–0.98 for rain, 0.7–0.95 for snow and about 0.9 for poor visibility, and the saturation-flow
// reductions Perrin, Martin & Hansen (2001) measured at signalised intersections, about 6% on wet pavement and
// 11–21% in snow. They are defaults, not calibrated for any city.
func SaturationFactor(precipitationMMH, snowMMH, visibilityM *float64) float64 {
	wet := 1.0
	if v, ok := observed(precipitationMMH); ok {
		switch {
		case v >= HeavyRainMMH:
			wet = FactorHeavyRain
		case v >= ModerateRainMMH:
			wet = FactorModerateRain
		case v >= RainTraceMMH:
			wet = FactorLightRain
		}
	}
	if v, ok := observed(snowMMH); ok && v > 0 {
		snow := FactorLightSnow
		if v >= HeavySnowMMH {
			snow = FactorHeavySnow
		}
		wet = math.Min(wet, snow)
	}
	fog := 1.0
	if v, ok := observed(visibilityM); ok && v < FogVisibilityM {
		fog = FactorFog
	}
	return wet * fog
}

func observed(p *float64) (float64, bool) {
	if p == nil || !(*p >= 0) || math.IsInf(*p, 1) {
		return 0, false
	}
	return *p, true
}
