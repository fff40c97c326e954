package clean

import (
	"fmt"
	"slices"
	"sort"
	"time"
)

// Weather is one weather station observation in explicit units. Absent values have their Has flag false and
// are never treated as zero.
type Weather struct {
	ID         string
	StationID  string
	ObservedAt time.Time
	// TemperatureC in °C (−60..60), PrecipitationMMH and SnowMMH in mm/h (0..500), CloudCoverRatio 0..1,
	// VisibilityM in metres (0..100 000).
	TemperatureC, PrecipitationMMH, SnowMMH, CloudCoverRatio, VisibilityM   float64
	HasTemperature, HasPrecipitation, HasSnow, HasCloudCover, HasVisibility bool
	// Condition is a short label such as "Rain".
	Condition string
}

// WeatherRejection is a weather observation set aside; Reason is one of the weather_* reasons.
type WeatherRejection struct {
	Weather Weather
	Reason  Reason
	Detail  string
}

// Physical bounds of a weather observation.
const (
	MinTemperatureC     = -60.0
	MaxTemperatureC     = 60.0
	MaxPrecipitationMMH = 500.0
	MaxSnowMMH          = 500.0
	MaxVisibilityM      = 100000.0
)

// WeatherTable holds the recent observations of every station: every cleaner instance reads the whole weather
// topic into one table. It keeps, per station, the observations no older than Config.WeatherRetention behind
// the earlier of the station's newest observation and the table's horizon (Advance: how far the readings that
// look weather up have progressed). Until a horizon is set it keeps every observation: a weather follower that
// runs ahead of the readings — a replay of history reads the whole weather topic before the readings catch up —
// must not drop observations the readings will still join. It is rebuilt from the topic on start and is not part
// of an Intersection's state. Not safe for concurrent use.
type WeatherTable struct {
	maxAge, retention time.Duration
	stations          map[string][]Weather // sorted by ObservedAt, unique times
	horizon           time.Time            // the newest event time looked up; zero: none yet
}

// Advance records that readings have progressed to event time at, and drops the observations that no lookup at
// or after at − (Config.WeatherRetention − Config.WeatherMaxAge) can join any more.
func (t *WeatherTable) Advance(at time.Time) {
	if !at.After(t.horizon) {
		return
	}
	t.horizon = at
	for st, obs := range t.stations {
		t.stations[st] = t.prune(obs)
	}
}

// prune drops the observations older than the retention behind the earlier of the newest one and the horizon.
func (t *WeatherTable) prune(obs []Weather) []Weather {
	if t.horizon.IsZero() || len(obs) == 0 {
		return obs
	}
	ref := obs[len(obs)-1].ObservedAt
	if t.horizon.Before(ref) {
		ref = t.horizon
	}
	cut := sort.Search(len(obs), func(i int) bool { return !obs[i].ObservedAt.Before(ref.Add(-t.retention)) })
	if cut > 0 {
		obs = slices.Delete(obs, 0, cut)
	}
	return obs
}

// NewWeatherTable returns an empty table using cfg.WeatherMaxAge and cfg.WeatherRetention.
func NewWeatherTable(cfg Config) *WeatherTable {
	return &WeatherTable{maxAge: cfg.WeatherMaxAge, retention: cfg.WeatherRetention, stations: map[string][]Weather{}}
}

// Add validates and stores an observation. It returns nil when the observation was stored or was an identical
// replay, else the rejection. Observations older than the retention (see WeatherTable) are accepted but not kept
// (they could never be joined).
func (t *WeatherTable) Add(w Weather) *WeatherRejection {
	w.ObservedAt = w.ObservedAt.UTC()
	if rj := checkWeather(w); rj != nil {
		return rj
	}
	obs := t.stations[w.StationID]
	i := sort.Search(len(obs), func(i int) bool { return !obs[i].ObservedAt.Before(w.ObservedAt) })
	if i < len(obs) && obs[i].ObservedAt.Equal(w.ObservedAt) {
		a, b := obs[i], w
		a.ID, b.ID = "", ""
		if a == b {
			return nil
		}
		return &WeatherRejection{Weather: w, Reason: ReasonWeatherDuplicateConflict,
			Detail: fmt.Sprintf("station %s at %s already has a different observation", w.StationID, w.ObservedAt.Format(time.RFC3339))}
	}
	t.stations[w.StationID] = t.prune(slices.Insert(obs, i, w))
	return nil
}

// Lookup returns the station's latest observation strictly before at, if it is no older than the maximum age
// (at − ObservedAt ≤ Config.WeatherMaxAge). The intersection calls it with a window's end, so a window joins the
// latest observation made before the window ended: within [start, end) like the window's readings, or earlier.
// An observation stamped exactly at the end belongs to the next window, as a reading starting there does; this
// is what makes the join independent of arrival order — the window closes on a reading starting at or after its
// end, and every observation it may join is stamped strictly before that reading (see the package
// documentation, "Weather join").
func (t *WeatherTable) Lookup(station string, at time.Time) (Weather, bool) {
	obs := t.stations[station]
	i := sort.Search(len(obs), func(i int) bool { return !obs[i].ObservedAt.Before(at) })
	if i == 0 {
		return Weather{}, false
	}
	w := obs[i-1]
	if at.Sub(w.ObservedAt) > t.maxAge {
		return Weather{}, false
	}
	return w, true
}

func checkWeather(w Weather) *WeatherRejection {
	rj := func(r Reason, format string, args ...any) *WeatherRejection {
		return &WeatherRejection{Weather: w, Reason: r, Detail: fmt.Sprintf(format, args...)}
	}
	if w.StationID == "" {
		return rj(ReasonWeatherMissingField, "station_id is empty")
	}
	if w.ObservedAt.Before(time.Unix(0, minStart)) || !w.ObservedAt.Before(time.Unix(0, maxStart)) {
		return rj(ReasonWeatherOutOfRange, "observed_at %s outside 2000..2200", w.ObservedAt.Format(time.RFC3339))
	}
	type bound struct {
		name   string
		has    bool
		v      float64
		lo, hi float64
	}
	for _, b := range []bound{
		{"temperature_c", w.HasTemperature, w.TemperatureC, MinTemperatureC, MaxTemperatureC},
		{"precipitation_mm_h", w.HasPrecipitation, w.PrecipitationMMH, 0, MaxPrecipitationMMH},
		{"snow_mm_h", w.HasSnow, w.SnowMMH, 0, MaxSnowMMH},
		{"cloud_cover_ratio", w.HasCloudCover, w.CloudCoverRatio, 0, 1},
		{"visibility_m", w.HasVisibility, w.VisibilityM, 0, MaxVisibilityM},
	} {
		if b.has && !(b.v >= b.lo && b.v <= b.hi) {
			return rj(ReasonWeatherOutOfRange, "%s %g outside %g..%g", b.name, b.v, b.lo, b.hi)
		}
	}
	return nil
}
