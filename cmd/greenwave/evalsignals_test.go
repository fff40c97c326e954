package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/cli"
	"github.com/greenwave-city/greenwave/pkg/topology"
)

// TestSignalPlanHorizons: with auto horizons, --signals trains only the auto horizon nearest the plan horizon,
// and every horizon when the intersections' windows disagree on it.
func TestSignalPlanHorizons(t *testing.T) {
	t.Parallel()
	topo := func(windows ...int) topology.Topology {
		var tp topology.Topology
		for _, w := range windows {
			tp.Intersections = append(tp.Intersections, topology.Intersection{WindowS: w})
		}
		return tp
	}
	tests := []struct {
		name string
		topo topology.Topology
		plan time.Duration
		want []time.Duration
	}{
		{"15-minute windows (SCATS)", topo(900, 900), 15 * time.Minute, []time.Duration{15 * time.Minute}},
		{"5-minute windows", topo(300), 15 * time.Minute, []time.Duration{15 * time.Minute}},
		{"hourly windows (Metro)", topo(3600), 15 * time.Minute, []time.Duration{time.Hour}},
		{"a 40-minute plan horizon", topo(900), 40 * time.Minute, []time.Duration{30 * time.Minute}},
		{"windows giving the same horizon", topo(300, 900), 15 * time.Minute, []time.Duration{15 * time.Minute}},
		{"windows giving different horizons", topo(900, 3600), 15 * time.Minute, nil},
		{"no intersection", topo(), 15 * time.Minute, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := signalPlanHorizons(tc.topo, tc.plan); !slices.Equal(got, tc.want) {
				t.Fatalf("signalPlanHorizons = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestEvalWorkers: --workers changes nothing in the output (evaluate's TestWorkersSameReport checks every
// field of the report), a run that cannot have a worker is a usage error, and --cpuprofile writes a profile.
func TestEvalWorkers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
	}{
		{"signals text", []string{"--format", "csv", "--topology", "testdata/eval/topology.yaml", "--weather", "testdata/eval/weather.csv",
			"--horizons", "1h", "--signals", "--warmup", "48h", "testdata/eval/readings.csv"}},
		// Two sensors, derived as two intersections: two workers.
		{"two intersections json", []string{"--format", "csv", "--target", "speed", "--horizons", "15m", "--warmup", "48h",
			"--clean-report", "--json", "testdata/evalspeed/readings.csv"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := func(workers string) string {
				var stdout, stderr bytes.Buffer
				args := append([]string{"eval", "--workers", workers}, tc.args...)
				if err := run(context.Background(), args, &stdout, &stderr); err != nil {
					t.Fatalf("eval --workers %s: %v (%s)", workers, err, stderr.String())
				}
				return stdout.String()
			}
			if one, four := out("1"), out("4"); one != four {
				t.Errorf("--workers 4 output differs from --workers 1:\n%s\n%s", four, one)
			}
		})
	}
	t.Run("no workers", func(t *testing.T) {
		t.Parallel()
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), []string{"eval", "--workers", "0", "testdata/eval/readings.csv"}, &stdout, &stderr)
		if _, ok := errors.AsType[*cli.UsageError](err); !ok {
			t.Fatalf("--workers 0: error %v, want a usage error", err)
		}
	})
	t.Run("cpuprofile", func(t *testing.T) {
		t.Parallel()
		if f := flag.Lookup("test.cpuprofile"); f != nil && f.Value.String() != "" {
			t.Skip("go test is profiling the process: one CPU profile at a time")
		}
		prof := filepath.Join(t.TempDir(), "eval.pprof")
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), []string{"eval", "--format", "csv", "--topology", "testdata/eval/topology.yaml",
			"--horizons", "1h", "--warmup", "48h", "--cpuprofile", prof, "testdata/eval/readings.csv"}, &stdout, &stderr)
		if err != nil {
			t.Fatalf("eval: %v (%s)", err, stderr.String())
		}
		if fi, err := os.Stat(prof); err != nil || fi.Size() == 0 {
			t.Fatalf("--cpuprofile wrote no profile: %v", err)
		}
	})
}
