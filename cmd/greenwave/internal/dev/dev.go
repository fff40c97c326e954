// Package dev runs `greenwave dev`: an embedded Kafka broker with the Greenwave topics, the five services as
// child processes (internal/stack), the simulator feeding the collector over an acked stream
// (internal/gateway), the signal plans as signal-control issues them, and summaries of what went through.
// The command's flags and help text stay in package main.
package dev

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/cli"
	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/devstate"
	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/ops"
	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/stack"
	"github.com/greenwave-city/greenwave/pkg/kafkaconn"
	"github.com/greenwave-city/greenwave/pkg/server"
	"github.com/greenwave-city/greenwave/pkg/sim"
	"github.com/greenwave-city/greenwave/pkg/topics"
	"github.com/greenwave-city/greenwave/pkg/topology"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// Options are the flags of `greenwave dev`.
type Options struct {
	// Topology is the topology file; empty means config/topology.yaml in the repository root.
	Topology string
	// BrokerPort is the embedded broker's port on 127.0.0.1; 0 picks a free one.
	BrokerPort int
	// Brokers, when set, runs the stack on this Kafka cluster instead of the embedded broker, connecting (dev
	// and the services alike) with the security of the caller's KAFKA_TLS* and KAFKA_SASL_* variables.
	Brokers []string
	// CreateTopics creates the topics missing on the Brokers cluster; without it a missing topic is an error.
	CreateTopics bool
	// TopicPrefix is the services' TOPIC_PREFIX on the Brokers cluster (the embedded broker uses none).
	TopicPrefix string
	// JSON prints JSON lines on stdout instead of text.
	JSON bool
	// Sample feeds the collector from the simulator.
	Sample bool
	// Speed is simulated seconds per wall-clock second (0: as fast as the collector acks).
	Speed cli.Speed
	// Backfill is how far before now simulated time starts (truncated to the hour).
	Backfill time.Duration
	// Seed is the simulator's seed.
	Seed uint64
	// For stops the run this long after the services are ready; 0 runs until ctx ends.
	For time.Duration
	// Logs also copies the service logs to stderr.
	Logs bool
	// LogFile receives the service logs (truncated at start).
	LogFile string
	// LogLevel is LOG_LEVEL of the services.
	LogLevel string
	// SummaryEvery is the interval of the summary line (0: none but the final one).
	SummaryEvery time.Duration
	// ReadyTimeout bounds how long the services may take to become ready.
	ReadyTimeout time.Duration
	// StateFile receives the addresses for the other commands while dev runs ("": nowhere).
	StateFile string
	// Env holds extra KEY=VALUE entries for every service's environment, after this process's own, so a caller
	// (greenwave sumo) configures the services without changing its own environment.
	Env []string
	// Lookup reads the caller's environment (os.LookupEnv when nil): the collector settings dev presets give way
	// to the caller's, and the simulator's gateway token comes from $GREENWAVE_TOKEN.
	Lookup func(string) (string, bool)
}

// collectorDefaults are the collector settings dev presets for development — anonymous gateways, and no
// backfill horizon so `greenwave replay` of historical data sets works — unless the caller's environment sets
// them: COLLECTOR_ALLOW_ANONYMOUS=false (with COLLECTOR_TOKENS_FILE) runs dev with authentication on.
var collectorDefaults = []struct{ key, value string }{
	{"COLLECTOR_ALLOW_ANONYMOUS", "true"},
	{"COLLECTOR_MAX_AGE", "876000h"},
}

// envToken is the simulator's gateway token: $GREENWAVE_TOKEN, as the other commands read it and with the same
// checks (cli.CheckToken); "" when unset.
func envToken(lookup func(string) (string, bool)) (string, error) {
	t, _ := lookup(ops.EnvToken)
	if t = strings.TrimSpace(t); t == "" {
		return "", nil
	}
	if err := cli.CheckToken("$"+ops.EnvToken, t); err != nil {
		return "", err
	}
	return t, nil
}

// collectorEnv is what dev adds to the collector's environment: each preset the caller has not set.
func collectorEnv(lookup func(string) (string, bool)) []string {
	var env []string
	for _, d := range collectorDefaults {
		if _, set := lookup(d.key); !set {
			env = append(env, d.key+"="+d.value)
		}
	}
	return env
}

// errStop is how the worker that waits for the end of the run (a signal, --for) stops the others: not a failure.
var errStop = errors.New("stop")

// Run runs the embedded stack until ctx ends or o.For elapses. An interrupt (ctx ending) is a normal way to stop
// and returns nil when every service stops cleanly.
func Run(ctx context.Context, o Options, stdout, stderr io.Writer) (err error) {
	started := time.Now()
	out := newPrinter(stdout, o.JSON)
	progress := func(format string, args ...any) { fmt.Fprintf(stderr, "greenwave dev: "+format+"\n", args...) }
	interrupted := func(err error) error {
		if ctx.Err() != nil {
			progress("interrupted")
			return nil
		}
		return err
	}

	lookup := o.Lookup
	if lookup == nil {
		lookup = os.LookupEnv
	}
	token, err := envToken(lookup)
	if err != nil {
		return cli.Usagef("dev: %v", err)
	}
	root, rootErr := stack.FindRepoRoot(".")
	if o.Topology == "" {
		if rootErr != nil {
			return fmt.Errorf("dev: --topology not given and %w", rootErr)
		}
		o.Topology = filepath.Join(root, "config", "topology.yaml")
	}
	topo, err := topology.Load(o.Topology)
	if err != nil {
		return fmt.Errorf("dev: load topology %s: %w", o.Topology, err)
	}

	logFile, err := os.Create(o.LogFile)
	if err != nil {
		return fmt.Errorf("dev: open log file: %w", err)
	}
	defer logFile.Close()
	var logs io.Writer = logFile
	if o.Logs {
		logs = io.MultiWriter(logFile, stderr)
	}

	if os.Getenv(stack.EnvBinDir) == "" {
		if rootErr != nil {
			return fmt.Errorf("dev: %w", rootErr)
		}
		progress("building services in %s", root)
	}
	binDir, err := stack.Binaries(ctx, root)
	if err != nil {
		return interrupted(fmt.Errorf("dev: %w", err))
	}

	names := topics.DefaultNames(o.TopicPrefix)
	var cluster kafkaconn.Conn // the Kafka cluster, embedded or external
	serviceEnv := o.Env
	if len(o.Brokers) > 0 {
		if cluster, err = ops.KafkaConn("dev", o.Brokers, lookup); err != nil {
			return err
		}
		// The services inherit this process's environment, KAFKA_TLS* and KAFKA_SASL_* included.
		err = externalTopics(ctx, cluster, names, o.CreateTopics, progress)
		cluster.CloseIdleConnections()
		if err != nil {
			return interrupted(fmt.Errorf("dev: %w", err))
		}
		progress("using the Kafka cluster %s; starting services (logs: %s)", cluster, o.LogFile)
	} else {
		broker, startErr := stack.StartBroker(stack.BrokerConfig{Port: o.BrokerPort})
		if startErr != nil {
			return fmt.Errorf("dev: %w", startErr)
		}
		defer func() {
			if closeErr := broker.Close(); closeErr != nil && err == nil {
				err = fmt.Errorf("dev: %w", closeErr)
			}
		}()
		cluster = kafkaconn.Plaintext(broker.Addrs()...)
		tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err = topics.EnsureTopics(tctx, cluster, topics.Specs(names, 3))
		cancel()
		// EnsureTopics talks through kafka-go's default transport, which keeps its connections pooled for good; so
		// do the plan counter's partition lookups.
		closeDefaultTransport()
		if err != nil {
			return interrupted(fmt.Errorf("dev: %w", err))
		}
		// The embedded broker is plaintext: security settings in the caller's environment are not for it.
		serviceEnv = append(plaintextEnv(), o.Env...)
		progress("broker %s up (its log in %s), topics created; starting services (logs: %s)", cluster.Brokers[0], broker.Dir(), o.LogFile)
	}
	defer closeDefaultTransport()
	defer cluster.CloseIdleConnections()
	brokers := cluster.Brokers

	st, err := stack.Start(ctx, stack.Config{
		Brokers:      brokers,
		TopicPrefix:  o.TopicPrefix,
		TopologyFile: o.Topology,
		BinDir:       binDir,
		Env:          serviceEnv,
		ExtraEnv:     map[string][]string{"collector": collectorEnv(lookup)},
		Stdout:       logs,
		LogFormat:    "console",
		LogLevel:     o.LogLevel,
		Dir:          root,
		ReadyTimeout: o.ReadyTimeout,
	})
	if err != nil {
		return interrupted(fmt.Errorf("dev: %w", err))
	}
	// Every path below ends by stopping the stack; a failed stop makes the run fail.
	defer func() {
		if stopErr := st.Stop(); stopErr != nil && err == nil {
			err = fmt.Errorf("dev: %w", stopErr)
		}
	}()
	if err := st.WaitReady(ctx); err != nil {
		return interrupted(fmt.Errorf("dev: %w", describeExit(err)))
	}
	addrs := map[string]server.Addrs{}
	for _, n := range st.Services() {
		addrs[n] = st.Addrs(n)
	}
	if stateFile := o.StateFile; stateFile != "" {
		if err := writeState(stateFile, brokers, addrs, o.LogFile); err != nil {
			progress("%v (other commands will need --brokers/--addr)", err)
		} else {
			defer func() { _ = devstate.Remove(stateFile, os.Getpid()) }()
			progress("addresses written to %s for the other greenwave commands", stateFile)
		}
	}
	out.ready(brokers[0], st.Services(), addrs, o.LogFile, time.Since(started))

	s := &session{o: o, out: out, progress: progress, stack: st, stats: newStats(), ready: time.Now()}
	// Plan counts come from the plans topic; the plan lines from the WatchPlans stream.
	// On a cluster of its own the plans left by earlier runs are not this run's.
	if s.counter, err = newPlanCounter(ctx, cluster, names.Plans, s.stats, len(o.Brokers) > 0); err != nil {
		return interrupted(fmt.Errorf("dev: %w", err))
	}
	conn := func(name string) (*grpc.ClientConn, error) {
		c, err := grpc.NewClient(addrs[name].GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, fmt.Errorf("dev: dial %s: %w", name, err)
		}
		return c, nil
	}
	if o.Sample {
		start := time.Now().Add(-o.Backfill).Truncate(time.Hour)
		simulator, err := sim.New(topo, sim.Config{Seed: o.Seed, Start: start, IntervalS: 60})
		if err != nil {
			return fmt.Errorf("dev: %w", err)
		}
		cc, err := conn("collector")
		if err != nil {
			return err
		}
		defer cc.Close()
		s.feeder = &feeder{
			client: greenwavev1.NewCollectorServiceClient(cc), token: token, sim: simulator, speed: float64(o.Speed),
			interval: 60 * time.Second, stats: s.stats, now: time.Now,
		}
		if !o.JSON {
			pace := o.Speed.String() + "x"
			if o.Speed == 0 {
				pace = "full speed"
			}
			out.text(fmt.Sprintf("feeding simulated sensors from %s at %s (seed %d)\n", start.UTC().Format(planTime), pace, o.Seed))
		}
	}
	cc, err := conn("signalcontrol")
	if err != nil {
		return err
	}
	defer cc.Close()
	s.plans = greenwavev1.NewSignalControlServiceClient(cc)
	return s.run(ctx)
}

// session is a ready stack and the workers that run on it until the run stops.
type session struct {
	o        Options
	out      *printer
	progress func(string, ...any)
	stack    *stack.Stack
	stats    *stats
	ready    time.Time
	counter  *planCounter
	feeder   *feeder // nil without --sample
	plans    greenwavev1.SignalControlServiceClient
}

// run runs the workers — the end of the run, the services, the feed, the plan lines, the summaries — until ctx
// ends, --for elapses, a service exits or a worker fails (the first of these stops the others), then prints the
// final summary. The plan counter, in an outer group, outlives them and catches up with the plans topic before
// that summary. The embedded broker has no worker: it is closed after the services stop.
func (s *session) run(ctx context.Context) error {
	countCtx, stopCounting := context.WithCancel(context.Background())
	defer stopCounting()
	serviceFailed := false
	g, gctx := errgroup.WithContext(context.Background())
	g.Go(func() error { return s.counter.run(countCtx) })
	g.Go(func() error {
		defer stopCounting()
		w, wctx := errgroup.WithContext(gctx)
		w.Go(func() error { return s.stopWhen(ctx, wctx) })
		w.Go(func() error {
			select {
			case <-s.stack.Done():
				serviceFailed = true
				return fmt.Errorf("dev: %w", describeExit(s.stack.Err()))
			case <-wctx.Done():
				return nil
			}
		})
		if s.feeder != nil {
			w.Go(func() error {
				if err := s.feeder.run(wctx); err != nil {
					return fmt.Errorf("dev: sample feed: %w", err)
				}
				return nil
			})
		}
		w.Go(func() error {
			if err := watchPlans(wctx, s.plans, s.out); err != nil {
				return fmt.Errorf("dev: %w", err)
			}
			return nil
		})
		if s.o.SummaryEvery > 0 {
			w.Go(func() error { return s.summaries(wctx) })
		}
		// The feed and the watch stop before the services, so neither reports the services going away.
		err := w.Wait()
		s.counter.finish(s.progress)
		return err
	})
	err := g.Wait()
	switch {
	case errors.Is(err, errStop):
		err = nil
	case err != nil && !serviceFailed:
		// A stream usually breaks because its service died: prefer naming the service if it did.
		select {
		case <-s.stack.Done():
			if exitErr := s.stack.Err(); exitErr != nil {
				err = fmt.Errorf("dev: %w (%v)", describeExit(exitErr), err)
			}
		case <-time.After(serviceExitGrace):
		}
	}
	s.out.summary(s.stats.snapshot(time.Since(s.ready)), true)
	return err
}

// serviceExitGrace bounds how long a broken stream waits for its service's exit to be seen, so that the error
// names the service. The exit is normally seen within milliseconds; a loaded machine can take a second or more.
const serviceExitGrace = 5 * time.Second

// stopWhen returns errStop, which stops the other workers, when ctx ends or --for elapses; nil when wctx ends
// first.
func (s *session) stopWhen(ctx, wctx context.Context) error {
	var forC <-chan time.Time
	if s.o.For > 0 {
		t := time.NewTimer(s.o.For)
		defer t.Stop()
		forC = t.C
	}
	select {
	case <-ctx.Done():
		s.progress("stopping on signal")
		return errStop
	case <-forC:
		s.progress("stopping after %s", s.o.For)
		return errStop
	case <-wctx.Done():
		return nil
	}
}

// summaries prints a summary line every SummaryEvery until ctx ends.
func (s *session) summaries(ctx context.Context) error {
	t := time.NewTicker(s.o.SummaryEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if ctx.Err() != nil {
				return nil // stopping: the final summary follows
			}
			s.out.summary(s.stats.snapshot(time.Since(s.ready)), false)
		}
	}
}

// plaintextEnv clears the Kafka security variables for services on the embedded (plaintext) broker.
func plaintextEnv() []string {
	env := []string{kafkaconn.EnvTLS + "=false"}
	for _, name := range []string{kafkaconn.EnvTLSCAFile, kafkaconn.EnvTLSCertFile, kafkaconn.EnvTLSKeyFile, kafkaconn.EnvTLSServerName,
		kafkaconn.EnvSASLMechanism, kafkaconn.EnvSASLUsername, kafkaconn.EnvSASLPasswordFile, kafkaconn.EnvSASLPassword} {
		env = append(env, name+"=")
	}
	return env
}

// externalTopics checks, on an external cluster, that the brokers answer and accept the credentials, then that
// every Greenwave topic exists, creating the missing ones when create is set; otherwise it names them and how
// to create them.
func externalTopics(ctx context.Context, conn kafkaconn.Conn, names topics.Names, create bool, progress func(string, ...any)) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := conn.Probe(ctx, 10*time.Second); err != nil {
		return err
	}
	specs := topics.Specs(names, 3)
	want := make([]string, len(specs))
	for i, s := range specs {
		want[i] = s.Name
	}
	have, err := topics.Existing(ctx, conn.Client(30*time.Second), want)
	if err != nil {
		if fatal := conn.Classify(err); fatal != nil {
			return fatal
		}
		return fmt.Errorf("brokers %s: %w", strings.Join(conn.Brokers, ","), err)
	}
	var missing []string
	for _, n := range want {
		if _, ok := have[n]; !ok {
			missing = append(missing, n)
		}
	}
	switch {
	case len(missing) == 0:
		return topics.CheckCoPartitioned(specs, have)
	case !create:
		return fmt.Errorf("topics missing on %s: %s: create them with `greenwave topics ensure --brokers %s` (as a user allowed to), or pass --create-topics",
			strings.Join(conn.Brokers, ","), strings.Join(missing, ", "), strings.Join(conn.Brokers, ","))
	}
	progress("creating %d missing topics: %s", len(missing), strings.Join(missing, ", "))
	if err := topics.EnsureTopics(ctx, conn, specs); err != nil {
		if fatal := conn.Classify(err); fatal != nil {
			return fatal
		}
		return err
	}
	return nil
}

// describeExit adds a crashed service's last output to its error, since its log may not be on the screen.
func describeExit(err error) error {
	var ee *stack.ExitError
	if !errors.As(err, &ee) || len(ee.Tail) == 0 {
		return err
	}
	return fmt.Errorf("%w; its last output:\n    %s", err, strings.Join(ee.Tail, "\n    "))
}

// writeState publishes the stack's addresses for the other commands (internal/devstate).
func writeState(path string, brokers []string, addrs map[string]server.Addrs, logFile string) error {
	st := devstate.State{PID: os.Getpid(), Started: time.Now().UTC(), Brokers: brokers, Services: map[string]devstate.Addrs{}, LogFile: logFile}
	for name, a := range addrs {
		st.Services[name] = devstate.Addrs{GRPC: a.GRPC, HTTP: a.HTTP}
	}
	return devstate.Write(path, st)
}
