package cleaner

import (
	"context"
	"fmt"
	"sync"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/greenwave-city/greenwave/pkg/app"
	"github.com/greenwave-city/greenwave/pkg/clean"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/wire"
)

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
	// A secure Conn pools its connections in a transport of its own: they end with the run.
	defer env.Kafka.CloseIdleConnections()
	cc, err := cfg.cleanConfig(env.Topology.Topology())
	if err != nil {
		return fmt.Errorf("cleaner time zone: %w", err)
	}
	env.Log.Info("calendar features in the topology's time zone", zap.String("time_zone", cc.Location.String()))
	names := cfg.Topics()
	// Serve first: a cleaner started while the brokers are down answers /readyz "startup" while it waits.
	run := env.Serve(ctx)
	ctx = run.Context()
	counts, err := app.CheckTopics(ctx, env.Kafka, names, names.Readings, names.Weather, names.Features, names.DeadLetters, names.CleanerState, names.DetectorHealth)
	if err != nil {
		return run.Abort(err)
	}
	run.Started()
	m := newMetrics(env.Registry)
	weather := &weatherTable{t: clean.NewWeatherTable(cc)}
	var wsync *weatherSync
	if cfg.WeatherWait > 0 {
		wsync = newWeatherSync(kafkaWeatherEnds(env.Kafka, names.Weather, counts[names.Weather]), cfg.WeatherWait, m.waits, env.Log)
	}
	var weatherReady sync.Once
	weatherCaughtUp := make(chan struct{})
	prod := stream.NewProducer(env.Kafka, stream.ProducerConfig{Registerer: env.Registry})
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
		if err := p.restoreFrom(ctx, env.Kafka, names.CleanerState, env.Log); err != nil {
			return nil, err
		}
		return p.handler(), nil
	}
	proc := stream.NewProcessor(stream.ProcessorConfig{
		Conn: env.Kafka, GroupID: cfg.Group("cleaner"), Topic: names.Readings, DeadLetterTopic: names.DeadLetters,
		Service: "cleaner", DeadLetter: wire.DeadLetter, MaxBatch: cfg.MaxBatch, IdleTick: cfg.IdleTimeout, SessionTimeout: cfg.SessionTimeout,
	}, prod, newHandler, env.Log, stream.NewMetrics(env.Registry))

	env.Server.AddReadiness("weather", app.Loaded(weatherCaughtUp, "the weather topic"))
	env.Server.AddReadiness("consumer-group", proc.ReadyCheck)
	run.Go(func() error {
		return stream.Follow(ctx, env.Kafka, names.Weather, counts[names.Weather], func(msg kafka.Message) error {
			applyWeather(weather, m, msg)
			if wsync != nil {
				wsync.consumed(msg.Partition, msg.Offset)
			}
			return nil
		}, func() { weatherReady.Do(func() { close(weatherCaughtUp) }) })
	})
	run.Go(func() error {
		return proc.Run(ctx)
	})
	return run.Wait()
}
