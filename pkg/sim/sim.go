// Package sim is the built-in gateway simulator behind `greenwave dev`: it produces detector readings and weather
// observations for every detector and weather station of a topology, as a gateway would publish them after the
// collector's unit conversion (canonical units), as domain values: wire.SimBatch makes the messages a gateway sends.
//
// The model, per counting interval of IntervalS seconds:
//
//   - Demand. Each approach has a peak flow, a seeded fraction of its saturation flow (Config.PeakDemandRatio ×
//     U(0.7, 1.3) × lanes × saturation flow per lane), split evenly over its detectors. The expected count is
//     peak flow × Profile(middle of the interval) × weather factor × a slowly varying lognormal factor per approach
//     (AR(1), 15-minute memory, σ = 0.08, mean 1); the count is Poisson with that mean. Profile is the mean weekly
//     shape of real traffic (see profile_table.go for its source and attribution).
//   - Occupancy and speed come from the free-flow branch of Greenshields' model per lane: speed v = vf(1 − k/kj)
//     and flow q = k·v, with a seeded free-flow speed vf of 45–60 km/h per approach and a jam density kj of 150
//     vehicles/km/lane, so a lane's capacity is vf·kj/4 (1 690–2 250 veh/h). Occupancy is k/kj (a jammed lane is
//     fully occupied, a lane at capacity half occupied). Both carry 5 % multiplicative noise. This ignores queues
//     standing on stop-line detectors during red; it is a plausible, monotone relation, not a calibrated one.
//     A detector that counted no vehicle reports occupancy 0 and no speed (speed_kmh absent).
//   - Weather. Each distinct weather_station of the topology runs a seeded Markov process over dry, light and
//     heavy precipitation, stepped every WeatherIntervalS seconds (mean dry spell about 18 h, wet spell about
//     2 h, heavy bursts about 30 min). Temperature follows a seasonal and a daily cycle (coldest at 03:00, warmest at 15:00
//     local time) plus an AR(1) anomaly; precipitation falls as snow exactly when the temperature is below 0 °C.
//     Demand is scaled by RainDemandFactor, HeavyRainDemandFactor or SnowDemandFactor while it rains or snows at
//     the intersection's station; intersections without a station see dry-weather demand and no weather readings.
//     Condition labels follow OpenWeatherMap's main groups as in the Metro I-94 data: "Clear", "Clouds", "Rain",
//     "Snow"; heavy rain is "Rain" with precipitation_mm_h ≥ 7.6 (the usual threshold for heavy rain).
//     precipitation_mm_h is the total liquid-equivalent precipitation and snow_mm_h the part that falls as snow.
//   - Faults, so the cleaner has real work: Config.FaultyDetectors detectors, chosen by seed, are each stuck,
//     dead or spiky (in that rotation). A stuck detector repeats one non-zero reading (count, occupancy and
//     speed) for spells; a dead one reports zero count and zero occupancy for spells (it still reports, so every
//     detector appears in every tick). Spells alternate with healthy periods (mean 3 h healthy, 90 min stuck,
//     60 min dead) and the first spell starts within the first hour. A spiky detector multiplies its count by 5
//     in about 3 % of intervals and sends a physically impossible value (occupancy 1.3 or a negative speed) in
//     about 1 %. Faults reports which detectors are faulty. With Config.DuplicateRate, a reading is re-sent
//     unchanged (same reading_id) at the end of the next tick, as a gateway retry would.
//
// Everything is a pure function of Config.Seed, Config.Start and the topology: no goroutines, no I/O, no clock.
// Each station, approach and detector draws from its own random stream keyed by its id, so adding an
// intersection does not change the data of the others (the choice of faulty detectors may change).
package sim

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/greenwave-city/greenwave/pkg/ingest"
	"github.com/greenwave-city/greenwave/pkg/topology"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultIntervalS        = 60
	DefaultWeatherIntervalS = 300
	DefaultFaultyDetectors  = 3
	DefaultPeakDemandRatio  = 0.35
	DefaultDuplicateRate    = 0.001
)

// Config parameterises a Simulator. Zero fields take the defaults above; Start is required.
type Config struct {
	// Seed selects the random streams; the same Seed, Start and topology give the same ticks.
	Seed uint64
	// Start is the first interval's start. It is rounded down to a multiple of IntervalS since the Unix epoch,
	// so intervals line up with the cleaner's windows. Its location is the local time of the demand profile
	// and of the daily temperature cycle.
	Start time.Time
	// IntervalS is the counting interval in seconds (default 60); it must divide a day.
	IntervalS int
	// WeatherIntervalS is the time between two observations of a weather station in seconds (default 300); it
	// must divide a day. Observations fall on multiples of it since the Unix epoch.
	WeatherIntervalS int
	// FaultyDetectors is how many detectors misbehave (default 3: one stuck, one dead, one spiky); negative
	// means none. It is capped at the number of detectors.
	FaultyDetectors int
	// PeakDemandRatio is the mean peak-hour flow of an approach as a fraction of its saturation flow (default
	// 0.35, allowed up to 0.75); each approach draws its own in 0.7–1.3 × this. The default keeps a two-phase
	// intersection's peak flow ratio Y mostly around 0.7, busy but feasible for Webster timing.
	PeakDemandRatio float64
	// DuplicateRate is the probability that a reading is sent again in the next tick (default 0.001); negative
	// means never.
	DuplicateRate float64
}

// Tick is one counting interval's output.
type Tick struct {
	// At is the start of the interval (the observed_at of its readings).
	At time.Time
	// Readings holds one reading per detector in topology order, then any re-sent duplicates of the previous
	// tick's readings.
	Readings []ingest.TrafficReading
	// Weather holds the station observations that fall within [At, At+IntervalS), by time then station id.
	Weather []ingest.WeatherReading
}

// Simulator generates ticks. It is not safe for concurrent use: one goroutine drives it by calling Next.
type Simulator struct {
	cfg        Config
	loc        *time.Location
	at         time.Time
	nextWx     time.Time
	stations   []*station
	approaches []*approach
	detectors  []*detector
	dupRNG     *rand.Rand
	pending    []ingest.TrafficReading
}

// New validates the topology and the configuration and returns a simulator positioned at Start.
func New(topo topology.Topology, cfg Config) (*Simulator, error) {
	if err := topo.Validate(); err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	s := &Simulator{cfg: cfg, loc: cfg.Start.Location(), dupRNG: newRNG(cfg.Seed, "duplicates")}
	start := cfg.Start.Unix()
	s.at = time.Unix(floorMultiple(start, int64(cfg.IntervalS)), 0).In(s.loc)
	wx := floorMultiple(s.at.Unix(), int64(cfg.WeatherIntervalS))
	if wx < s.at.Unix() {
		wx += int64(cfg.WeatherIntervalS)
	}
	s.nextWx = time.Unix(wx, 0).In(s.loc)

	stationIndex := map[string]int{}
	for _, in := range topo.Intersections {
		if in.WeatherStation == "" {
			continue
		}
		if _, ok := stationIndex[in.WeatherStation]; !ok {
			stationIndex[in.WeatherStation] = len(s.stations)
			s.stations = append(s.stations, newStation(in.WeatherStation, cfg.Seed, s.at))
		}
	}
	sortStations(s.stations)
	for i, st := range s.stations {
		stationIndex[st.id] = i
	}

	for _, in := range topo.Intersections {
		st := -1
		if in.WeatherStation != "" {
			st = stationIndex[in.WeatherStation]
		}
		for _, a := range in.Approaches {
			am := newApproach(in.ID, a, cfg)
			s.approaches = append(s.approaches, am)
			n := float64(len(a.Detectors))
			for k, d := range a.Detectors {
				s.detectors = append(s.detectors, &detector{
					intersection: in.ID,
					approach:     a.ID,
					id:           d,
					lane:         strconv.Itoa(k + 1),
					app:          am,
					share:        1 / n,
					lanes:        float64(a.Lanes) / n,
					station:      st,
					rng:          newRNG(cfg.Seed, "detector:"+in.ID+"/"+d),
				})
			}
		}
	}
	s.assignFaults()
	return s, nil
}

func (c Config) withDefaults() (Config, error) {
	var errs []error
	if c.Start.IsZero() {
		errs = append(errs, errors.New("config: Start is required"))
	}
	if c.IntervalS == 0 {
		c.IntervalS = DefaultIntervalS
	}
	if c.IntervalS < 0 || 86400%c.IntervalS != 0 {
		errs = append(errs, fmt.Errorf("config: IntervalS %d must be positive and divide a day", c.IntervalS))
	}
	if c.WeatherIntervalS == 0 {
		c.WeatherIntervalS = DefaultWeatherIntervalS
	}
	if c.WeatherIntervalS < 0 || 86400%c.WeatherIntervalS != 0 {
		errs = append(errs, fmt.Errorf("config: WeatherIntervalS %d must be positive and divide a day", c.WeatherIntervalS))
	}
	switch {
	case c.FaultyDetectors == 0:
		c.FaultyDetectors = DefaultFaultyDetectors
	case c.FaultyDetectors < 0:
		c.FaultyDetectors = 0
	}
	if c.PeakDemandRatio == 0 {
		c.PeakDemandRatio = DefaultPeakDemandRatio
	}
	if !(c.PeakDemandRatio > 0 && c.PeakDemandRatio <= 0.75) {
		errs = append(errs, fmt.Errorf("config: PeakDemandRatio %g outside (0, 0.75]", c.PeakDemandRatio))
	}
	switch {
	case c.DuplicateRate == 0:
		c.DuplicateRate = DefaultDuplicateRate
	case c.DuplicateRate < 0:
		c.DuplicateRate = 0
	case !(c.DuplicateRate <= 1):
		errs = append(errs, fmt.Errorf("config: DuplicateRate %g above 1", c.DuplicateRate))
	}
	return c, errors.Join(errs...)
}

// Next returns the readings of the current interval and advances the simulator by IntervalS.
func (s *Simulator) Next() Tick {
	end := s.at.Add(time.Duration(s.cfg.IntervalS) * time.Second)
	tick := Tick{At: s.at, Readings: make([]ingest.TrafficReading, 0, len(s.detectors)+len(s.pending))}

	// Weather first, so that traffic in this interval sees the weather observed in it.
	for s.nextWx.Before(end) {
		for _, st := range s.stations {
			tick.Weather = append(tick.Weather, st.step(s.nextWx, s.cfg.WeatherIntervalS))
		}
		s.nextWx = s.nextWx.Add(time.Duration(s.cfg.WeatherIntervalS) * time.Second)
	}

	mid := s.at.Add(time.Duration(s.cfg.IntervalS) * time.Second / 2)
	profile := Profile(mid)
	decay := math.Exp(-float64(s.cfg.IntervalS) / approachNoiseMemoryS)
	for _, a := range s.approaches {
		a.advance(decay)
	}
	observed := ingest.At(s.at)
	unix := strconv.FormatInt(s.at.Unix(), 10)
	for _, d := range s.detectors {
		factor := 1.0
		if d.station >= 0 {
			factor = s.stations[d.station].demandFactor()
		}
		r := d.reading(s.at, s.cfg.IntervalS, profile*factor)
		r.ReadingID = d.id + "@" + unix
		r.IntersectionID = d.intersection
		r.ApproachID = d.approach
		r.DetectorID = d.id
		r.LaneID = d.lane
		r.ObservedAt = observed
		r.IntervalS = uint32(s.cfg.IntervalS)
		tick.Readings = append(tick.Readings, r)
	}

	tick.Readings = append(tick.Readings, s.pending...)
	s.pending = s.pending[:0]
	if s.cfg.DuplicateRate > 0 {
		for _, r := range tick.Readings[:len(s.detectors)] {
			if s.dupRNG.Float64() < s.cfg.DuplicateRate {
				s.pending = append(s.pending, r)
			}
		}
	}
	s.at = end
	return tick
}

// floorMultiple rounds x down to a multiple of m (m > 0), also for negative x.
func floorMultiple(x, m int64) int64 {
	r := x % m
	if r < 0 {
		r += m
	}
	return x - r
}

// newRNG returns the random stream named name under seed.
func newRNG(seed uint64, name string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(name))
	return rand.New(rand.NewPCG(seed, h.Sum64()))
}
