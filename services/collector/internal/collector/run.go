package collector

import (
	"context"
	"fmt"
	"os"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/greenwave-city/greenwave/pkg/app"
	"github.com/greenwave-city/greenwave/pkg/ingest"
	"github.com/greenwave-city/greenwave/pkg/ingest/gateways"
	"github.com/greenwave-city/greenwave/pkg/stream"
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
	if _, err := app.CheckTopics(ctx, env.Kafka, names, names.Readings, names.Weather); err != nil {
		return err
	}
	prod := stream.NewProducer(env.Kafka, stream.ProducerConfig{Registerer: env.Registry})
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
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return env.Server.Run(ctx) })
	return g.Wait()
}
