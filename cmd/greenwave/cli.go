package main

import (
	"context"
	"fmt"
	"io"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/cli"
	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/ops"
	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/replay"
)

// command is one subcommand. To add one, write its function and add a row to commands.
type command struct {
	name    string
	summary string // one line for `greenwave help`
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands is the subcommand table, in the order `greenwave help` lists it. The operator commands live in
// internal/ops so that the end-to-end tests can run them in-process.
var commands = []command{
	{name: "dev", summary: "run the whole pipeline locally: embedded Kafka, the five services, simulated sensors", run: runDev},
	{name: "replay", summary: "send a data file (canonical CSV, Metro I-94, SCATS) to a collector, paced on event time", run: replay.Run},
	{name: "topology", summary: "topology import: print the topology YAML for a data set (canonical CSV, SCATS, Metro I-94) or a SUMO network", run: runTopology},
	{name: "fit", summary: "ordinary least squares on NumPy .npy arrays with an 80/20 split (matches scikit-learn)", run: runFit},
	{name: "topics", summary: "create (ensure) or describe the Greenwave Kafka topics", run: ops.Topics},
	{name: "tail", summary: "print a topic's records as JSON lines, decoded (never joins a consumer group)", run: ops.Tail},
	{name: "models", summary: "list or show the trainer's models (gRPC ModelService)", run: ops.Models},
	{name: "plans", summary: "watch or get signal plans (gRPC SignalControlService)", run: ops.Plans},
	{name: "status", summary: "one line per service: readiness, consumer lag and rates (HTTP /readyz and /metrics)", run: ops.Status},
	{name: "ntcip", summary: "write signal-control's plans to NTCIP 1202 field controllers over SNMP (docs/ntcip.md)", run: runNTCIP},
	{name: "sumo", summary: "run a SUMO scenario under SUMO's controllers or Greenwave in the loop, and score it", run: runSumo},
	{name: "eval", summary: "score the cleaner and trainer offline on a data file; --signals compares plan delays", run: runEval},
}

// usagef is cli.Usagef, short for the commands of this package.
func usagef(format string, args ...any) error { return cli.Usagef(format, args...) }

// run dispatches args (without the program name) to a subcommand.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		printUsage(stderr)
		return usagef("no command given")
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(rest) > 0 {
			// `greenwave help dev` is `greenwave dev --help`.
			return run(ctx, []string{rest[0], "--help"}, stdout, stderr)
		}
		printUsage(stdout)
		return nil
	}
	for _, c := range commands {
		if c.name == name {
			return c.run(ctx, rest, stdout, stderr)
		}
	}
	printUsage(stderr)
	return usagef("unknown command %q", name)
}

func printUsage(w io.Writer) {
	fmt.Fprintf(w, "Usage: greenwave COMMAND [flags]\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun `greenwave COMMAND --help` for a command's flags.\n")
}
