package signalcontrol

import (
	"fmt"
	"math"
	"time"

	"github.com/greenwave-city/greenwave/pkg/app"
	"github.com/greenwave-city/greenwave/pkg/topology"
)

// Config is signal-control's configuration.
type Config struct {
	app.Common
	PlanHorizon        time.Duration `env:"SIGNAL_PLAN_HORIZON" default:"15m" help:"prediction horizon plans are computed from (the nearest available horizon is used)"`
	PlanValidity       time.Duration `env:"SIGNAL_PLAN_VALIDITY" default:"15m" help:"how long after its window a plan is valid"`
	MaxRelInterval     float64       `env:"SIGNAL_MAX_RELATIVE_INTERVAL" default:"0.5" help:"widest prediction interval, relative to approach capacity, that may drive a plan"`
	RecallVPH          float64       `env:"SIGNAL_RECALL_VPH" default:"0" help:"demand (veh/h) an approach whose detectors report nothing (prediction no_data) is held at — detector recall; 0 is minimum recall: its phase gets its minimum green unless it serves other approaches"`
	MaxSubscribers     int           `env:"SIGNAL_MAX_SUBSCRIBERS" default:"256" help:"WatchPlans streams served at once; one more is refused with RESOURCE_EXHAUSTED (each holds up to SIGNAL_SUBSCRIBER_BUFFER queued plans)"`
	SubscriberBuffer   int           `env:"SIGNAL_SUBSCRIBER_BUFFER" default:"1024" help:"plans a WatchPlans stream may lag behind; a full queue keeps only the newest per intersection (counted in coalesced), and a full queue of distinct intersections ends the stream with RESOURCE_EXHAUSTED"`
	OperatorTokensFile string        `env:"SIGNAL_OPERATOR_TOKENS_FILE" default:"" help:"YAML file of operators (name, token_sha256, optional next_token_sha256 while rotating, optional intersections) allowed to set overrides; read at start; empty disables overrides"`
	OverrideTick       time.Duration `env:"SIGNAL_OVERRIDE_TICK" default:"1s" help:"how often each partition applies new pinned overrides and expires old ones (processing time)"`
	ProfileAlpha       float64       `env:"SIGNAL_PROFILE_ALPHA" default:"0.1" help:"weight of a new observation in the hour-of-week flow profile (exponential forgetting), in (0, 1]"`
	ProfileMinSamples  int           `env:"SIGNAL_PROFILE_MIN_SAMPLES" default:"3" help:"observations every approach needs in an hour-of-week bucket before time-of-day plans use it"`
	ProfileTimeZone    string        `env:"SIGNAL_PROFILE_TIME_ZONE" default:"" help:"optional guard: the IANA time zone the operator expects the intersections in; the hour-of-week flow profile uses the topology's time_zone, and a different value here stops signal-control with an error naming both"`
	CheckpointEvery    time.Duration `env:"SIGNAL_CHECKPOINT_INTERVAL" default:"12h" help:"event time between state snapshots (input offsets are committed with them): a partition is checkpointed when its newest planned window crosses a multiple of this interval (UTC-aligned), at most 24h (predictions are kept 2 days); 0 snapshots after every batch. A restart replays the predictions since the last checkpoint without issuing their plans again (the plans topic says which were issued); see docs/signal-control.md for the cost"`
	CheckpointIdle     time.Duration `env:"SIGNAL_CHECKPOINT_IDLE" default:"10s" help:"processing time after which a quiet partition whose event time is more than SIGNAL_CHECKPOINT_INTERVAL behind the wall clock (a finished replay) is checkpointed, so its offsets are committed; 0 never"`
}

// maxCheckpointEvery bounds SIGNAL_CHECKPOINT_INTERVAL well below the predictions topic's 2-day retention: a
// restore replays the predictions since the last checkpoint, which must still be there.
const maxCheckpointEvery = 24 * time.Hour

// Validate reports every problem.
func (c *Config) Validate() []string {
	p := c.Common.Validate()
	if c.PlanHorizon <= 0 || c.PlanValidity <= 0 {
		p = append(p, "SIGNAL_PLAN_HORIZON and SIGNAL_PLAN_VALIDITY must be positive")
	}
	if !(c.MaxRelInterval > 0) {
		p = append(p, "SIGNAL_MAX_RELATIVE_INTERVAL must be positive")
	}
	if !(c.RecallVPH >= 0) || math.IsInf(c.RecallVPH, 1) {
		p = append(p, "SIGNAL_RECALL_VPH must be a finite flow of at least 0")
	}
	if c.MaxSubscribers < 1 {
		p = append(p, "SIGNAL_MAX_SUBSCRIBERS must be at least 1")
	}
	if c.OverrideTick <= 0 {
		p = append(p, "SIGNAL_OVERRIDE_TICK must be positive")
	}
	if !(c.ProfileAlpha > 0 && c.ProfileAlpha <= 1) {
		p = append(p, "SIGNAL_PROFILE_ALPHA must lie in (0, 1]")
	}
	if c.ProfileMinSamples < 1 {
		p = append(p, "SIGNAL_PROFILE_MIN_SAMPLES must be at least 1")
	}
	if err := topology.CheckZoneSetting("SIGNAL_PROFILE_TIME_ZONE", c.ProfileTimeZone); err != nil {
		p = append(p, err.Error())
	}
	if c.CheckpointEvery < 0 || c.CheckpointEvery > maxCheckpointEvery || c.CheckpointEvery%time.Second != 0 {
		p = append(p, fmt.Sprintf("SIGNAL_CHECKPOINT_INTERVAL %v must be whole seconds between 0 and %v (the predictions a restore replays are kept 2 days)", c.CheckpointEvery, maxCheckpointEvery))
	}
	if c.CheckpointIdle < 0 {
		p = append(p, fmt.Sprintf("SIGNAL_CHECKPOINT_IDLE %v must not be negative", c.CheckpointIdle))
	}
	return p
}

// profileZone is the zone of the time-of-day profile's hours of week: the topology's (the rule every service and
// greenwave eval --signals follow), SIGNAL_PROFILE_TIME_ZONE being only a guard that must agree with it.
func (c *Config) profileZone(topo topology.Topology) (*time.Location, error) {
	return topo.LocationWith("SIGNAL_PROFILE_TIME_ZONE", c.ProfileTimeZone)
}
