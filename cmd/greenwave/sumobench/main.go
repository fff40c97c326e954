// Command sumobench is `make sumo-bench`: it runs `greenwave sumo --json` with every controller of
// sumo.Controllers, and SUMO's actuated controller at Greenwave's 2-s gap-out, on every scenario of deploy/sumo,
// and writes the results as JSON, a Markdown table and a bar chart of time loss (docs/sumo.md, "Bench"). It is a
// program of its own, not a `greenwave sumo` subcommand, because it is a developer's tool: it needs a checkout
// (the scenarios, git for the commit, bin/ for the services) and writes into docs/, which an operator's CLI never
// should; each run is a separate `greenwave sumo` process, exactly as a person would run it, so one run's
// process-wide state cannot leak into the next.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/sumo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "sumobench: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("sumobench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bin := fs.String("greenwave", "bin/greenwave", "the greenwave `binary` to run (make build)")
	scenarios := fs.String("scenarios", "deploy/sumo", "`directory` whose subdirectories are the scenarios")
	out := fs.String("out", "docs/sumo-bench", "`directory` for results.json, results.md and time-loss.svg")
	seedList := fs.String("seeds", "42,7,11", "comma-separated SUMO `seeds`: every controller runs with each, results are averaged")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	dirs, err := scenarioDirs(*scenarios)
	if err != nil {
		return err
	}
	seeds, err := parseSeeds(*seedList)
	if err != nil {
		return err
	}
	b := Bench{Commit: commit(ctx), Date: time.Now().UTC().Format(time.RFC3339), SUMOVersion: sumoVersion(ctx), Seeds: seeds}
	for _, dir := range dirs {
		for _, v := range variants() {
			var runs []Run
			for _, seed := range seeds {
				run, err := benchOne(ctx, *bin, dir, v, seed, stderr)
				if err != nil {
					return err
				}
				runs = append(runs, run)
			}
			b.Runs = append(b.Runs, runs...)
			b.Results = append(b.Results, Mean(runs))
		}
	}
	if err := b.WriteFiles(*out); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "sumobench: wrote %s\n", strings.Join([]string{
		filepath.Join(*out, FileJSON), filepath.Join(*out, FileMarkdown), filepath.Join(*out, FilePlot)}, ", "))
	return nil
}

// scenarioDirs lists the subdirectories of dir that hold a SUMO network, in name order.
func scenarioDirs(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("scenarios: %w", err)
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if nets, _ := filepath.Glob(filepath.Join(dir, e.Name(), "*.net.xml")); len(nets) > 0 {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("scenarios: no directory with a .net.xml in %s", dir)
	}
	slices.Sort(out)
	return out, nil
}

// timedOut finds the loop's count of windows whose plans timed out in greenwave sumo's stderr.
var timedOut = regexp.MustCompile(`(\d+) windows timed out`)

// benchOne runs one variant on one scenario with one seed, and says so on stderr.
func benchOne(ctx context.Context, bin, dir string, v variant, seed int, stderr io.Writer) (Run, error) {
	start := time.Now()
	res, log, err := runOne(ctx, bin, dir, v.controller, append(v.flags, "--seed", strconv.Itoa(seed))...)
	if err != nil {
		return Run{}, err
	}
	res.Controller = v.name
	if m := timedOut.FindStringSubmatch(log); m != nil && m[1] != "0" {
		// The run then depends on the machine's speed (docs/sumo.md, lock-step).
		fmt.Fprintf(stderr, "sumobench: warning: %s on %s, seed %d: %s windows timed out; the result is not reproducible\n", v.name, dir, seed, m[1])
	}
	fmt.Fprintf(stderr, "sumobench: %-14s %-15s seed %-3d time loss %6.1f s, %d/%d completed (%.1f s)\n",
		res.Scenario, res.Controller, seed, res.TimeLossS, res.Completed, res.Inserted, time.Since(start).Seconds())
	return Run{Seed: seed, Result: res}, nil
}

// parseSeeds reads --seeds: non-negative integers, comma-separated, at least one.
func parseSeeds(list string) ([]int, error) {
	var seeds []int
	for _, f := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("--seeds %q: want non-negative integers separated by commas", list)
		}
		seeds = append(seeds, n)
	}
	return seeds, nil
}

// variant is one column of the bench: a controller, with flags for a tuned baseline.
type variant struct {
	name, controller string
	flags            []string
}

// variants are every controller of sumo.Controllers, then SUMO's actuated controller at Greenwave's gap-out
// (2 s, the saturation headway at 1 800 veh/h): the strongest honest baseline, since a shorter gap-out helps an
// actuated controller as much as it helps Greenwave's plans.
func variants() []variant {
	var out []variant
	for _, c := range sumo.Controllers {
		out = append(out, variant{name: c, controller: c})
	}
	return append(out, variant{name: actuatedGap2, controller: sumo.Actuated, flags: []string{"--max-gap", "2s"}})
}

// actuatedGap2 names SUMO's actuated controller run with --max-gap 2s in the results.
const actuatedGap2 = "actuated_gap2s"

// runOne runs `greenwave sumo --json` and decodes the last line of its stdout; log is its stderr.
func runOne(ctx context.Context, bin, dir, controller string, flags ...string) (res sumo.Result, log string, err error) {
	var stdout, stderr bytes.Buffer
	args := append([]string{"sumo", "--scenario", dir, "--controller", controller, "--json"}, flags...)
	cmd := exec.CommandContext(ctx, bin, args...)
	// Ctrl-C interrupts the run the way a person's would, so it stops SUMO and its stack itself; kill only if
	// it has not within the stack's shutdown time.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 30 * time.Second
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return res, "", fmt.Errorf("%s on %s: %w\n%s", controller, dir, err, tail(stderr.String(), 20))
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		return res, "", fmt.Errorf("%s on %s: last line %q: %w", controller, dir, lines[len(lines)-1], err)
	}
	return res, stderr.String(), nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// commit is the checkout's short commit, "-dirty" when files other than the bench's output differ from it.
func commit(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, "git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	status, err := exec.CommandContext(ctx, "git", "status", "--porcelain", "--", ".", ":!docs/sumo-bench").Output()
	if err == nil && len(bytes.TrimSpace(status)) > 0 {
		c += "-dirty"
	}
	return c
}

// sumoVersion is what `sumo --version` says on its first line ("Eclipse SUMO sumo Version 1.15.0"), as "1.15.0".
func sumoVersion(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, "sumo", "--version").Output()
	if err != nil && len(out) == 0 {
		return "unknown"
	}
	first, _, _ := strings.Cut(string(out), "\n")
	if _, v, ok := strings.Cut(first, "Version "); ok {
		return strings.TrimSpace(v)
	}
	return strings.TrimSpace(first)
}
