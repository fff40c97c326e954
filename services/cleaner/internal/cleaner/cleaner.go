// Package cleaner wires the cleaning core (pkg/clean) to Kafka: raw readings in, feature frames and dead letters
// out, per-intersection state snapshotted to a compacted changelog before input offsets are committed.
package cleaner

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/greenwave-city/greenwave/pkg/app"
	"github.com/greenwave-city/greenwave/pkg/clean"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/topics"
	"github.com/greenwave-city/greenwave/pkg/topology"
	"github.com/greenwave-city/greenwave/pkg/wire"
)

// Config is the cleaner's configuration.
type Config struct {
	app.Common
	IdleTimeout     time.Duration `env:"CLEANER_IDLE_TIMEOUT" default:"0s" help:"processing-time idle timeout after which a quiet partition's windows are closed (0 disables; enabling it trades replay determinism for liveness with sparse detectors)"`
	AllowedLateness time.Duration `env:"CLEANER_ALLOWED_LATENESS" default:"5m" help:"how far behind the newest event time a reading may arrive and still count"`
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

// weatherTable guards the shared global weather table: one goroutine follows the weather topic, the partition
// goroutines look it up.
type weatherTable struct {
	mu sync.Mutex
	t  *clean.WeatherTable
}

// Lookup joins the station's observation at event time at; a lookup also advances the table's horizon to at
// (clean.WeatherTable.Advance), which is what lets it drop old observations.
func (w *weatherTable) Lookup(station string, at time.Time) (clean.Weather, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t.Advance(at)
	return w.t.Lookup(station, at)
}

func (w *weatherTable) add(x clean.Weather) *clean.WeatherRejection {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.t.Add(x)
}

type metrics struct {
	frames      prometheus.Counter
	rejected    *prometheus.CounterVec
	dropped     prometheus.Counter
	redelivered prometheus.Counter
	weather     *prometheus.CounterVec
	waits       *prometheus.CounterVec
	health      *prometheus.GaugeVec
	checkpoints *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		frames: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "greenwave", Subsystem: "cleaner", Name: "frames_total",
			Help: "Intersection feature frames emitted (one per closed window)."}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "greenwave", Subsystem: "cleaner", Name: "rejected_total",
			Help: "Readings set aside to the dead-letter topic, by reason."}, []string{"reason"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "greenwave", Subsystem: "cleaner", Name: "replays_dropped_total",
			Help: "Identical replays of readings already applied, dropped silently."}),
		redelivered: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "greenwave", Subsystem: "cleaner", Name: "redelivered_total",
			Help: "Input records skipped because the restored state already covered their offset (redelivery after a restart or rebalance)."}),
		weather: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "greenwave", Subsystem: "cleaner", Name: "weather_total",
			Help: "Weather observations read, by outcome (accepted, malformed, unsupported_schema or a weather_* reason)."}, []string{"outcome"}),
		waits: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "greenwave", Subsystem: "cleaner", Name: "weather_waits_total",
			Help: "Waits of a partition for the weather follower before emitting a window, by outcome (caught_up, timed_out, canceled, end_unknown)."}, []string{"outcome"}),
		health: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "greenwave", Subsystem: "cleaner", Name: "detector_health_score",
			Help: "Detector health score at the last closed window, 0 (dead) to 1 (healthy)."}, []string{"intersection", "approach", "detector"}),
		checkpoints: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "greenwave", Subsystem: "cleaner", Name: "checkpoints_total",
			Help: "Partition checkpoints (state snapshots with their offset commits), by the rule that made them due: bytes, max_delay, replay_idle or every_batch."}, []string{"rule"}),
	}
	reg.MustRegister(m.frames, m.rejected, m.dropped, m.redelivered, m.weather, m.waits, m.health, m.checkpoints)
	return m
}

// Run starts the cleaner and processes until ctx ends.
func Run(ctx context.Context, lookup func(string) (string, bool)) error {
	var cfg Config
	if err := app.Load(&cfg, lookup); err != nil {
		return err
	}
	env, err := app.Setup("cleaner", &cfg.Common)
	if err != nil {
		return err
	}
	defer env.Log.Sync() //nolint:errcheck // nothing useful to do with a failed flush at exit
	cc, err := cfg.cleanConfig(env.Topology.Topology())
	if err != nil {
		return fmt.Errorf("cleaner time zone: %w", err)
	}
	env.Log.Info("calendar features in the topology's time zone", zap.String("time_zone", cc.Location.String()))
	names := cfg.Topics()
	counts, err := app.CheckTopics(ctx, cfg.Brokers, names.Readings, names.Weather, names.Features, names.DeadLetters, names.CleanerState, names.DetectorHealth)
	if err != nil {
		return err
	}
	if err := topics.CheckCoPartitioned(topics.Specs(names, 0), counts); err != nil {
		return fmt.Errorf("check topics: %w", err)
	}
	m := newMetrics(env.Registry)
	weather := &weatherTable{t: clean.NewWeatherTable(cc)}
	var wsync *weatherSync
	if cfg.WeatherWait > 0 {
		wsync = newWeatherSync(kafkaWeatherEnds(cfg.Brokers, names.Weather, counts[names.Weather]), cfg.WeatherWait, m.waits, env.Log)
	}
	var weatherReady sync.Once
	weatherCaughtUp := make(chan struct{})
	prod := stream.NewProducer(cfg.Brokers, stream.ProducerConfig{Registerer: env.Registry})
	defer prod.Close()

	newHandler := func(ctx context.Context, part int) (*stream.Handler, error) {
		// Frames join weather, so wait until the global weather table is loaded before handling readings.
		select {
		case <-weatherCaughtUp:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		p := newPartition(part, counts[names.Readings], env.Topology, cc, names, weather, m)
		p.cad = cfg.cadence()
		p.wsync = wsync
		latest := map[string]kafka.Message{}
		err := stream.ReadPartition(ctx, cfg.Brokers, names.CleanerState, part, func(msg kafka.Message) error {
			if msg.Value == nil {
				delete(latest, string(msg.Key))
			} else {
				latest[string(msg.Key)] = msg
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("restore cleaner state: %w", err)
		}
		for _, id := range slices.Sorted(maps.Keys(latest)) {
			skip, err := p.restore(id, latest[id])
			if err != nil {
				return nil, err
			}
			if skip != "" {
				env.Log.Warn("dropping restored state", zap.String("intersection", id), zap.Int("partition", part), zap.String("why", skip))
				continue
			}
			p.setStateBytes(id, stream.MessageBytes(latest[id]))
		}
		env.Log.Info("partition state restored", zap.Int("partition", part), zap.Int("intersections", len(p.states)))
		return p.handler(), nil
	}
	proc := stream.NewProcessor(stream.ProcessorConfig{
		Brokers: cfg.Brokers, GroupID: cfg.Group("cleaner"), Topic: names.Readings, DeadLetterTopic: names.DeadLetters,
		Service: "cleaner", DeadLetter: wire.DeadLetter, MaxBatch: cfg.MaxBatch, IdleTick: cfg.IdleTimeout, SessionTimeout: cfg.SessionTimeout,
	}, prod, newHandler, env.Log, stream.NewMetrics(env.Registry))

	env.Server.AddReadiness("weather", app.Loaded(weatherCaughtUp, "the weather topic"))
	env.Server.AddReadiness("consumer-group", proc.ReadyCheck)
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return env.Server.Run(ctx) })
	g.Go(func() error {
		return stream.Follow(ctx, cfg.Brokers, names.Weather, counts[names.Weather], func(msg kafka.Message) error {
			applyWeather(weather, m, msg)
			if wsync != nil {
				wsync.consumed(msg.Partition, msg.Offset)
			}
			return nil
		}, func() { weatherReady.Do(func() { close(weatherCaughtUp) }) })
	})
	g.Go(func() error {
		return proc.Run(ctx)
	})
	return g.Wait()
}

// applyWeather adds one record of the weather topic to the table, counting its outcome.
func applyWeather(weather *weatherTable, m *metrics, msg kafka.Message) {
	w, err := wire.TopicWeather.Decode(msg)
	var bad *stream.RejectError
	if errors.As(err, &bad) {
		m.weather.WithLabelValues(stream.ReasonLabel(bad.Reason)).Inc()
		return
	}
	if rej := weather.add(wire.Weather(w)); rej != nil {
		m.weather.WithLabelValues(string(rej.Reason)).Inc()
		return
	}
	m.weather.WithLabelValues("accepted").Inc()
}
