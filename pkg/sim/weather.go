package sim

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/greenwave-city/greenwave/pkg/ingest"
)

// precip is the precipitation state of a station's Markov process.
type precip int

const (
	precipNone precip = iota
	precipLight
	precipHeavy
)

// transitionPerHour[from][to] are the transition rates of the precipitation process, per hour.
var transitionPerHour = [3][3]float64{
	precipNone:  {precipLight: 0.05, precipHeavy: 0.005},
	precipLight: {precipNone: 0.5, precipHeavy: 0.2},
	precipHeavy: {precipNone: 0.2, precipLight: 2},
}

// Weather model constants.
const (
	heavyRainMMH        = 7.6 // usual lower bound of heavy rain
	anomalyMemoryS      = 6 * 3600.0
	anomalySigmaC       = 3.0
	cloudMemoryS        = 3 * 3600.0
	wetCoolingC         = 1.5
	clearSkyCloudCover  = 0.25
	clearVisibilityM    = 10000.0
	annualMeanC         = 8.0
	annualAmplitudeC    = 14.0
	coldestDayOfYear    = 20
	dailyAmplitudeC     = 5.0
	coldestHourOfDay    = 3.0
	stationClimateRange = 2.0
)

// station is one weather station's state.
type station struct {
	id            string
	rng           *rand.Rand
	climateOffset float64
	anomaly       float64
	cloud         float64
	precip        precip
	snowing       bool
}

func newStation(id string, seed uint64, at time.Time) *station {
	rng := newRNG(seed, "station:"+id)
	st := &station{
		id:            id,
		rng:           rng,
		climateOffset: stationClimateRange * (2*rng.Float64() - 1),
		anomaly:       anomalySigmaC * rng.NormFloat64(),
		cloud:         rng.Float64(),
	}
	switch u := rng.Float64(); {
	case u < 0.08:
		st.precip = precipLight
	case u < 0.1:
		st.precip = precipHeavy
	}
	st.snowing = st.precip != precipNone && st.temperature(at) < 0
	return st
}

func sortStations(s []*station) {
	slices.SortFunc(s, func(a, b *station) int { return strings.Compare(a.id, b.id) })
}

// temperature is the station's air temperature at t in °C: seasonal and daily cycles, the station's offset,
// its current anomaly, and a little cooling while it precipitates.
func (st *station) temperature(t time.Time) float64 {
	seasonal := annualMeanC - annualAmplitudeC*math.Cos(2*math.Pi*float64(t.YearDay()-coldestDayOfYear)/365.25)
	hour := float64(t.Hour()) + float64(t.Minute())/60
	daily := -dailyAmplitudeC * math.Cos(2*math.Pi*(hour-coldestHourOfDay)/24)
	temp := seasonal + daily + st.climateOffset + st.anomaly
	if st.precip != precipNone {
		temp -= wetCoolingC
	}
	return temp
}

// demandFactor is the traffic demand factor of the station's current weather.
func (st *station) demandFactor() float64 {
	switch {
	case st.precip == precipNone:
		return 1
	case st.snowing:
		return SnowDemandFactor
	case st.precip == precipHeavy:
		return HeavyRainDemandFactor
	}
	return RainDemandFactor
}

// step advances the station by dtS seconds to t and returns its observation at t.
func (st *station) step(t time.Time, dtS int) ingest.WeatherReading {
	dt := float64(dtS)
	rates := transitionPerHour[st.precip]
	var total float64
	for _, r := range rates {
		total += r
	}
	if st.rng.Float64() < 1-math.Exp(-total*dt/3600) {
		u := st.rng.Float64() * total
		for to, r := range rates {
			if r > 0 && u < r {
				st.precip = precip(to)
				break
			}
			u -= r
		}
	}
	rho := math.Exp(-dt / anomalyMemoryS)
	st.anomaly = rho*st.anomaly + math.Sqrt(1-rho*rho)*anomalySigmaC*st.rng.NormFloat64()
	rho = math.Exp(-dt / cloudMemoryS)
	st.cloud = clamp(rho*st.cloud+(1-rho)*0.5+math.Sqrt(1-rho*rho)*0.35*st.rng.NormFloat64(), 0, 1)

	temp := st.temperature(t)
	st.snowing = st.precip != precipNone && temp < 0

	var rate, snow, cloud, visibility float64
	condition := "Rain"
	switch {
	case st.precip == precipNone:
		cloud = st.cloud
		visibility = clearVisibilityM
		condition = "Clouds"
		if cloud < clearSkyCloudCover {
			condition = "Clear"
		} else if cloud > 0.8 {
			visibility = 7000 + 3000*st.rng.Float64()
		}
	case st.snowing && st.precip == precipLight:
		rate = st.lognormal(0.4, 0.6, 0.1, 2)
		visibility = 1000 + 4000*st.rng.Float64()
		condition = "Snow"
	case st.snowing:
		rate = st.lognormal(2.5, 0.4, 1, 8)
		visibility = 200 + 800*st.rng.Float64()
		condition = "Snow"
	case st.precip == precipLight:
		rate = st.lognormal(1.2, 0.6, 0.1, heavyRainMMH-0.1)
		visibility = 4000 + 5000*st.rng.Float64()
	default:
		rate = st.lognormal(12, 0.4, heavyRainMMH, 40)
		visibility = 1000 + 2000*st.rng.Float64()
	}
	if st.precip != precipNone {
		cloud = 0.9 + 0.1*st.rng.Float64()
	}
	rate = math.Round(rate*10) / 10
	if st.snowing {
		snow = rate
	}
	temp = math.Round(temp*10) / 10
	cloud = math.Round(cloud*100) / 100
	visibility = math.Round(visibility/100) * 100
	return ingest.WeatherReading{
		ReadingID: st.id + "@" + strconv.FormatInt(t.Unix(), 10), StationID: st.id, ObservedAt: ingest.At(t),
		TemperatureC: temp, PrecipitationMMH: rate, SnowMMH: snow, CloudCoverRatio: cloud, VisibilityM: visibility,
		HasTemperature: true, HasPrecipitation: true, HasSnow: true, HasCloudCover: true, HasVisibility: true,
		Condition: condition,
	}
}

// lognormal draws from a lognormal with the given median and log-σ, clamped to [lo, hi].
func (st *station) lognormal(median, sigma, lo, hi float64) float64 {
	return clamp(median*math.Exp(sigma*st.rng.NormFloat64()), lo, hi)
}
