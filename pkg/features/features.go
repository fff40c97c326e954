// Package features defines the feature frames the cleaner emits, one per intersection and event-time window, and
// the builder that turns an approach's cleaned window into its feature vector.
//
// The package is pure: no I/O, no clocks, no randomness. The trainer and the predictor read the same frames, so
// there is no training/serving skew; SetVersion changes whenever Names change meaning or order.
//
// # Feature set version 3
//
// Version 2 was version 1 (indices 0..32, unchanged) plus upstream_flow_ratio_lag1 and upstream_lag1_present
// appended at 33 and 34, so a consumer of version 1 that reads by index keeps its meaning for the first 33.
// Version 3 is version 2 (0..34, unchanged) plus the upstream occupancy and speed at 35..38, so that occupancy
// and speed forecasts have neighbour inputs as flow forecasts do; a consumer of version 2 keeps the first 35.
//
// Every value is finite. Absent inputs are 0 with a presence indicator beside them, so "missing" is never
// confused with "zero". Flows are scaled by the approach's capacity (topology.Approach.CapacityVPH, a fixed rule,
// never running statistics), so a coefficient keeps its meaning as traffic changes.
//
//	index  name                      definition
//	 0     bias                      1
//	 1     flow_ratio                window flow (veh/h, observed or filled) / capacity_vph; 0 when gap = 1
//	 2     gap                       1 when the window's flow is unknown: the approach had no usable or fillable
//	                                 data (Vector.Gap), or only readings without counts (Observed.NoFlow)
//	 3     imputed_fraction          share of the window's detector-time that was filled in, 0..1
//	 4     occupancy                 time-weighted occupancy ratio 0..1; 0 when absent
//	 5     occupancy_present         1 when occupancy was measured in the window
//	 6     speed_ratio               flow-weighted mean speed km/h / 100; 0 when absent
//	 7     speed_present             1 when speed was measured (with vehicles) in the window
//	 8     flow_ratio_lag1           flow_ratio of the previous window (t-1); 0 when absent
//	 9     lag1_present              1 when flow_ratio_lag1 is known
//	10     flow_ratio_lag2           flow_ratio at t-2; 0 when absent
//	11     lag2_present
//	12     flow_ratio_lag3           flow_ratio at t-3; 0 when absent
//	13     lag3_present
//	14     flow_ratio_yesterday      flow_ratio of the same window 24 h earlier (t - 86400 s); 0 when absent
//	15     yesterday_present
//	16     flow_ratio_last_week      flow_ratio of the same window 7 days earlier; 0 when absent
//	17     last_week_present
//	18     tod_sin                   sin(2π·s/86400), s = seconds since local midnight at the window start
//	19     tod_cos                   cos(2π·s/86400)
//	20     dow_sin                   sin(2π·(d + s/86400)/7), d = local weekday, Monday = 0 (continuous time of week)
//	21     dow_cos                   cos(2π·(d + s/86400)/7)
//	22     weekend                   1 on local Saturday and Sunday
//	23     holiday                   1 on a configured public holiday (local date of the window start)
//	24     precip_log1p              ln(1 + precipitation mm/h); 0 when absent
//	25     precip_present
//	26     snow_log1p                ln(1 + snow mm/h); 0 when absent
//	27     snow_present
//	28     temperature_scaled        temperature °C / 40; 0 when absent
//	29     temperature_present
//	30     visibility_ratio          min(visibility m, 10000) / 10000; 0 when absent
//	31     visibility_present
//	32     weather_missing           1 when no weather observation young enough was found (WeatherContext.Missing)
//	33     upstream_flow_ratio_lag1  mean flow_ratio at t-1 of the approach's upstream approaches (topology
//	                                 Approach.Upstream) whose window t-1 is known; 0 when none is known or configured
//	34     upstream_lag1_present     1 when at least one upstream approach's window t-1 is known
//	35     upstream_occupancy_lag1   mean occupancy ratio at t-1 of the upstream approaches whose window t-1 had a
//	                                 measured occupancy; 0 when none had
//	36     upstream_occupancy_present 1 when at least one upstream approach's occupancy at t-1 is known
//	37     upstream_speed_ratio_lag1 mean speed at t-1 (km/h / 100) of the upstream approaches whose window t-1
//	                                 had a measured speed; 0 when none had
//	38     upstream_speed_present    1 when at least one upstream approach's speed at t-1 is known
//
// The gap feature is flow_ratio's presence indicator. A window of speed- or occupancy-only readings (freeway
// speed stations report no counts) is no gap — its speed and occupancy features are set — but its flow is
// unknown, so gap = 1 and flow_ratio = 0 there, and the flow lags that would read it are absent. Counted
// windows are as before, so the set keeps its version.
//
// Lags come from the approach's own emitted history: a lag is absent when that window was a gap, was never
// emitted, or lies before the history the cleaner keeps (7 days).
//
// The upstream features are read from the upstream intersection's emitted history (the flow history its own
// lags come from; for occupancy and speed a shorter history of recent windows, see package clean), which the
// same cleaner partition holds: intersections linked by upstream references are keyed to
// one partition. An upstream window is known when it was emitted and was not a gap. Only lag 1 is used: when
// this intersection's window t closes, the upstream window t may not be closed yet (each intersection's
// watermark follows its own readings), while window t-1 closes deterministically earlier in normal operation.
// Either way the value is a function of the partition's input sequence (see package clean).
package features

import (
	"math"
	"time"
)

// SetVersion is the version of the feature set produced by Build; it changes whenever Names change.
const SetVersion = 3

// names is the feature set of SetVersion, in vector order. Keep in sync with the package documentation.
var names = [...]string{
	"bias",
	"flow_ratio", "gap", "imputed_fraction",
	"occupancy", "occupancy_present",
	"speed_ratio", "speed_present",
	"flow_ratio_lag1", "lag1_present",
	"flow_ratio_lag2", "lag2_present",
	"flow_ratio_lag3", "lag3_present",
	"flow_ratio_yesterday", "yesterday_present",
	"flow_ratio_last_week", "last_week_present",
	"tod_sin", "tod_cos", "dow_sin", "dow_cos", "weekend", "holiday",
	"precip_log1p", "precip_present",
	"snow_log1p", "snow_present",
	"temperature_scaled", "temperature_present",
	"visibility_ratio", "visibility_present",
	"weather_missing",
	"upstream_flow_ratio_lag1", "upstream_lag1_present",
	"upstream_occupancy_lag1", "upstream_occupancy_present",
	"upstream_speed_ratio_lag1", "upstream_speed_present",
}

// NumFeatures is the length of every vector of SetVersion.
const NumFeatures = len(names)

// Fixed scales of the feature set (documented in the package comment).
const (
	// SpeedScaleKMH divides speeds.
	SpeedScaleKMH = 100.0
	// TemperatureScaleC divides temperatures.
	TemperatureScaleC = 40.0
	// VisibilityCapM caps and divides visibility.
	VisibilityCapM = 10000.0
)

// Names returns the feature names of SetVersion in vector order. The caller owns the returned slice.
func Names() []string {
	out := make([]string, len(names))
	copy(out, names[:])
	return out
}

// Frame is every approach's feature vector for one intersection and one event-time window [WindowStart,
// WindowEnd). The cleaner emits it exactly once, when the watermark passes WindowEnd. Approaches are in topology
// order and every approach of the intersection is present (a vector without data has Gap set).
type Frame struct {
	IntersectionID string
	// WindowStart and WindowEnd are UTC instants aligned to the Unix epoch.
	WindowStart, WindowEnd time.Time
	// FeatureSetVersion is SetVersion at the time the frame was built.
	FeatureSetVersion int
	// Names are the feature names, in the order of every Vector.Values. Frames share one slice: do not modify.
	Names      []string
	Approaches []Vector
	Weather    WeatherContext
	// Holiday is true when the local date of WindowStart is a configured holiday.
	Holiday bool
}

// Vector is one approach's features and observed targets for one window.
type Vector struct {
	ApproachID string
	// Values are in the order of Frame.Names.
	Values   []float64
	Observed Observed
	// ImputedFraction is the share of the window's detector-time that was filled in rather than measured, 0..1.
	ImputedFraction float64
	// Readings is how many valid readings fed the window.
	Readings int
	// FlaggedOutliers is how many of those readings the outlier filter flagged.
	FlaggedOutliers int
	// Gap is true when the approach had no usable data and none could be filled: Observed is not meaningful.
	Gap bool
	// CapacityVPH is the approach capacity from the topology, the scale of every flow feature.
	CapacityVPH float64
}

// Observed are an approach's measured values over a window: the labels that later train the models.
type Observed struct {
	// FlowVPH is the approach flow in vehicles per hour (sum over its detectors); 0 and meaningless when
	// NoFlow.
	FlowVPH float64
	// NoFlow is set when the window has readings but no flow: no detector's count measured it and none could
	// be filled in (speed- or occupancy-only sensors). It is the negation of "has flow" so that the zero value,
	// which every counted window has, keeps its meaning.
	NoFlow bool
	// Occupancy is the time-weighted occupancy ratio 0..1, valid when HasOccupancy.
	Occupancy float64
	// SpeedKMH is the flow-weighted mean speed, valid when HasSpeed.
	SpeedKMH               float64
	HasOccupancy, HasSpeed bool
	// Imputed is true when some detector had no valid reading in the window, when the flow was not measured by
	// every detector (some detector's flow was filled in), or when the vector is a gap; imputed targets must not
	// be scored.
	Imputed bool
}

// WeatherContext is the weather joined to a window, explicit about absence.
type WeatherContext struct {
	StationID string
	// Missing is true when no observation young enough was available (or the intersection has no station).
	Missing bool
	// ObservedAt is the observation's time (zero when Missing).
	ObservedAt                                           time.Time
	TemperatureC, PrecipitationMMH, SnowMMH, VisibilityM float64
	// Has* tell which of the values were measured.
	HasTemperature, HasPrecipitation, HasSnow, HasVisibility bool
}

// EventID is the deterministic event id of an intersection's frame: "<intersection>/<window start RFC 3339 UTC>".
func EventID(intersection string, windowStart time.Time) string {
	return intersection + "/" + windowStart.UTC().Format(time.RFC3339)
}

// Lag is a past flow ratio, absent when OK is false.
type Lag struct {
	FlowRatio float64
	OK        bool
}

// Past is a past value of another quantity than flow (an occupancy ratio, a speed ratio), absent when OK is
// false.
type Past struct {
	Value float64
	OK    bool
}

// Input is everything Build needs for one approach and window.
type Input struct {
	// LocalStart is the window start in the intersection's time zone (time-of-day and weekday features).
	LocalStart  time.Time
	CapacityVPH float64
	Observed    Observed
	// ImputedFraction and Gap are as in Vector.
	ImputedFraction float64
	Gap             bool
	// Lag1..Lag3 are the previous three windows; Yesterday and LastWeek the same window 1 and 7 days earlier.
	Lag1, Lag2, Lag3, Yesterday, LastWeek Lag
	// Upstream is the mean flow ratio at t-1 of the approach's upstream approaches whose window t-1 is known,
	// absent when none is (or none is configured).
	Upstream Lag
	// UpstreamOccupancy is the mean occupancy ratio (0..1) at t-1 of the upstream approaches whose window t-1
	// had one; UpstreamSpeedRatio their mean speed / SpeedScaleKMH. Absent when none is known.
	UpstreamOccupancy, UpstreamSpeedRatio Past
	Holiday                               bool
	Weather                               WeatherContext
}

// Build returns the feature values of SetVersion for in, in the order of Names. Given finite inputs and a
// positive capacity, every value is finite.
func Build(in Input) []float64 {
	v := make([]float64, NumFeatures)
	BuildInto(v, in)
	return v
}

// BuildInto writes the feature values into v, which must have length NumFeatures.
func BuildInto(v []float64, in Input) {
	_ = v[NumFeatures-1]
	clear(v)
	v[0] = 1
	noFlow := in.Gap || in.Observed.NoFlow
	if !noFlow && in.CapacityVPH > 0 {
		v[1] = in.Observed.FlowVPH / in.CapacityVPH
	}
	v[2] = b2f(noFlow)
	v[3] = in.ImputedFraction
	if !in.Gap && in.Observed.HasOccupancy {
		v[4], v[5] = in.Observed.Occupancy, 1
	}
	if !in.Gap && in.Observed.HasSpeed {
		v[6], v[7] = in.Observed.SpeedKMH/SpeedScaleKMH, 1
	}
	for i, l := range [...]Lag{in.Lag1, in.Lag2, in.Lag3, in.Yesterday, in.LastWeek} {
		if l.OK {
			v[8+2*i], v[9+2*i] = l.FlowRatio, 1
		}
	}
	h, m, s := in.LocalStart.Clock()
	sec := float64(h*3600 + m*60 + s)
	day := float64((int(in.LocalStart.Weekday()) + 6) % 7) // Monday = 0
	tod := 2 * math.Pi * sec / 86400
	tow := 2 * math.Pi * (day + sec/86400) / 7
	v[18], v[19] = math.Sin(tod), math.Cos(tod)
	v[20], v[21] = math.Sin(tow), math.Cos(tow)
	wd := in.LocalStart.Weekday()
	v[22] = b2f(wd == time.Saturday || wd == time.Sunday)
	v[23] = b2f(in.Holiday)
	w := in.Weather
	if !w.Missing {
		if w.HasPrecipitation {
			v[24], v[25] = math.Log1p(w.PrecipitationMMH), 1
		}
		if w.HasSnow {
			v[26], v[27] = math.Log1p(w.SnowMMH), 1
		}
		if w.HasTemperature {
			v[28], v[29] = w.TemperatureC/TemperatureScaleC, 1
		}
		if w.HasVisibility {
			v[30], v[31] = math.Min(w.VisibilityM, VisibilityCapM)/VisibilityCapM, 1
		}
	}
	v[32] = b2f(w.Missing)
	if in.Upstream.OK {
		v[33], v[34] = in.Upstream.FlowRatio, 1
	}
	if in.UpstreamOccupancy.OK {
		v[35], v[36] = in.UpstreamOccupancy.Value, 1
	}
	if in.UpstreamSpeedRatio.OK {
		v[37], v[38] = in.UpstreamSpeedRatio.Value, 1
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
