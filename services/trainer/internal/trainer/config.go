package trainer

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/greenwave-city/greenwave/pkg/app"
	"github.com/greenwave-city/greenwave/pkg/train"
)

// Config is the trainer's configuration, read from the environment (see docs/trainer.md).
type Config struct {
	app.Common
	Horizons         []string      `env:"TRAINER_HORIZONS" default:"auto" help:"forecast horizons, one model per approach and horizon, each a multiple of every intersection's window (topology window_s); auto: those of 15m, 30m, 1h that are multiples of the intersection's window, else one window (train.AutoHorizons; keep PREDICTOR_HORIZONS equal)"`
	MaxBatch         int           `env:"TRAINER_MAX_BATCH" default:"200" help:"frames handled per batch (a batch also ends when the partition is caught up); a checkpoint, when due (TRAINER_CHECKPOINT_INTERVAL), follows a batch"`
	SessionTimeout   time.Duration `env:"TRAINER_SESSION_TIMEOUT" default:"10s" help:"consumer group session timeout: how long a dead instance keeps its partitions before they are reassigned (Kafka brokers accept 6s..30m by default)"`
	PublishEvery     time.Duration `env:"TRAINER_PUBLISH_INTERVAL" default:"12h" help:"event time between the served snapshots of a model on the models topic (what the predictor applies): a model is published with its first window, when it can first forecast, and when its newest applied window crosses a multiple of this interval (UTC-aligned); 0 publishes every window. The predictor serves coefficients up to this much event time old (keep PREDICTOR_MAX_MODEL_AGE above it). See docs/trainer.md for the cost"`
	CheckpointEvery  time.Duration `env:"TRAINER_CHECKPOINT_INTERVAL" default:"72h" help:"event time between the complete snapshots on the trainer's changelog (greenwave.trainer.state), with which input offsets are committed: a partition is checkpointed when its newest applied window crosses a multiple of this interval (UTC-aligned); 0 after every batch. A restart replays the features since the last checkpoint (exact either way), so keep it well below the features topic's retention (7 days). See docs/trainer.md for the cost"`
	CheckpointIdle   time.Duration `env:"TRAINER_CHECKPOINT_IDLE" default:"10s" help:"processing time after which a quiet partition whose event time is more than TRAINER_CHECKPOINT_INTERVAL behind the wall clock (a finished replay) is checkpointed and its models published, so its last windows are served and committed; 0 never"`
	Target           string        `env:"TRAINER_TARGET" default:"flow" help:"the quantity this trainer learns to forecast for every approach and horizon: flow, occupancy or speed (speed-only or occupancy-only sensors need their own; signal control needs flow). One target per trainer deployment: a trainer for another target joins its own consumer group (trainer-<target>) and restores only its target's models, so several can share the topics"`
	SubscriberBuffer int           `env:"TRAINER_SUBSCRIBER_BUFFER" default:"4096" help:"distinct models a WatchModels subscriber may lag behind before it is ended"`
	MaxSubscribers   int           `env:"TRAINER_MAX_SUBSCRIBERS" default:"64" help:"WatchModels streams served at once; one more is refused with RESOURCE_EXHAUSTED (each holds up to TRAINER_SUBSCRIBER_BUFFER queued models)"`
}

// trainConfig builds the learners' base configuration: train.BaseConfig with the configured horizons (none for
// auto). Each intersection's learners get train.ConfigFor(base, its frames' window), the rule greenwave eval
// applies to the topology's window, so a live model equals the offline one.
func (c *Config) trainConfig() (train.Config, error) {
	tc := train.BaseConfig()
	hs, err := train.ParseHorizons("TRAINER_HORIZONS", c.Horizons)
	if err != nil {
		return tc, err
	}
	tc.Horizons = hs
	if !slices.Contains(train.Targets(), c.Target) {
		return tc, fmt.Errorf("TRAINER_TARGET %q is not one of %s", c.Target, strings.Join(train.Targets(), ", "))
	}
	tc.Target = c.Target
	if err := tc.ValidateBase(); err != nil {
		return tc, fmt.Errorf("TRAINER_HORIZONS: %w", err)
	}
	return tc, nil
}

// groupName is the trainer's consumer group (before the topic prefix): "trainer" for flow, as it always was,
// "trainer-<target>" for another target, so that a trainer per target can run on the same features topic.
func (c *Config) groupName() string {
	if c.Target == "" || c.Target == train.TargetFlow {
		return "trainer"
	}
	return "trainer-" + c.Target
}

// Validate reports every problem.
func (c *Config) Validate() []string {
	p := c.Common.Validate()
	if _, err := c.trainConfig(); err != nil {
		p = append(p, err.Error())
	}
	if c.MaxBatch < 1 {
		p = append(p, fmt.Sprintf("TRAINER_MAX_BATCH %d must be at least 1", c.MaxBatch))
	}
	if c.SessionTimeout <= 0 {
		p = append(p, fmt.Sprintf("TRAINER_SESSION_TIMEOUT %v must be positive", c.SessionTimeout))
	}
	if c.CheckpointEvery < 0 || c.CheckpointEvery%time.Second != 0 {
		p = append(p, fmt.Sprintf("TRAINER_CHECKPOINT_INTERVAL %v must be a whole number of seconds, not negative", c.CheckpointEvery))
	}
	if c.PublishEvery < 0 || c.PublishEvery%time.Second != 0 {
		p = append(p, fmt.Sprintf("TRAINER_PUBLISH_INTERVAL %v must be a whole number of seconds, not negative", c.PublishEvery))
	}
	if c.CheckpointIdle < 0 {
		p = append(p, fmt.Sprintf("TRAINER_CHECKPOINT_IDLE %v must not be negative", c.CheckpointIdle))
	}
	if c.SubscriberBuffer < 1 {
		p = append(p, fmt.Sprintf("TRAINER_SUBSCRIBER_BUFFER %d must be at least 1", c.SubscriberBuffer))
	}
	if c.MaxSubscribers < 1 {
		p = append(p, fmt.Sprintf("TRAINER_MAX_SUBSCRIBERS %d must be at least 1", c.MaxSubscribers))
	}
	return p
}
