// Package app holds what every Greenwave service binary shares: the common configuration (brokers, topics,
// topology, logging, serving), and the start-up steps built on it.
package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"github.com/greenwave-city/greenwave/pkg/config"
	"github.com/greenwave-city/greenwave/pkg/kafkaconn"
	"github.com/greenwave-city/greenwave/pkg/logging"
	"github.com/greenwave-city/greenwave/pkg/server"
	"github.com/greenwave-city/greenwave/pkg/topics"
	"github.com/greenwave-city/greenwave/pkg/topology"
)

// Common is the configuration every service reads. Services embed it in their own Config.
type Common struct {
	// Kafka is the brokers and their security (KAFKA_BROKERS, KAFKA_TLS*, KAFKA_SASL_*).
	Kafka        kafkaconn.Settings
	TopicPrefix  string `env:"TOPIC_PREFIX" default:"" help:"prefix for every topic and consumer group name (isolates deployments sharing a cluster)"`
	TopologyFile string `env:"TOPOLOGY_FILE" default:"config/topology.yaml" help:"intersection topology file (YAML)"`
	LogLevel     string `env:"LOG_LEVEL" default:"info" help:"debug, info, warn or error"`
	LogFormat    string `env:"LOG_FORMAT" default:"json" help:"json or console"`
	Server       server.Config
}

// Validate reports problems with the common settings.
func (c *Common) Validate() []string {
	var p []string
	p = append(p, c.Kafka.Validate()...)
	return append(p, c.Server.Validate()...)
}

// Topics returns the topic names under the configured prefix.
func (c *Common) Topics() topics.Names { return topics.DefaultNames(c.TopicPrefix) }

// Group returns a consumer group name for the service under the configured prefix.
func (c *Common) Group(service string) string { return c.TopicPrefix + "greenwave." + service }

// Env bundles what a service needs from its start-up: logger, metrics registry, topology, Kafka connection and
// server.
type Env struct {
	// Kafka is the connection every reader, writer and client of the service is made from.
	Kafka    kafkaconn.Conn
	Log      *zap.Logger
	Registry *Registry
	// Health follows the components that cannot reach Kafka (Kafka reports to it); /readyz fails, as "kafka",
	// while any does.
	Health   *kafkaconn.Health
	Topology *topology.Index
	Server   *server.Server
}

// Setup is Prepare followed by NewServer: what a service without special gRPC options needs.
func Setup(service string, c *Common, opts ...grpc.ServerOption) (*Env, error) {
	env, err := Prepare(service, c)
	if err != nil {
		return nil, err
	}
	if err := env.NewServer(c, opts...); err != nil {
		return nil, err
	}
	return env, nil
}

// Prepare builds the logger, the Kafka connection (reading its CA, certificate and password files), a fresh
// metrics registry (with Go and process collectors) and loads the topology. The registry is the service's own:
// nothing is global. Env.Server is nil until NewServer.
func Prepare(service string, c *Common) (*Env, error) {
	log, err := logging.New(service, c.LogLevel, c.LogFormat)
	if err != nil {
		return nil, err
	}
	conn, err := c.Kafka.Conn()
	if err != nil {
		return nil, err
	}
	reg := NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	health := kafkaconn.NewHealth(reg)
	conn = conn.WithHealth(health)
	topo, err := topology.Load(c.TopologyFile)
	if err != nil {
		return nil, fmt.Errorf("load topology: %w", err)
	}
	log.Info("starting", zap.Stringer("kafka", conn), zap.String("topology_revision", topo.Revision),
		zap.Int("intersections", len(topo.Intersections)))
	return &Env{Kafka: conn, Log: log, Registry: reg, Health: health, Topology: topology.NewIndex(topo)}, nil
}

// NewServer creates Env.Server with the extra gRPC options (interceptors, limits), serving the registry on
// /metrics and the list of registered metrics on /debug/metrics.
func (env *Env) NewServer(c *Common, opts ...grpc.ServerOption) error {
	srv, err := server.New(c.Server, env.Log, env.Registry, opts...)
	if err != nil {
		return fmt.Errorf("create server: %w", err)
	}
	srv.Handle("GET /debug/metrics", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		server.WriteJSON(w, http.StatusOK, env.Registry.Metrics())
	}))
	srv.AddReadiness("kafka", env.Health.ReadyCheck)
	env.Server = srv
	return nil
}

// Load reads cfg from the environment lookup (os.LookupEnv when nil), naming every problem.
func Load(cfg any, lookup config.Lookup) error {
	if err := config.Load(cfg, lookup); err != nil {
		return fmt.Errorf("load configuration: %w", err)
	}
	return nil
}

// CheckTopics fails fast, with the command to fix it, when the topics which (among names) are missing: services
// never auto-create. It retries for 60 s so services started together with the topic initialisation wait for
// it; while the brokers cannot be reached at all (a transient error: refused, reset, timed out) it waits for them
// as long as ctx lasts, reporting "startup" to the connection's Health, so a service started during a broker
// outage comes up when the broker does. It also fails when the co-partitioned topics among them disagree on
// their partition count (see topics.CheckCoPartitioned). It returns each topic's partition count. A security failure (wrong password,
// untrusted certificate, missing ACL) ends it at once with the setting to fix: waiting cannot mend it.
func CheckTopics(ctx context.Context, conn kafkaconn.Conn, names topics.Names, which ...string) (map[string]int, error) {
	defer conn.Health().Recovered("startup") // however it ends, start-up no longer waits for Kafka
	deadline := time.Now().Add(60 * time.Second)
	for {
		counts := map[string]int{}
		var missing error
		// A connection of its own first: kafka-go's clients answer metadata from a cache while the brokers are
		// away, which would make a topic check pass against brokers that are down.
		if err := conn.Reachable(ctx, 10*time.Second); err != nil && ctx.Err() == nil {
			if fatal := conn.Classify(err); fatal != nil {
				return nil, fmt.Errorf("check topics: %w", fatal)
			}
			if kafkaconn.IsTransient(err) {
				conn.Health().Failed("startup", err)
				deadline = time.Now().Add(60 * time.Second)
				missing = err
			}
		}
		for _, n := range which {
			if missing != nil {
				break
			}
			c, err := topics.PartitionCount(ctx, conn, n)
			if fatal := conn.Classify(err); fatal != nil {
				return nil, fmt.Errorf("check topics: %w", fatal)
			}
			if err != nil && ctx.Err() == nil && kafkaconn.IsTransient(err) && !errors.Is(err, kafka.UnknownTopicOrPartition) {
				// The brokers are away, not the topic: wait for them without spending the topics' 60 s.
				conn.Health().Failed("startup", err)
				deadline = time.Now().Add(60 * time.Second)
				missing = err
				break
			}
			if err != nil {
				// A topic the user may not describe looks missing: say which ACL lacks rather than wait.
				if denied := conn.TopicDenied(ctx, n); denied != nil {
					return nil, fmt.Errorf("check topics: %w", denied)
				}
				missing = err
				break
			}
			counts[n] = c
		}
		if missing == nil {
			if err := topics.CheckCoPartitioned(topics.Specs(names, 0), counts); err != nil {
				return nil, fmt.Errorf("check topics: %w", err)
			}
			return counts, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("check topics: %w", missing)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// Main is every service binary's main: it serves --help/--env-json, otherwise runs run with a context cancelled
// by SIGINT or SIGTERM, and exits non-zero with the error (2 for a bad argument, 1 for a failed run).
func Main(service, summary string, cfg any, run func(ctx context.Context, lookup func(string) (string, bool)) error) {
	if handled, err := HandleFlags(os.Args[1:], os.Stdout, service, summary, cfg); handled {
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", service, err)
			os.Exit(2)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.LookupEnv)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", service, err)
		os.Exit(1)
	}
}

// Loaded is a readiness check that fails with "loading WHAT" until done is closed.
func Loaded(done <-chan struct{}, what string) func() error {
	return func() error {
		select {
		case <-done:
			return nil
		default:
			return fmt.Errorf("loading %s", what)
		}
	}
}

// Serving is a service's run once its server is up: the server runs from before the first call to Kafka, so a
// service started while the brokers are down binds its ports, answers /healthz, and says on /readyz why it is
// not ready ("startup") while it waits for them, rather than refusing connections or exiting.
type Serving struct {
	g      *errgroup.Group
	ctx    context.Context
	cancel context.CancelFunc
	once   sync.Once
	done   chan struct{}
}

// Serve registers the "startup" readiness check and starts env.Server. Register every gRPC service before it
// (gRPC refuses registrations once serving); readiness checks may be added later.
func (env *Env) Serve(ctx context.Context) *Serving {
	ctx, cancel := context.WithCancel(ctx)
	g, gctx := errgroup.WithContext(ctx)
	s := &Serving{g: g, ctx: gctx, cancel: cancel, done: make(chan struct{})}
	env.Server.AddReadiness("startup", Loaded(s.done, "the start-up: waiting for Kafka and the topics"))
	g.Go(func() error { return env.Server.Run(gctx) })
	return s
}

// Context is the run's context: it ends when the parent does or any of the run's goroutines fails.
func (s *Serving) Context() context.Context { return s.ctx }

// Go runs f as part of the run: its error ends the run.
func (s *Serving) Go(f func() error) { s.g.Go(f) }

// Started marks the start-up done: the "startup" readiness check passes from now on.
func (s *Serving) Started() { s.once.Do(func() { close(s.done) }) }

// Abort ends the run because start-up failed with err, waits for the server to stop, and returns err.
func (s *Serving) Abort(err error) error {
	s.cancel()
	_ = s.g.Wait()
	return err
}

// Wait waits for the run to end and returns the first error of its goroutines.
func (s *Serving) Wait() error {
	err := s.g.Wait()
	s.cancel()
	return err
}
