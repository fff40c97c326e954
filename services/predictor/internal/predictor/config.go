package predictor

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/greenwave-city/greenwave/pkg/app"
	"github.com/greenwave-city/greenwave/pkg/congestion"
	"github.com/greenwave-city/greenwave/pkg/train"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// Config is the predictor's configuration.
type Config struct {
	app.Common
	Horizons         []string      `env:"PREDICTOR_HORIZONS" default:"auto" help:"horizons predicted for every approach, each a multiple of every intersection's window; auto: the trainer's rule (those of 15m, 30m, 1h that are multiples of the window, else one window). Must equal TRAINER_HORIZONS"`
	Targets          []string      `env:"PREDICTOR_TARGETS" default:"flow" help:"targets predicted for every approach and horizon: flow, occupancy, speed (models trained for them must exist; flow alone drives signal control)"`
	MaxModelAge      time.Duration `env:"PREDICTOR_MAX_MODEL_AGE" default:"13h" help:"event time since a model last learned after which its predictions are marked stale; keep it above TRAINER_PUBLISH_INTERVAL (12h), the event time between the served model snapshots the predictor receives"`
	ModelWait        time.Duration `env:"PREDICTOR_MODEL_WAIT" default:"30s" help:"how long a frame whose model is stale waits for the trainer's next snapshot, in processing time without progress (the trainer is behind in a fast replay or a backlog); then it is predicted stale, that model is not waited for again until a newer snapshot of it arrives, and no frame waits until some snapshot arrives. Frames without any model never wait. 0: never wait"`
	Confidence       float64       `env:"PREDICTOR_CONFIDENCE" default:"0.9" help:"coverage of the prediction intervals (keep equal to the trainer's interval confidence, 0.9)"`
	SubscriberBuffer int           `env:"PREDICTOR_SUBSCRIBER_BUFFER" default:"1024" help:"predictions a Subscribe stream may lag behind; a full queue keeps only the newest per intersection, and a full queue of distinct intersections ends the stream with RESOURCE_EXHAUSTED"`
	MaxSubscribers   int           `env:"PREDICTOR_MAX_SUBSCRIBERS" default:"256" help:"Subscribe streams served at once; one more is refused with RESOURCE_EXHAUSTED (each holds up to PREDICTOR_SUBSCRIBER_BUFFER queued predictions)"`
	LevelsSaturation []string      `env:"PREDICTOR_LEVELS_SATURATION" default:"0.6,0.7,0.85,1" help:"upper degree-of-saturation (v/c) bounds of the free, light, moderate and heavy levels for flow"`
	LevelsSpeed      []string      `env:"PREDICTOR_LEVELS_SPEED" default:"0.8,0.67,0.5,0.3" help:"lower speed/free-flow-speed bounds of the free, light, moderate and heavy levels for speed"`
	LevelsOccupancy  []string      `env:"PREDICTOR_LEVELS_OCCUPANCY" default:"0.1,0.15,0.25,0.35" help:"upper occupancy-ratio bounds of the free, light, moderate and heavy levels for occupancy"`
	FreeFlowSpeedKMH float64       `env:"PREDICTOR_FREE_FLOW_SPEED_KMH" default:"50" help:"uncongested approach speed in km/h, the divisor of the speed ratio"`
	MaxBatch         int           `env:"PREDICTOR_MAX_BATCH" default:"32" help:"feature frames handled before their predictions are written to Kafka: a frame waits for at most this many others to be predicted"`
	CommitInterval   time.Duration `env:"PREDICTOR_COMMIT_INTERVAL" default:"1s" help:"how often input offsets are committed (0: after every batch); a crash replays at most this much; predictions already published are kept, not made again"`
	SessionTimeout   time.Duration `env:"PREDICTOR_SESSION_TIMEOUT" default:"10s" help:"consumer group session timeout: how long a dead instance keeps its partitions before they are reassigned (Kafka brokers accept 6s..30m by default)"`
	WriteLinger      time.Duration `env:"PREDICTOR_WRITE_LINGER" default:"10us" help:"how long a write of predictions waits for more records to batch with (kafka-go BatchTimeout); each partition writes its whole batch at once, so waiting only adds latency"`
}

// horizons returns the configured horizons, nil for auto (train.ParseHorizons).
func (c *Config) horizons() ([]time.Duration, error) {
	hs, err := train.ParseHorizons("PREDICTOR_HORIZONS", c.Horizons)
	if err != nil {
		return nil, err
	}
	base := train.BaseConfig()
	base.Horizons = hs
	if err := base.ValidateBase(); err != nil {
		return nil, fmt.Errorf("PREDICTOR_HORIZONS: %s", train.OneLine(err))
	}
	return hs, nil
}

// target is a predicted quantity: its train name (the model id suffix) and the proto enum.
type target struct {
	name  string
	proto greenwavev1.Target
}

func (c *Config) targets() ([]target, error) {
	var ts []target
	seen := map[string]bool{}
	for _, s := range c.Targets {
		if !slices.Contains(train.Targets(), s) || seen[s] {
			return nil, fmt.Errorf("PREDICTOR_TARGETS: %q is not flow, occupancy or speed, or is repeated", s)
		}
		seen[s] = true
		ts = append(ts, target{s, wire.TargetProto(s)})
	}
	if len(ts) == 0 {
		return nil, errors.New("PREDICTOR_TARGETS is empty")
	}
	return ts, nil
}

func (c *Config) classifier() (congestion.Classifier, []string) {
	var problems []string
	cl := congestion.Classifier{FreeFlowSpeedKMH: c.FreeFlowSpeedKMH}
	parse := func(env string, in []string, dst *[4]float64) {
		a, b, cc, d, err := congestion.ParseBounds(in)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", env, err))
		}
		*dst = [4]float64{a, b, cc, d}
	}
	var s, sp, o [4]float64
	parse("PREDICTOR_LEVELS_SATURATION", c.LevelsSaturation, &s)
	parse("PREDICTOR_LEVELS_SPEED", c.LevelsSpeed, &sp)
	parse("PREDICTOR_LEVELS_OCCUPANCY", c.LevelsOccupancy, &o)
	cl.Saturation = congestion.Thresholds{Free: s[0], Light: s[1], Moderate: s[2], Heavy: s[3]}
	cl.Speed = congestion.SpeedThresholds{Free: sp[0], Light: sp[1], Moderate: sp[2], Heavy: sp[3]}
	cl.Occupancy = congestion.OccupancyThresholds{Free: o[0], Light: o[1], Moderate: o[2], Heavy: o[3]}
	if len(problems) == 0 {
		for _, err := range cl.Validate() {
			problems = append(problems, "PREDICTOR_LEVELS_* / PREDICTOR_FREE_FLOW_SPEED_KMH: "+err.Error())
		}
	}
	return cl, problems
}

// Validate reports every problem.
func (c *Config) Validate() []string {
	p := c.Common.Validate()
	if _, err := c.horizons(); err != nil {
		p = append(p, err.Error())
	}
	if _, err := c.targets(); err != nil {
		p = append(p, err.Error())
	}
	if !(c.Confidence > 0 && c.Confidence < 1) {
		p = append(p, "PREDICTOR_CONFIDENCE must lie in (0, 1)")
	}
	if c.SubscriberBuffer < 1 {
		p = append(p, "PREDICTOR_SUBSCRIBER_BUFFER must be at least 1")
	}
	if c.MaxSubscribers < 1 {
		p = append(p, "PREDICTOR_MAX_SUBSCRIBERS must be at least 1")
	}
	if c.MaxBatch < 1 {
		p = append(p, fmt.Sprintf("PREDICTOR_MAX_BATCH %d must be at least 1", c.MaxBatch))
	}
	if c.SessionTimeout <= 0 {
		p = append(p, fmt.Sprintf("PREDICTOR_SESSION_TIMEOUT %v must be positive", c.SessionTimeout))
	}
	if c.CommitInterval < 0 {
		p = append(p, "PREDICTOR_COMMIT_INTERVAL must not be negative")
	}
	if c.WriteLinger <= 0 {
		p = append(p, "PREDICTOR_WRITE_LINGER must be positive")
	}
	if c.ModelWait < 0 {
		p = append(p, "PREDICTOR_MODEL_WAIT must not be negative")
	}
	if c.MaxModelAge <= 0 {
		p = append(p, "PREDICTOR_MAX_MODEL_AGE must be positive")
	}
	_, problems := c.classifier()
	return append(p, problems...)
}
