package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/cli"
	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/devstate"
	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/stack"
	"github.com/greenwave-city/greenwave/pkg/server"
	"github.com/greenwave-city/greenwave/pkg/sim"
	"github.com/greenwave-city/greenwave/pkg/topics"
	"github.com/greenwave-city/greenwave/pkg/topology"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

const devSynopsis = "[flags]"

const devDescription = `
Runs the whole pipeline on this machine: an in-process Kafka broker (kfake) with the Greenwave topics, the five
services (collector, cleaner, trainer, predictor, signalcontrol) built from this checkout and run as child
processes, the built-in gateway simulator feeding the collector, and the signal plans as they are issued.

Steps: build the services (go build into the user cache dir; set GREENWAVE_BIN_DIR to use prebuilt binaries
instead), start the broker and create the topics (3 partitions; the broker keeps its log in a fresh directory
under ~/.cache/greenwave/dev-broker, removed on exit, and applies the topics' retention and compaction every 10 s,
so its memory stays flat), start the services (LOG_FORMAT=console,
COLLECTOR_ALLOW_ANONYMOUS=true, COLLECTOR_MAX_AGE large enough for historical replays), wait until every /readyz answers 200, then feed readings and print plans until
--for elapses (counted from readiness) or Ctrl-C / SIGTERM arrives. Stopping takes at most about 10 s (services
get SIGTERM, then SIGKILL after 8 s); a second Ctrl-C ends greenwave at once, and the services die with it.

Addresses. Once ready, dev writes the broker and every service's gRPC and HTTP address to --state-file
(default <user cache dir>/greenwave/dev.json, or $GREENWAVE_DEV_FILE) and removes it on exit. models, plans,
tail, topics, status and replay use them when no flag or environment variable names an address, so they work
against the running dev stack as they are.

Simulated time. The simulator starts --backfill before now (truncated to the hour) and runs --speed times faster
than the wall clock, one batch per simulated minute (IntervalS 60), over one CollectorService.StreamReadings
stream with at most 16 batches awaiting their ack. A minute is sent only once it is over on the wall clock, so
simulated time never passes now: after catching up (72 h at 600x take 7.2 min) the feed runs in real time.

Output. Service logs, prefixed "name | ", go to --log-file, and also to stderr with --logs; stdout carries only
greenwave's own lines:
  human (default): a ready block with the broker and service addresses; one line per plan,
    plan I-100 @2026-11-26T07:35Z cycle 86s  NS 42s EW 26s  predictive: <reason_detail>
    ("[initial]" marks the current plans sent when the watch starts); a summary line every --summary.
  --json: one JSON object per line, each with an "event" field:
    {"event":"ready","broker":"host:port","services":{"collector":{"grpc":"…","http":"…"},…},"log_file":"…"}
        always the first line;
    {"event":"plan","initial":false,"coalesced":0,"plan":{…}}  the SignalPlan in protojson with proto field
        names (intersection_id, valid_from, cycle_s, phases, reason, reason_detail, …);
    {"event":"summary","final":false,"uptime_s":…,"sim_time":"…","batches_sent":…,"batches_acked":…,
        "readings_sent":…,"readings_accepted":…,"weather_sent":…,"weather_accepted":…,
        "rejected":{"<reason>":n},"plans":{"<reason>":n}}  every --summary, and once more with
        "final":true when stopping. Plan counts are read from the plans topic (every plan published,
        once), not from the plan lines, which come from WatchPlans (current plans first, and a stream that
        may coalesce behind a slow terminal).
  Progress and errors go to stderr as text.

Exit status: 0 after --for or a signal with every service stopping cleanly; 1 when a service exits unexpectedly
(the message names it and quotes its last output), fails to become ready, or does not stop on SIGTERM; 2 for a
usage error. Run from make or go run on a terminal, dev moves into a process group of its own and takes the
terminal's foreground, so Ctrl-C reaches only it and "make run" exits with its status (0) rather than being
killed by the same SIGINT; Ctrl-Z is ignored meanwhile.`

// devOptions are the flags of `greenwave dev`.
type devOptions struct {
	topology     string
	brokerPort   int
	json         bool
	sample       bool
	speed        cli.Speed
	backfill     time.Duration
	seed         uint64
	forDur       time.Duration
	logs         bool
	logFile      string
	logLevel     string
	summaryEvery time.Duration
	readyTimeout time.Duration
	stateFile    string
}

func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o := devOptions{speed: 600}
	fs := cli.NewFlagSet("dev", devSynopsis, devDescription, stderr)
	fs.StringVar(&o.topology, "topology", "", "intersection topology file (default config/topology.yaml in the repository root)")
	fs.IntVar(&o.brokerPort, "broker-port", 0, "port of the embedded Kafka broker on 127.0.0.1 (0 picks a free one)")
	fs.BoolVar(&o.json, "json", false, "print JSON lines on stdout instead of text (see Output)")
	fs.BoolVar(&o.sample, "sample", true, "feed the collector from the built-in simulator (--sample=false: start the stack only)")
	fs.Var(&o.speed, "speed", `simulated seconds per wall-clock second (600: 10 simulated minutes a second), or "max"`)
	fs.DurationVar(&o.backfill, "backfill", 72*time.Hour, "how far before now simulated time starts (truncated to the hour)")
	fs.Uint64Var(&o.seed, "seed", 1, "simulator seed")
	fs.DurationVar(&o.forDur, "for", 0, "stop by itself this long after the services are ready (0: run until interrupted)")
	fs.BoolVar(&o.logs, "logs", false, "also copy the service logs to stderr")
	fs.StringVar(&o.logFile, "log-file", filepath.Join(os.TempDir(), "greenwave-dev.log"), "file the service logs are written to (truncated at start)")
	fs.StringVar(&o.logLevel, "log-level", "info", "LOG_LEVEL of the services")
	fs.DurationVar(&o.summaryEvery, "summary", 10*time.Second, "interval of the summary line (0: none but the final one)")
	fs.DurationVar(&o.readyTimeout, "ready-timeout", 2*time.Minute, "how long the services may take to become ready")
	fs.StringVar(&o.stateFile, "state-file", devstate.Path(os.LookupEnv), "where the addresses are written for the other commands while dev runs (\"\": nowhere; default $"+devstate.EnvFile+", else the user cache dir)")
	if err := cli.ParseFlags(fs, args); err != nil {
		return err
	}
	if o.backfill < 0 || o.forDur < 0 || o.summaryEvery < 0 || o.readyTimeout <= 0 {
		return usagef("dev: --backfill, --for and --summary must not be negative, --ready-timeout must be positive")
	}
	if o.brokerPort < 0 || o.brokerPort > 65535 {
		return usagef("dev: --broker-port %d out of range", o.brokerPort)
	}
	return dev(ctx, o, stdout, stderr)
}

// dev runs the embedded stack. An interrupt (ctx ending) is a normal way to stop and returns nil when every
// service stops cleanly.
func dev(ctx context.Context, o devOptions, stdout, stderr io.Writer) (err error) {
	started := time.Now()
	out := newPrinter(stdout, o.json)
	progress := func(format string, args ...any) { fmt.Fprintf(stderr, "greenwave dev: "+format+"\n", args...) }
	interrupted := func(err error) error {
		if ctx.Err() != nil {
			progress("interrupted")
			return nil
		}
		return err
	}

	root, rootErr := stack.FindRepoRoot(".")
	if o.topology == "" {
		if rootErr != nil {
			return fmt.Errorf("dev: --topology not given and %w", rootErr)
		}
		o.topology = filepath.Join(root, "config", "topology.yaml")
	}
	topo, err := topology.Load(o.topology)
	if err != nil {
		return fmt.Errorf("dev: load topology %s: %w", o.topology, err)
	}

	logFile, err := os.Create(o.logFile)
	if err != nil {
		return fmt.Errorf("dev: open log file: %w", err)
	}
	defer logFile.Close()
	var logs io.Writer = logFile
	if o.logs {
		logs = io.MultiWriter(logFile, stderr)
	}

	var binDir string
	if os.Getenv(stack.EnvBinDir) == "" {
		if rootErr != nil {
			return fmt.Errorf("dev: %w", rootErr)
		}
		progress("building services in %s", root)
	}
	binDir, err = stack.Binaries(ctx, root)
	if err != nil {
		return interrupted(fmt.Errorf("dev: %w", err))
	}

	broker, err := stack.StartBroker(stack.BrokerConfig{Port: o.brokerPort})
	if err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	defer func() {
		if closeErr := broker.Close(); closeErr != nil && err == nil {
			err = fmt.Errorf("dev: %w", closeErr)
		}
	}()
	brokers := broker.Addrs()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = topics.EnsureTopics(tctx, brokers, topics.Specs(topics.DefaultNames(""), 3))
	cancel()
	// EnsureTopics talks through kafka-go's default transport, which keeps its connections pooled for good.
	if t, ok := kafka.DefaultTransport.(*kafka.Transport); ok {
		t.CloseIdleConnections()
	}
	if err != nil {
		return interrupted(fmt.Errorf("dev: %w", err))
	}
	progress("broker %s up (its log in %s), topics created; starting services (logs: %s)", brokers[0], broker.Dir(), o.logFile)

	st, err := stack.Start(ctx, stack.Config{
		Brokers:      brokers,
		TopologyFile: o.topology,
		BinDir:       binDir,
		// Development only: anonymous gateways, and no backfill horizon so `greenwave replay` of historical data sets works.
		ExtraEnv:     map[string][]string{"collector": {"COLLECTOR_ALLOW_ANONYMOUS=true", "COLLECTOR_MAX_AGE=876000h"}},
		Stdout:       logs,
		LogFormat:    "console",
		LogLevel:     o.logLevel,
		Dir:          root,
		ReadyTimeout: o.readyTimeout,
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
	if stateFile := o.stateFile; stateFile != "" {
		if err := writeDevState(stateFile, brokers, addrs, o.logFile); err != nil {
			progress("%v (other commands will need --brokers/--addr)", err)
		} else {
			defer func() { _ = devstate.Remove(stateFile, os.Getpid()) }()
			progress("addresses written to %s for the other greenwave commands", stateFile)
		}
	}
	out.ready(brokers[0], st.Services(), addrs, o.logFile, time.Since(started))
	ready := time.Now()

	runCtx, stopRun := context.WithCancel(context.Background())
	defer stopRun()
	stats := newStats()
	failed := make(chan error, 3)
	// Plan counts come from the plans topic; the plan lines from the WatchPlans stream.
	stopCounting, err := startPlanCounter(ctx, brokers, topics.DefaultNames("").Plans, stats, failed, progress)
	if err != nil {
		return interrupted(fmt.Errorf("dev: %w", err))
	}
	defer stopCounting(false)
	finished := make(chan struct{}, 2)
	workers := 0

	conn := func(name string) (*grpc.ClientConn, error) {
		c, err := grpc.NewClient(addrs[name].GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, fmt.Errorf("dev: dial %s: %w", name, err)
		}
		return c, nil
	}
	if o.sample {
		start := time.Now().Add(-o.backfill).Truncate(time.Hour)
		simulator, err := sim.New(topo, sim.Config{Seed: o.seed, Start: start, IntervalS: 60})
		if err != nil {
			return fmt.Errorf("dev: %w", err)
		}
		cc, err := conn("collector")
		if err != nil {
			return err
		}
		defer cc.Close()
		f := &feeder{
			client: greenwavev1.NewCollectorServiceClient(cc), sim: simulator, speed: float64(o.speed),
			interval: 60 * time.Second, stats: stats, now: time.Now,
		}
		if !o.json {
			pace := o.speed.String() + "x"
			if o.speed == 0 {
				pace = "full speed"
			}
			out.text(fmt.Sprintf("feeding simulated sensors from %s at %s (seed %d)\n", start.UTC().Format(planTime), pace, o.seed))
		}
		workers++
		go func() {
			defer func() { finished <- struct{}{} }()
			if err := f.run(runCtx); err != nil {
				failed <- fmt.Errorf("dev: sample feed: %w", err)
			}
		}()
	}
	cc, err := conn("signalcontrol")
	if err != nil {
		return err
	}
	defer cc.Close()
	workers++
	go func() {
		defer func() { finished <- struct{}{} }()
		if err := watchPlans(runCtx, greenwavev1.NewSignalControlServiceClient(cc), out); err != nil {
			failed <- fmt.Errorf("dev: %w", err)
		}
	}()

	var forC <-chan time.Time
	if o.forDur > 0 {
		t := time.NewTimer(o.forDur)
		defer t.Stop()
		forC = t.C
	}
	var tickC <-chan time.Time
	if o.summaryEvery > 0 {
		t := time.NewTicker(o.summaryEvery)
		defer t.Stop()
		tickC = t.C
	}
	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			progress("stopping on signal")
			break loop
		case <-forC:
			progress("stopping after %s", o.forDur)
			break loop
		case <-st.Done():
			runErr = fmt.Errorf("dev: %w", describeExit(st.Err()))
			break loop
		case err := <-failed:
			// A stream usually breaks because its service died: prefer naming the service if it did.
			runErr = err
			select {
			case <-st.Done():
				if exitErr := st.Err(); exitErr != nil {
					runErr = fmt.Errorf("dev: %w (%v)", describeExit(exitErr), err)
				}
			case <-time.After(time.Second):
			}
			break loop
		case <-tickC:
			out.summary(stats.snapshot(time.Since(ready)), false)
		}
	}
	// Stop the feed and the watch before the services, so neither reports the services going away.
	stopRun()
	for range workers {
		<-finished
	}
	stopCounting(true)
	out.summary(stats.snapshot(time.Since(ready)), true)
	return runErr
}

// describeExit adds a crashed service's last output to its error, since its log may not be on the screen.
func describeExit(err error) error {
	var ee *stack.ExitError
	if !errors.As(err, &ee) || len(ee.Tail) == 0 {
		return err
	}
	return fmt.Errorf("%w; its last output:\n    %s", err, strings.Join(ee.Tail, "\n    "))
}

// writeDevState publishes the stack's addresses for the other commands (internal/devstate).
func writeDevState(path string, brokers []string, addrs map[string]server.Addrs, logFile string) error {
	st := devstate.State{PID: os.Getpid(), Started: time.Now().UTC(), Brokers: brokers, Services: map[string]devstate.Addrs{}, LogFile: logFile}
	for name, a := range addrs {
		st.Services[name] = devstate.Addrs{GRPC: a.GRPC, HTTP: a.HTTP}
	}
	return devstate.Write(path, st)
}
