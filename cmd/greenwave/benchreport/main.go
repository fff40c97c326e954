// Command benchreport is the last step of `make bench`: it reads the `go test -bench -benchmem` output of every
// benchmark (golang.org/x/perf/benchfmt, custom b.ReportMetric units included) and the wall time of
// `greenwave eval --signals`, and writes bench/report.json (a list of rows: name, value, unit, baseline_name,
// baseline_value, ratio, setup, aim, met) and bench/report.md (the same as a table, with the machine, Go version,
// date and load average). It is a developer's tool of its own, like sumobench, not a `greenwave` subcommand: it
// needs a checkout and writes into it. Which benchmark metric makes which row is the table specs in report.go;
// a row whose benchmark is missing from the input is an error, so a report never silently loses a figure.
//
// Rows measured outside `go test` — the pipeline latency and the load test of cmd/greenwave/loadtest — come in
// as --figures files (JSON) and replace the rows of the same name (the "not measured" placeholders). With
// --merge, benchreport builds nothing from benchmark output: it puts the --figures rows into the existing report
// (report.json, and machine.json, which it writes beside it), as `make loadtest` does.
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
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/benchfig"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "benchreport: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("benchreport", flag.ContinueOnError)
	fs.SetOutput(stderr)
	in := fs.String("bench", "", "`file` holding the go test -bench output of every benchmark (required)")
	evalS := fs.Float64("eval-seconds", -1, "wall time in `seconds` of greenwave eval --signals --format scats (required)")
	out := fs.String("out", "bench", "`directory` for report.json and report.md")
	note := fs.String("note", "", "a `sentence` on the conditions of the run, written into report.md")
	loadStart := fs.String("load-start", "", "the load average when the run started (/proc/loadavg's first three fields)")
	readme := fs.String("readme", "", "`file` whose bench:begin … bench:end block is rewritten with the key rows (none: leave it)")
	var figFiles figuresFlag
	fs.Var(&figFiles, "figures", "`file` of rows measured by cmd/greenwave/loadtest (JSON) to put into the report; repeatable")
	merge := fs.Bool("merge", false, "put the --figures rows into the existing report (OUT/report.json and OUT/machine.json) instead of building it from --bench")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var figs []benchfig.Figures
	for _, name := range figFiles {
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("open figures: %w", err)
		}
		fg, err := ParseFigures(f, name)
		f.Close()
		if err != nil {
			return err
		}
		figs = append(figs, fg)
	}
	var rows []Row
	var m Machine
	if *merge {
		if len(figs) == 0 {
			return fmt.Errorf("--merge needs --figures")
		}
		var err error
		if rows, m, err = readReport(*out); err != nil {
			return err
		}
	} else {
		if *in == "" || *evalS < 0 {
			return fmt.Errorf("--bench and --eval-seconds are required")
		}
		f, err := os.Open(*in)
		if err != nil {
			return fmt.Errorf("open bench output: %w", err)
		}
		defer f.Close()
		res, err := Parse(f, *in)
		if err != nil {
			return err
		}
		if rows, err = Build(res, map[string]float64{"eval_signals_scats_s": *evalS}); err != nil {
			return fmt.Errorf("%s: %w", *in, err)
		}
		m = Machine{CPU: cpuModel(), Cores: runtime.NumCPU(), GoVersion: runtime.Version(),
			Date: time.Now().UTC().Format(time.RFC3339), LoadAverage: loadAverage(), LoadAverageStart: *loadStart,
			Commit: commit(ctx), Note: *note}
	}
	rows = Merge(rows, figs...)
	js, err := json.MarshalIndent(rows, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", *out, err)
	}
	mj, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode machine: %w", err)
	}
	for name, data := range map[string][]byte{"report.json": append(js, '\n'), "report.md": Markdown(m, rows), "machine.json": append(mj, '\n')} {
		if err := os.WriteFile(filepath.Join(*out, name), data, 0o644); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	}
	if *readme != "" {
		doc, err := os.ReadFile(*readme)
		if err != nil {
			return fmt.Errorf("read readme: %w", err)
		}
		if doc, err = Quote(doc, m, rows); err != nil {
			return fmt.Errorf("%s: %w", *readme, err)
		}
		if err := os.WriteFile(*readme, doc, 0o644); err != nil {
			return fmt.Errorf("write readme: %w", err)
		}
	}
	fmt.Fprintf(stderr, "benchreport: wrote %s and %s\n", filepath.Join(*out, "report.json"), filepath.Join(*out, "report.md"))
	return nil
}

// readReport reads the rows (report.json) and the machine (machine.json) of the report in dir, for --merge.
func readReport(dir string) ([]Row, Machine, error) {
	var rows []Row
	var m Machine
	for name, v := range map[string]any{"report.json": &rows, "machine.json": &m} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, Machine{}, fmt.Errorf("read the report to merge into (run make bench first): %w", err)
		}
		if err := decodeStrict(b, v); err != nil {
			return nil, Machine{}, fmt.Errorf("%s: %w", filepath.Join(dir, name), err)
		}
	}
	return rows, m, nil
}

// cpuModel is the first "model name" of /proc/cpuinfo, or GOARCH where there is none.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				return strings.TrimSpace(v)
			}
		}
	}
	return runtime.GOARCH
}

// loadAverage is the first three fields of /proc/loadavg, or "unknown".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}

// commit is the checkout's short commit, with "+changes" when the tree differs from it; "" without git.
func commit(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, "git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return ""
	}
	c := string(bytes.TrimSpace(out))
	if st, err := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
		c += "+changes"
	}
	return c
}
