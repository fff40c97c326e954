// Command loadtest drives the five Greenwave services as processes (cmd/greenwave/internal/stack) against a real
// Kafka broker (run it inside `deploy/kafka/kafka.sh test --`, which sets KAFKA_BROKERS and the security
// settings) with a generated topology and a gateway of its own, and writes the figures as JSON for
// cmd/greenwave/benchreport. Two modes (docs/performance.md says how each is measured and why):
//
//   - pipeline (`make bench`): readings in real time at a steady rate, short windows; for every plan, the
//     broker's append time of the plan minus that of the reading that closed its window (the pipeline latency,
//     queueing included), with the per-stage split.
//   - load (`make loadtest`): a city of detectors reporting every 10 s, fed as fast as the collector
//     acknowledges; sustained readings/s until the last plan is out, consumer lag of every group and resident
//     memory of every service sampled every second, plotted as SVG.
//
// It is a developer's tool of its own, like benchreport and sumobench, not a `greenwave` subcommand.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/benchfig"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "loadtest: %v\n", err)
		os.Exit(1)
	}
}

// options are the command line.
type options struct {
	mode          string
	binDir        string
	out           string
	plotDir       string
	intersections int
	windowS       int
	intervalS     int
	minutes       float64
	simMinutes    int
	partitions    int
	batch         int
	inFlight      int
	timeout       time.Duration
	rssLimitMB    float64
	serviceEnv    map[string][]string
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.mode, "mode", "", "`pipeline` (latency at a steady real-time load) or load (throughput, lag and memory); required")
	fs.StringVar(&o.binDir, "bin", "bin", "`directory` holding the five service binaries (make build)")
	fs.StringVar(&o.out, "out", "", "`file` for the figures (JSON, read by benchreport --figures); required")
	fs.StringVar(&o.plotDir, "plots", "bench", "`directory` for the load mode's SVG plots and samples CSV")
	fs.IntVar(&o.intersections, "intersections", 0, "intersections of the generated topology (4 detectors each); default 250 (pipeline), 2500 (load)")
	fs.IntVar(&o.windowS, "window", 0, "window_s of every intersection; default 60 (pipeline), 300 (load)")
	fs.IntVar(&o.intervalS, "interval", 10, "seconds between two readings of a detector")
	fs.Float64Var(&o.minutes, "minutes", 4, "pipeline: wall-clock minutes of measured windows (one more is fed first as warm-up)")
	fs.IntVar(&o.simMinutes, "sim-minutes", 20, "load: simulated minutes of readings")
	fs.IntVar(&o.partitions, "partitions", 4, "partitions of the co-partitioned topics")
	fs.IntVar(&o.batch, "batch", 2500, "load: readings per StreamReadings batch")
	fs.IntVar(&o.inFlight, "in-flight", 8, "load: batches awaiting their ack at once")
	fs.Float64Var(&o.rssLimitMB, "rss-limit-mb", 6000, "load: stop the run when a service's resident memory exceeds this many MB (0: no limit)")
	o.serviceEnv = map[string][]string{}
	fs.Func("service-env", "`service:KEY=VALUE` added to one service's environment (repeatable), to measure a setting's effect", func(v string) error {
		svc, kv, ok := strings.Cut(v, ":")
		if !ok || !strings.Contains(kv, "=") {
			return fmt.Errorf("%q: want service:KEY=VALUE", v)
		}
		o.serviceEnv[svc] = append(o.serviceEnv[svc], kv)
		return nil
	})
	fs.DurationVar(&o.timeout, "timeout", 30*time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.out == "" {
		return errors.New("--out is required")
	}
	switch o.mode {
	case "pipeline":
		o.intersections = orDefault(o.intersections, 250)
		o.windowS = orDefault(o.windowS, 60)
	case "load":
		o.intersections = orDefault(o.intersections, 2500)
		o.windowS = orDefault(o.windowS, 300)
	default:
		return fmt.Errorf("--mode %q: want pipeline or load", o.mode)
	}
	if o.windowS%o.intervalS != 0 || o.intervalS <= 0 {
		return fmt.Errorf("--window %d is not a multiple of --interval %d", o.windowS, o.intervalS)
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	loadStart := loadAverage()
	env, err := setup(ctx, o, stderr)
	if err != nil {
		return err
	}
	var fig benchfig.Figures
	if o.mode == "pipeline" {
		fig, err = runPipeline(ctx, env, o, stderr)
	} else {
		fig, err = runLoad(ctx, env, o, stderr)
	}
	if stopErr := env.close(); err == nil && stopErr != nil {
		fmt.Fprintf(stderr, "loadtest: %v\n", stopErr)
	}
	if err != nil {
		return fmt.Errorf("%s (service logs: %s)", err, env.logPath)
	}
	fig.Kind, fig.Date, fig.LoadStart, fig.LoadEnd = o.mode, time.Now().UTC().Format(time.RFC3339), loadStart, loadAverage()
	if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
		return err
	}
	if err := fig.Write(o.out); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "loadtest: wrote %s (service logs: %s)\n", o.out, env.logPath)
	return nil
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// loadAverage is the first three fields of /proc/loadavg, or "unknown".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	var a, b5, c string
	if _, err := fmt.Sscan(string(b), &a, &b5, &c); err != nil {
		return "unknown"
	}
	return a + " " + b5 + " " + c
}
