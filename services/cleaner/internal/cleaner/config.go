package cleaner

import (
	"fmt"
	"math"
	"time"

	"github.com/greenwave-city/greenwave/pkg/app"
	"github.com/greenwave-city/greenwave/pkg/clean"
	"github.com/greenwave-city/greenwave/pkg/topology"
)

// Config is the cleaner's configuration.
type Config struct {
	app.Common
	IdleTimeout     time.Duration `env:"CLEANER_IDLE_TIMEOUT" default:"0s" help:"processing-time idle timeout after which a quiet partition's windows are closed (0 disables; enabling it trades replay determinism for liveness with sparse detectors)"`
	AllowedLateness time.Duration `env:"CLEANER_ALLOWED_LATENESS" default:"5m" help:"how far behind the newest event time a reading may arrive and still count"`
	ReplayMemory    time.Duration `env:"CLEANER_REPLAY_MEMORY" default:"1h" help:"how long (event time) a detector remembers the readings of its closed windows, so that an identical resend of one (a gateway resending a batch after a lost acknowledgement) is dropped as a replay instead of dead-lettered late (0 disables)"`
	WeatherMaxAge   time.Duration `env:"CLEANER_WEATHER_MAX_AGE" default:"2h" help:"oldest weather observation joined to a window"`
	WeatherWait     time.Duration `env:"CLEANER_WEATHER_WAIT" default:"10s" help:"before emitting a window, wait at most this long (processing time) for the weather follower to reach the weather topic's end offset, so a replay at full speed joins the weather published before the readings as greenwave eval does (0 disables; a timeout closes the window with the weather read so far)"`
	Holidays        []string      `env:"CLEANER_HOLIDAYS" default:"" help:"public holidays as YYYY-MM-DD, comma-separated, for the holiday feature"`
	TimeZone        string        `env:"CLEANER_TIME_ZONE" default:"" help:"optional guard: the IANA time zone the operator expects the intersections in; the calendar features use the topology's time_zone, and a different value here stops the cleaner with an error naming both"`
	MaxBatch        int           `env:"CLEANER_MAX_BATCH" default:"500" help:"records handled before outputs are flushed and offsets committed"`
	CheckpointEvery time.Duration `env:"CLEANER_CHECKPOINT_INTERVAL" default:"30s" help:"snapshot a partition's changed intersections (and commit its input offsets) at most this often, and after this much silence once its input is historical (a finished replay or backfill); 0 snapshots after every batch and ignores CLEANER_CHECKPOINT_STATE_RATIO and CLEANER_CHECKPOINT_MAX_DELAY. A restart replays the input since the last snapshot, so restores stay exact"`
	CheckpointRatio float64       `env:"CLEANER_CHECKPOINT_STATE_RATIO" default:"0.5" help:"state bytes a checkpoint may write per byte of readings handled since the previous one: a partition is snapshotted once its readings' bytes reach 1/ratio of its changed intersections' last snapshot sizes (see docs/cleaner.md, Checkpoint cadence)"`
	CheckpointDelay time.Duration `env:"CLEANER_CHECKPOINT_MAX_DELAY" default:"1h" help:"longest processing time a handled reading stays uncovered by a snapshot whatever its bytes (what a restart replays at most); also the event-time lag behind the wall clock past which a partition's input counts as a replay. At least CLEANER_CHECKPOINT_INTERVAL"`
	SessionTimeout  time.Duration `env:"CLEANER_SESSION_TIMEOUT" default:"10s" help:"consumer group session timeout: how long a dead instance keeps its partitions before they are reassigned (Kafka brokers accept 6s..30m by default)"`
}

// cadence is the checkpoint rule the settings describe.
func (c *Config) cadence() cadence {
	return cadence{minInterval: c.CheckpointEvery, ratio: c.CheckpointRatio, maxDelay: c.CheckpointDelay}
}

// coreConfig builds the core configuration but for its time zone, which comes from the topology (cleanConfig).
func (c *Config) coreConfig() (clean.Config, error) {
	cc := clean.DefaultConfig()
	cc.AllowedLateness = c.AllowedLateness
	cc.ReplayMemory = c.ReplayMemory
	cc.WeatherMaxAge = c.WeatherMaxAge
	for _, s := range c.Holidays {
		d, err := clean.ParseDate(s)
		if err != nil {
			return cc, fmt.Errorf("CLEANER_HOLIDAYS: %w", err)
		}
		cc.Holidays = append(cc.Holidays, d)
	}
	if err := cc.Validate(); err != nil {
		return cc, err
	}
	return cc, nil
}

// cleanConfig builds the core configuration for topo: its calendar features are in the topology's time zone
// (topology.Topology.LocationWith, the one rule every service and greenwave eval follow), and a
// CLEANER_TIME_ZONE that disagrees with it is an error rather than a second, silently different, source.
func (c *Config) cleanConfig(topo topology.Topology) (clean.Config, error) {
	cc, err := c.coreConfig()
	if err != nil {
		return cc, err
	}
	loc, err := topo.LocationWith("CLEANER_TIME_ZONE", c.TimeZone)
	if err != nil {
		return cc, err
	}
	cc.Location = loc
	return cc, nil
}

// Validate reports every problem.
func (c *Config) Validate() []string {
	p := c.Common.Validate()
	if c.MaxBatch < 1 {
		p = append(p, fmt.Sprintf("CLEANER_MAX_BATCH %d must be at least 1", c.MaxBatch))
	}
	if c.SessionTimeout <= 0 {
		p = append(p, fmt.Sprintf("CLEANER_SESSION_TIMEOUT %v must be positive", c.SessionTimeout))
	}
	if c.CheckpointEvery < 0 {
		p = append(p, fmt.Sprintf("CLEANER_CHECKPOINT_INTERVAL %v must not be negative", c.CheckpointEvery))
	}
	if !(c.CheckpointRatio > 0) || math.IsInf(c.CheckpointRatio, 0) {
		p = append(p, fmt.Sprintf("CLEANER_CHECKPOINT_STATE_RATIO %v must be a positive number (state bytes per reading byte, e.g. 0.5)", c.CheckpointRatio))
	}
	if c.CheckpointDelay <= 0 || c.CheckpointDelay < c.CheckpointEvery {
		p = append(p, fmt.Sprintf("CLEANER_CHECKPOINT_MAX_DELAY %v must be positive and at least CLEANER_CHECKPOINT_INTERVAL (%v)", c.CheckpointDelay, c.CheckpointEvery))
	}
	if c.WeatherWait < 0 {
		p = append(p, fmt.Sprintf("CLEANER_WEATHER_WAIT %v is negative", c.WeatherWait))
	}
	if c.IdleTimeout < 0 {
		p = append(p, fmt.Sprintf("CLEANER_IDLE_TIMEOUT %v is negative", c.IdleTimeout))
	}
	if err := topology.CheckZoneSetting("CLEANER_TIME_ZONE", c.TimeZone); err != nil {
		p = append(p, err.Error())
	}
	if _, err := c.coreConfig(); err != nil {
		p = append(p, err.Error())
	}
	return p
}
