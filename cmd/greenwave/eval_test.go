package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/cli"
	"github.com/greenwave-city/greenwave/pkg/evaluate"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files of the eval tests")

// TestEvalJSONGolden pins the --json schema and figures of `greenwave eval` on a small canonical fixture
// (testdata/eval, written by gen.py). Regenerate with go test -run TestEvalJSONGolden -update.
func TestEvalJSONGolden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
	}{
		{"eval", []string{"--horizons", "1h,2h", "--warmup", "48h"}},
		{"signals", []string{"--horizons", "1h", "--signals", "--warmup", "48h"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"eval", "--format", "csv", "--topology", "testdata/eval/topology.yaml", "--weather", "testdata/eval/weather.csv", "--json"}, tc.args...)
			args = append(args, "testdata/eval/readings.csv")
			var stdout, stderr bytes.Buffer
			if err := run(context.Background(), args, &stdout, &stderr); err != nil {
				t.Fatalf("eval: %v (stderr %s)", err, stderr.String())
			}
			if n := strings.Count(strings.TrimSpace(stdout.String()), "\n"); n != 0 {
				t.Fatalf("output is %d lines, want exactly one JSON object", n+1)
			}
			var v map[string]any
			if err := json.Unmarshal(stdout.Bytes(), &v); err != nil {
				t.Fatalf("output %q: %v", stdout.String(), err)
			}
			golden := filepath.Join("testdata", "eval", tc.name+".golden.json")
			if *updateGolden {
				if err := os.WriteFile(golden, stdout.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			var w map[string]any
			if err := json.Unmarshal(want, &w); err != nil {
				t.Fatal(err)
			}
			if !sameJSON(v, w) {
				t.Fatalf("output differs from %s (run with -update after checking):\ngot  %s\nwant %s", golden, stdout.Bytes(), want)
			}
		})
	}
}

// TestEvalCleaningCounts checks the fixture's planted faults land under the right names.
func TestEvalCleaningCounts(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"eval", "--format", "csv", "--topology", "testdata/eval/topology.yaml", "--weather", "testdata/eval/weather.csv",
		"--horizons", "1h", "--warmup", "0s", "--json", "testdata/eval/readings.csv"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("eval: %v (%s)", err, stderr.String())
	}
	var out evalJSON
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	c := out.Cleaning
	if c.Readings != 433 || c.Duplicates != 1 || c.Rejected["duplicate_conflict"] != 1 || c.Rejected["out_of_range"] != 1 || c.Rejected["weather_out_of_range"] != 1 || c.Imputed < 2 {
		t.Fatalf("cleaning %+v", c)
	}
}

// TestEvalSamePairsOutput: in the text and the --json output every forecaster of a table — the model, the
// baselines and, on the last 20 %, OLS — has the same n, and the pairs dropped from every row are counted and
// explained; OLS is given all of the model's inputs.
func TestEvalSamePairsOutput(t *testing.T) {
	t.Parallel()
	base := []string{"eval", "--format", "csv", "--topology", "testdata/eval/topology.yaml", "--weather", "testdata/eval/weather.csv",
		"--horizons", "1h,2h", "--warmup", "48h"}
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), append(base, "--json", "testdata/eval/readings.csv"), &stdout, &stderr); err != nil {
		t.Fatalf("eval: %v (%s)", err, stderr.String())
	}
	var out evalJSON
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	for _, h := range out.Horizons {
		for name, m := range h.Baselines {
			if m.N != h.Model.N {
				t.Errorf("%d s: %s n %d, model n %d", h.HorizonS, name, m.N, h.Model.N)
			}
		}
		if h.Dropped == 0 || h.ModelAll.N != h.Model.N+h.Dropped {
			t.Errorf("%d s: dropped %d, model on all pairs n %d, model n %d: want dropped > 0 and all = n + dropped", h.HorizonS, h.Dropped, h.ModelAll.N, h.Model.N)
		}
	}
	ho := out.Holdout
	for name, m := range ho.Baselines {
		if m.N != ho.N || ho.Model.N != ho.N {
			t.Errorf("last 20 %%: %s n %d, model n %d, scored %d", name, m.N, ho.Model.N, ho.N)
		}
	}
	if ho.N+ho.Dropped+ho.BeforeWarmup != ho.Test || len(ho.Inputs) == 0 || len(ho.DroppedColumns) >= len(ho.Inputs) {
		t.Errorf("holdout %+v: want n + dropped + before warm-up = test and the model's inputs", ho)
	}

	stdout.Reset()
	if err := run(context.Background(), append(base, "testdata/eval/readings.csv"), &stdout, &stderr); err != nil {
		t.Fatalf("eval: %v (%s)", err, stderr.String())
	}
	text := stdout.String()
	// Every table row ends with n; within a table (a horizon, or the last 20 %) they must agree.
	ns := map[string]bool{}
	tables := 0
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 5 && (f[0] == "1h0m0s" || f[0] == "2h0m0s") && f[1] == "model":
			tables++
			ns = map[string]bool{f[len(f)-1]: true}
		case len(f) == 5 && slices.Contains(append(slices.Clone(evaluate.OnlineBaselines), evaluate.BaselineOLS), f[0]):
			ns[f[4]] = true
			if len(ns) != 1 {
				t.Errorf("row %q: n differs from the model's in its table %v", line, ns)
			}
		}
	}
	if tables != 3 {
		t.Errorf("%d tables, want 2 horizons and the last 20 %%:\n%s", tables, text)
	}
	for _, want := range []string{"labelled pairs dropped from every row", "no measured target at t+h's local time 7 d before", "on all 46 of the model's inputs"} {
		if !strings.Contains(text, want) {
			t.Errorf("text output lacks %q:\n%s", want, text)
		}
	}
}

func TestEvalUsageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		msg  string
	}{
		{"no file", nil, "no data FILE"},
		{"bad format", []string{"--format", "xml", "x"}, `--format "xml"`},
		{"bad horizon", []string{"--horizons", "1h,soon", "x"}, `"soon"`},
		{"signals need flow", []string{"--signals", "--target", "speed", "x"}, "--signals plans from flow"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), append([]string{"eval"}, tc.args...), &stdout, &stderr)
			var ue *cli.UsageError
			if !errorsAs(err, &ue) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err %v, want a usage error containing %q", err, tc.msg)
			}
		})
	}
}

// sameJSON compares decoded JSON values: the same keys and types everywhere, numbers within 1e-9 relative (the
// figures may differ in the last bits where a platform fuses multiply-adds).
func sameJSON(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			if w, ok := y[k]; !ok || !sameJSON(v, w) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameJSON(x[i], y[i]) {
				return false
			}
		}
		return true
	case float64:
		y, ok := b.(float64)
		return ok && math.Abs(x-y) <= 1e-9*math.Max(math.Abs(x), math.Abs(y))
	default:
		return a == b
	}
}

// TestEvalHorizonsFitTheWindow: without --horizons, eval picks the horizons the trainer would for the data's
// window (1h for the fixture's hourly windows); given horizons that do not fit fail naming --horizons.
func TestEvalHorizonsFitTheWindow(t *testing.T) {
	t.Parallel()
	base := []string{"eval", "--format", "csv", "--topology", "testdata/eval/topology.yaml", "--weather", "testdata/eval/weather.csv", "--warmup", "0s", "--json"}
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), append(base, "testdata/eval/readings.csv"), &stdout, &stderr); err != nil {
		t.Fatalf("eval: %v (%s)", err, stderr.String())
	}
	var out evalJSON
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Horizons) != 1 || out.Horizons[0].HorizonS != 3600 || out.Horizons[0].Model.N == 0 {
		t.Fatalf("auto horizons on hourly data: %+v, want one scored 3600 s horizon", out.Horizons)
	}
	if stderr.Len() != 0 {
		t.Fatalf("a short run printed %q on stderr", stderr.String())
	}
	stdout.Reset()
	err := run(context.Background(), append(base, "--horizons", "15m,1h", "testdata/eval/readings.csv"), &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "--horizons 15m,1h") || !strings.Contains(err.Error(), "3600 s window") {
		t.Fatalf("err %v, want one naming --horizons and the 3600 s window", err)
	}
}

func TestEvalProgress(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	p := newProgress(&buf, 3*4096, time.Nanosecond)
	p.tick(0)
	p.tick(1)
	if buf.Len() != 0 {
		t.Fatalf("progress before any work: %q", buf.String())
	}
	p.tick(4096)
	p.done()
	if got := buf.String(); !strings.Contains(got, "4096 of 12288 records (33 %)") || !strings.Contains(got, "12288 records in") {
		t.Fatalf("progress %q", got)
	}
	var quiet bytes.Buffer
	q := newProgress(&quiet, 3*4096, time.Hour)
	q.tick(4096)
	q.done()
	if quiet.Len() != 0 {
		t.Fatalf("a run shorter than the interval printed %q", quiet.String())
	}
}

// TestEvalTimeZoneFromTopology: eval computes the calendar features in the topology's time_zone, for csv with
// --topology (a zone changes the figures) and for metro and scats, whose built-in or imported topologies carry
// the data's zone; a --topology whose zone differs from the data's is used, with a note on stderr.
func TestEvalTimeZoneFromTopology(t *testing.T) {
	t.Parallel()
	evalJSONOut := func(t *testing.T, args ...string) (string, string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if err := run(context.Background(), append([]string{"eval", "--json", "--warmup", "0s"}, args...), &stdout, &stderr); err != nil {
			t.Fatalf("eval %q: %v (stderr %s)", args, err, stderr.String())
		}
		return stdout.String(), stderr.String()
	}
	withZone := func(t *testing.T, src, zone string) string {
		t.Helper()
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(t.TempDir(), "topology.yaml")
		if err := os.WriteFile(file, append([]byte("time_zone: "+zone+"\n"), b...), 0o644); err != nil {
			t.Fatal(err)
		}
		return file
	}
	t.Run("csv", func(t *testing.T) {
		t.Parallel()
		args := []string{"--format", "csv", "--weather", "testdata/eval/weather.csv", "--horizons", "1h", "testdata/eval/readings.csv"}
		utc, _ := evalJSONOut(t, append([]string{"--topology", withZone(t, "testdata/eval/topology.yaml", "UTC")}, args...)...)
		unset, _ := evalJSONOut(t, append([]string{"--topology", "testdata/eval/topology.yaml"}, args...)...)
		kolkata, note := evalJSONOut(t, append([]string{"--topology", withZone(t, "testdata/eval/topology.yaml", "Asia/Kolkata")}, args...)...)
		if utc != unset {
			t.Error("a topology without time_zone is not evaluated in UTC")
		}
		if kolkata == utc {
			t.Error("the topology's time_zone Asia/Kolkata changed nothing")
		}
		if strings.Contains(note, "note") {
			t.Errorf("csv times carry their offsets, yet eval noted a zone: %s", note)
		}
	})
	t.Run("metro", func(t *testing.T) {
		t.Parallel()
		metro := "../../pkg/dataset/testdata/metro_sample.csv"
		var topo bytes.Buffer
		if err := run(context.Background(), []string{"topology", "import", "--format", "metro"}, &topo, &bytes.Buffer{}); err != nil {
			t.Fatal(err)
		}
		imported := filepath.Join(t.TempDir(), "metro.yaml")
		if err := os.WriteFile(imported, topo.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		builtIn, note := evalJSONOut(t, "--format", "metro", metro)
		fromFile, _ := evalJSONOut(t, "--format", "metro", "--topology", imported, metro)
		if builtIn != fromFile || note != "" {
			t.Errorf("the built-in and the imported metro topology disagree (stderr %q)", note)
		}
		utc := filepath.Join(t.TempDir(), "metro-utc.yaml")
		if err := os.WriteFile(utc, bytes.Replace(topo.Bytes(), []byte("time_zone: America/Chicago"), []byte("time_zone: UTC"), 1), 0o644); err != nil {
			t.Fatal(err)
		}
		_, note = evalJSONOut(t, "--format", "metro", "--topology", utc, metro)
		if !strings.Contains(note, "the topology's time zone UTC differs from the metro data's America/Chicago") {
			t.Errorf("no note of the differing zone; stderr %q", note)
		}
	})
}

// TestEvalDerivesCSVTopology: --format csv without --topology derives the topology from the file, says so in one
// line on stderr, joins the --weather file's one station, and scores exactly as the hand-written fixture topology
// (same intersection, approaches, detectors, lanes and window; its phases play no part without --signals).
func TestEvalDerivesCSVTopology(t *testing.T) {
	t.Parallel()
	args := []string{"eval", "--format", "csv", "--weather", "testdata/eval/weather.csv", "--horizons", "1h", "--warmup", "48h", "--json"}
	var derived, stderr bytes.Buffer
	if err := run(context.Background(), append(args, "testdata/eval/readings.csv"), &derived, &stderr); err != nil {
		t.Fatalf("eval: %v (%s)", err, stderr.String())
	}
	want := "greenwave eval: no --topology: derived 1 intersections from testdata/eval/readings.csv (greenwave topology import)\n"
	if !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr %q, want the line %q", stderr.String(), want)
	}
	var fixture bytes.Buffer
	if err := run(context.Background(), append(args, "--topology", "testdata/eval/topology.yaml", "testdata/eval/readings.csv"), &fixture, io.Discard); err != nil {
		t.Fatal(err)
	}
	var d, f map[string]any
	if err := json.Unmarshal(derived.Bytes(), &d); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(fixture.Bytes(), &f); err != nil {
		t.Fatal(err)
	}
	if !sameJSON(d, f) {
		t.Errorf("derived topology scores differently from the fixture's:\n%s\n%s", derived.Bytes(), fixture.Bytes())
	}
}

// TestEvalSpeedOnly is issue 14's first "done when": `eval --target speed` on a canonical CSV of speed-only
// sensors (empty count and occupancy cells, testdata/evalspeed, written by gen.py) without a topology gives
// model forecasts and baselines on the same pairs, at every horizon. The row with no quantity is skipped as a
// file problem and the impossible speed is rejected out_of_range; no reading is lost for want of a count.
func TestEvalSpeedOnly(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"eval", "--format", "csv", "--target", "speed", "--horizons", "15m,30m,1h", "--warmup", "48h",
		"--json", "testdata/evalspeed/readings.csv"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("eval: %v (%s)", err, stderr.String())
	}
	var out evalJSON
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	c := out.Cleaning
	if c.Readings != 2*8*288-1 || c.Rejected["out_of_range"] != 1 || c.Rejected["file_missing_value"] != 1 || len(c.Rejected) != 2 {
		t.Errorf("cleaning %+v: want every row but the empty one read, it file_missing_value, and one out_of_range", c)
	}
	if len(out.Horizons) != 3 {
		t.Fatalf("%d horizons, want 3", len(out.Horizons))
	}
	for _, h := range out.Horizons {
		if h.Model.N == 0 || !(float64(h.Model.MAE) >= 0) {
			t.Errorf("%d s: model n %d MAE %v, want forecasts", h.HorizonS, h.Model.N, h.Model.MAE)
		}
		for _, name := range evaluate.OnlineBaselines {
			if m, ok := h.Baselines[name]; !ok || m.N != h.Model.N {
				t.Errorf("%d s: baseline %s n %d (present %v), model n %d", h.HorizonS, name, m.N, ok, h.Model.N)
			}
		}
	}
	if ho := out.Holdout; ho.N == 0 || ho.Model.N != ho.N {
		t.Errorf("last 20 %%: %+v, want model forecasts scored", ho)
	}
}

// TestEvalNoNeighbours: --no-neighbours gives the figures of the same topology without upstream links, and the
// links do change them (the upstream features are inputs of the model).
func TestEvalNoNeighbours(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("testdata/eval/topology.yaml")
	if err != nil {
		t.Fatal(err)
	}
	linked := strings.NewReplacer("detectors: [X-N]}", "detectors: [X-N], upstream: [X/E]}",
		"detectors: [X-E]}", "detectors: [X-E], upstream: [X/N]}").Replace(string(b))
	if linked == string(b) {
		t.Fatal("fixture topology changed: no upstream links added")
	}
	linkedFile := filepath.Join(t.TempDir(), "topology.yaml")
	if err := os.WriteFile(linkedFile, []byte(linked), 0o644); err != nil {
		t.Fatal(err)
	}
	out := func(topo string, extra ...string) string {
		t.Helper()
		args := append([]string{"eval", "--format", "csv", "--topology", topo, "--weather", "testdata/eval/weather.csv",
			"--warmup", "0s", "--horizons", "1h", "--json"}, extra...)
		var stdout, stderr bytes.Buffer
		if err := run(context.Background(), append(args, "testdata/eval/readings.csv"), &stdout, &stderr); err != nil {
			t.Fatalf("eval %q: %v (stderr %s)", extra, err, stderr.String())
		}
		return stdout.String()
	}
	unlinked := out("testdata/eval/topology.yaml")
	if got := out(linkedFile, "--no-neighbours"); got != unlinked {
		t.Errorf("--no-neighbours on the linked topology differs from the unlinked topology:\n%s\nwant\n%s", got, unlinked)
	}
	if out(linkedFile) == unlinked {
		t.Error("upstream links changed no figure: the neighbour features reach no model")
	}
}

// TestEvalAdjacency: a canonical CSV without --topology takes its links from --adjacency (the neighbour features
// then reach the model, and stderr says how many references it derived); the flags refuse other inputs.
func TestEvalAdjacency(t *testing.T) {
	t.Parallel()
	edges := filepath.Join(t.TempDir(), "edges.csv")
	if err := os.WriteFile(edges, []byte("from,to\nX-N,X-E\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	eval := func(extra ...string) (string, string, error) {
		args := append([]string{"eval", "--format", "csv", "--weather", "testdata/eval/weather.csv",
			"--warmup", "0s", "--horizons", "1h", "--json"}, extra...)
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), append(args, "testdata/eval/readings.csv"), &stdout, &stderr)
		return stdout.String(), stderr.String(), err
	}
	plain, _, err := eval()
	if err != nil {
		t.Fatal(err)
	}
	linked, stderr, err := eval("--adjacency", edges)
	if err != nil {
		t.Fatalf("--adjacency: %v (stderr %s)", err, stderr)
	}
	if !strings.Contains(stderr, "2 upstream references from "+edges) {
		t.Errorf("stderr does not name the derived links: %s", stderr)
	}
	if linked == plain {
		t.Error("--adjacency changed no figure: the neighbour features reach no model")
	}
	if without, _, err := eval("--adjacency", edges, "--no-neighbours"); err != nil || without != plain {
		t.Errorf("--adjacency with --no-neighbours differs from no links (err %v)", err)
	}
	for _, bad := range [][]string{
		{"--adjacency", edges, "--topology", "testdata/eval/topology.yaml"},
		{"--max-group", "3", "--topology", "testdata/eval/topology.yaml"},
	} {
		if _, _, err := eval(bad...); err == nil || !strings.Contains(err.Error(), "--adjacency and --max-group") {
			t.Errorf("eval %q: error %v, want a usage error naming --adjacency and --max-group", bad, err)
		}
	}
}
