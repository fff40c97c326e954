package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// command is one subcommand. To add one, write its function and add a row to commands.
type command struct {
	name    string
	summary string // one line for `greenwave help`
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands is the subcommand table, in the order `greenwave help` lists it.
var commands = []command{
	{name: "dev", summary: "run the whole pipeline locally: embedded Kafka, the five services, simulated sensors", run: runDev},
	{name: "replay", summary: "send a data file (canonical CSV, Metro I-94, SCATS) to a collector, paced on event time", run: runReplay},
	{name: "topology", summary: "topology import: print the topology YAML for a data set (SCATS, Metro I-94)", run: runTopology},
	{name: "fit", summary: "ordinary least squares on NumPy .npy arrays with an 80/20 split (matches scikit-learn)", run: runFit},
	{name: "topics", summary: "create (ensure) or describe the Greenwave Kafka topics", run: runTopics},
	{name: "tail", summary: "print a topic's records as JSON lines, decoded (never joins a consumer group)", run: runTail},
	{name: "models", summary: "list or show the trainer's models (gRPC ModelService)", run: runModels},
	{name: "plans", summary: "watch or get signal plans (gRPC SignalControlService)", run: runPlans},
	{name: "status", summary: "one line per service: readiness, consumer lag and rates (HTTP /readyz and /metrics)", run: runStatus},
	{name: "eval", summary: "score the cleaner and trainer offline on a data file; --signals compares plan delays", run: runEval},
}

// usageError is a command-line mistake; it exits with status 2 after the message.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{msg: fmt.Sprintf(format, args...)} }

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

// newFlagSet returns a FlagSet for a subcommand whose --help prints usage (the synopsis line, a description and
// the flags) to stderr. Use parseFlags with it.
func newFlagSet(name, synopsis, description string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: greenwave %s %s\n\n%s\n\nFlags:\n", name, synopsis, strings.TrimSpace(description))
		fs.SetOutput(stderr)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return fs
}

// parseFlags parses args into fs. --help prints the usage and yields flag.ErrHelp; a mistake yields a usage
// error that points at --help instead of printing the whole usage. Positional arguments are refused.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := parseFlagsAllowArgs(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("%s: unexpected arguments %q (see greenwave %s --help)", fs.Name(), fs.Args(), fs.Name())
	}
	return nil
}

// parseFlagsAllowArgs is parseFlags for a command that takes positional arguments: they are left in fs.Args().
func parseFlagsAllowArgs(fs *flag.FlagSet, args []string) error {
	usage := fs.Usage
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.Usage = usage
	switch {
	case errors.Is(err, flag.ErrHelp):
		usage()
		return err
	case err != nil:
		return usagef("%s: %v (see greenwave %s --help)", fs.Name(), err, fs.Name())
	}
	return nil
}

// exitCode reports err on stderr and maps it to the process exit status: 0 for success and --help, 2 for a
// usage error, 1 otherwise.
func exitCode(err error, stderr io.Writer) int {
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "greenwave: %v\n", err)
		return 2
	default:
		fmt.Fprintf(stderr, "greenwave: %v\n", err)
		return 1
	}
}
