package collector

import (
	"context"
	"fmt"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/greenwave-city/greenwave/pkg/app"
	"github.com/greenwave-city/greenwave/pkg/ingest"
	"github.com/greenwave-city/greenwave/pkg/ingest/gateways"
	"github.com/greenwave-city/greenwave/pkg/stream"
)

// The collector's producer: few, short attempts, so a failed batch is answered (and final) within ~30 s.
const (
	producerAttempts   = 3
	producerTimeout    = 5 * time.Second
	kafkaProbeInterval = 2 * time.Second
)

// Run starts the collector and serves until ctx ends.
func Run(ctx context.Context, lookup func(string) (string, bool)) error {
	var cfg Config
	if err := app.Load(&cfg, lookup); err != nil {
		return err
	}
	env, err := app.Prepare("collector", &cfg.Common)
	if err != nil {
		return err
	}
	defer env.Log.Sync() //nolint:errcheck // nothing useful to do with a failed flush at exit
	// A secure Conn pools its connections in a transport of its own: they end with the run.
	defer env.Kafka.CloseIdleConnections()
	var registry *gateways.Registry
	if cfg.TokensFile != "" {
		b, err := os.ReadFile(cfg.TokensFile)
		if err != nil {
			return fmt.Errorf("read gateway registry: %w", err)
		}
		if registry, err = gateways.Parse(b, env.Topology); err != nil {
			return fmt.Errorf("load gateway registry %s: %w", cfg.TokensFile, err)
		}
	}
	names := cfg.Topics()
	// A batch the collector answers as failed must never be written afterwards, behind the gateway's back: the
	// producer's failures are final (see stream.ProducerConfig.FinalFailures), bounded by 3 attempts of at most
	// 2 × 5 s each, and mark "producer" unreachable in readiness.
	prod := stream.NewProducer(env.Kafka, stream.ProducerConfig{Registerer: env.Registry, FinalFailures: true,
		MaxAttempts: producerAttempts, WriteTimeout: producerTimeout, Component: "producer"})
	defer prod.Close()
	lim := ingest.DefaultLimits()
	lim.MaxFutureSkew, lim.MaxAge = cfg.MaxFutureSkew, cfg.MaxAge
	svc, err := New(Options{
		Publisher: prod, Topology: env.Topology, Names: names, Gateways: registry, AllowAnonymous: cfg.AllowAnonymous,
		Limits: lim, MaxBatch: cfg.MaxBatch, MaxMessageBytes: cfg.MaxMessageBytes,
		StreamInFlight: cfg.StreamInFlight, StreamIdleTimeout: cfg.StreamIdle, MaxInFlight: cfg.MaxInFlight, Now: time.Now, Log: env.Log, Registry: env.Registry,
	})
	if err != nil {
		return err
	}
	// The server is created after the service: its interceptors and message limit come from the service.
	if err := env.NewServer(&cfg.Common, svc.ServerOptions()...); err != nil {
		return err
	}
	svc.Register(env.Server)
	gatewayCount := 0
	if registry != nil {
		gatewayCount = registry.Len()
	}
	env.Log.Info("collector configured", zap.Int("gateways", gatewayCount), zap.Bool("anonymous", cfg.AllowAnonymous))
	// Serve first: a collector started while the brokers are down answers /readyz "startup" while it waits.
	run := env.Serve(ctx)
	if _, err := app.CheckTopics(run.Context(), env.Kafka, names, names.Readings, names.Weather); err != nil {
		return run.Abort(err)
	}
	run.Started()
	// Readiness follows the brokers while no batch arrives, and comes back after an outage without traffic.
	run.Go(func() error {
		env.Health.Watch(run.Context(), "producer", kafkaProbeInterval, func(ctx context.Context) error {
			return env.Kafka.Reachable(ctx, kafkaProbeInterval)
		})
		return nil
	})
	return run.Wait()
}
