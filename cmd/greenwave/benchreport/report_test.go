package main

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
)

// sampleOutput is go test output of every benchmark the report reads, as make bench concatenates it.
const sampleOutput = `goos: linux
goarch: amd64
pkg: github.com/greenwave-city/greenwave/pkg/regression
cpu: Test CPU
BenchmarkRLSUpdate16 	 1000	 500 ns/op	 2000000 updates/s	 0 B/op	 0 allocs/op
BenchmarkRLSUpdate16 	 1000	 500 ns/op	 1000000 updates/s	 0 B/op	 0 allocs/op
BenchmarkRLSUpdate16 	 1000	 500 ns/op	 900000 updates/s	 0 B/op	 0 allocs/op
BenchmarkRLSUpdate32 	 1000	 1500 ns/op	 600000 updates/s	 0 B/op	 0 allocs/op
PASS
ok  	github.com/greenwave-city/greenwave/pkg/regression	3.0s
pkg: github.com/greenwave-city/greenwave/pkg/train
BenchmarkLearnerApply 	 100	 88000 ns/op	 11000 frames/s
BenchmarkRLSUpdateDeployed 	 100	 1800 ns/op	 42 inputs	 200000 updates/s
BenchmarkLearnerMemory 	 1	 0 ns/op	 400000 heap-bytes/approach
pkg: github.com/greenwave-city/greenwave/pkg/clean
BenchmarkCleanReadings 	 100	 1300 ns/op	 700000 readings/s
BenchmarkCleanCity 	 100	 1000 ns/op	 1000000 readings/s	 1 weather-share	 0.99 upstream-share
BenchmarkSubscribeFanout-2 	 5000	 50000 bare-delivered-msgs/s	 0.6 hub-coalesced-share	 30000 hub-delivered-msgs/s	 0.6 hub/bare
BenchmarkPredictionLatency-2 	 5000	 0 ns/op	 2 p50-ms	 9 p99-ms	 9990 vectors/s
BenchmarkModelMemory-2 	 1	 0 ns/op	 1.8e9 heap-bytes	 180000 heap-bytes/model	 10002 models	 75000 snapshot-bytes/model
BenchmarkTrainerService-2 	 2400	 500000 ns/op	 2000 frames/s	 8000 approach-updates/s
BenchmarkWebster 	 1000	 1600 ns/op
BenchmarkIngest-2 	 5	 84105548 ns/op	 270000 collector-readings/s	 0.45 collector/plain	 580000 plain-readings/s
`

func TestBuild(t *testing.T) {
	t.Parallel()
	res, err := Parse(strings.NewReader(sampleOutput), "bench.txt")
	if err != nil {
		t.Fatal(err)
	}
	rows, err := Build(res, map[string]float64{"eval_signals_scats_s": 53})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Row{}
	for _, r := range rows {
		byName[r.Name] = r
	}
	tests := []struct {
		name         string
		value, ratio float64 // ratio NaN: none
		met          string  // "", "met", "not met"
	}{
		{"rls_updates_per_s_16", 1e6, math.NaN(), "met"}, // the median of three runs
		{"rls_updates_per_s_32", 6e5, math.NaN(), ""},
		{"rls_updates_per_s_deployed", 2e5, math.NaN(), "not met"},
		{"cleaner_core_rps", 1e6, 1e6 / 7e5, "met"},               // ratio computed from the baseline
		{"predictor_fanout_msgs_per_s", 3e4, 0.6, "met"},          // ratio taken from hub/bare
		{"collector_ingest_rps", 2.7e5, 0.45, "not met"},          // the median of per-op ratios, not 270/580
		{"predictor_latency_p99_ms", 9, math.NaN(), "not met"},    // an upper bound
		{"eval_signals_scats_s", 53, math.NaN(), "not met"},       // external
		{"model_memory_bytes_10k", 1.8e9, math.NaN(), ""},         // no aim
		{"predictor_fanout_coalesced_share", 0.6, math.NaN(), ""}, // its own row
		{"snapshot_bytes_per_model", 75000, math.NaN(), ""},       // same benchmark, another metric
		{"learner_frames_per_s", 11000, math.NaN(), ""},
		{"learner_heap_bytes_per_approach", 400000, math.NaN(), ""},
		{"trainer_service_frames_per_s", 2000, math.NaN(), ""},
		{"webster_plan_us", 1.6, math.NaN(), ""},        // ns/op scaled           // no suffix in the name
		{"predictor_latency_p50_ms", 2, math.NaN(), ""}, // -2 suffix stripped
	}
	for _, tt := range tests {
		r, ok := byName[tt.name]
		if !ok {
			t.Errorf("no row %s", tt.name)
			continue
		}
		if r.Value == nil || *r.Value != tt.value {
			t.Errorf("%s value %v, want %v", tt.name, r.Value, tt.value)
		}
		if math.IsNaN(tt.ratio) != (r.Ratio == nil) || (r.Ratio != nil && math.Abs(*r.Ratio-tt.ratio) > 1e-12) {
			t.Errorf("%s ratio %v, want %v", tt.name, r.Ratio, tt.ratio)
		}
		met := ""
		if r.Met != nil {
			met = map[bool]string{true: "met", false: "not met"}[*r.Met]
		}
		if met != tt.met {
			t.Errorf("%s met %q, want %q", tt.name, met, tt.met)
		}
	}
	for _, name := range []string{"pipeline_latency_p50_ms", "pipeline_latency_p99_ms", "loadtest_readings_per_s"} {
		if r, ok := byName[name]; !ok || r.Value != nil || !strings.HasPrefix(r.Setup, "not measured") {
			t.Errorf("row %s: %+v, want it listed as not measured", name, r)
		}
	}
	if !strings.Contains(byName["rls_updates_per_s_deployed"].Setup, "inputs 42") {
		t.Errorf("deployed row's setup %q does not name the input count", byName["rls_updates_per_s_deployed"].Setup)
	}
	md := string(Markdown(Machine{CPU: "Test CPU", Cores: 2, GoVersion: "go1.26", Date: "2026-12-05T18:00:00Z", LoadAverage: "1 2 3"}, rows))
	for _, want := range []string{"Test CPU, 2 cores", "go1.26", "1 2 3", "| `rls_updates_per_s_16` | 1.00 M | updates/s |", "not measured", "| not met |"} {
		if !strings.Contains(md, want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
}

func TestBuildMissing(t *testing.T) {
	t.Parallel()
	res, err := Parse(strings.NewReader("BenchmarkRLSUpdate16 1 1 ns/op 5 updates/s\n"), "bench.txt")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Build(res, nil)
	if err == nil || !strings.Contains(err.Error(), "rls_updates_per_s_deployed") || !strings.Contains(err.Error(), "eval_signals_scats_s") {
		t.Fatalf("Build with missing benchmarks: %v, want an error naming them", err)
	}
}

func TestParseSyntaxError(t *testing.T) {
	t.Parallel()
	_, err := Parse(strings.NewReader("ok\nBenchmarkX 1 1 ns/op 2\n"), "bench.txt")
	if err == nil || !strings.Contains(err.Error(), "bench.txt:2") {
		t.Fatalf("Parse: %v, want an error naming bench.txt:2", err)
	}
}

// FuzzParse feeds arbitrary text to Parse and Build: never a panic; every parsed value is finite; the rows Build
// makes round-trip through JSON; the Markdown has one table line per row.
func FuzzParse(f *testing.F) {
	f.Add(sampleOutput)
	f.Add("BenchmarkX-2 1 NaN ns/op\n")
	f.Add("BenchmarkX 1 1e400 ns/op 1 a|b\n")
	f.Fuzz(func(t *testing.T, in string) {
		res, err := Parse(strings.NewReader(in), "fuzz")
		if err != nil {
			return
		}
		for k, vs := range res {
			for _, v := range vs {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					t.Fatalf("%v: non-finite %v", k, v)
				}
			}
		}
		rows, err := Build(res, map[string]float64{"eval_signals_scats_s": 1})
		if err != nil {
			return
		}
		js, err := json.Marshal(rows)
		if err != nil {
			t.Fatal(err)
		}
		var back []Row
		if err := json.Unmarshal(js, &back); err != nil {
			t.Fatal(err)
		}
		js2, _ := json.Marshal(back)
		if !bytes.Equal(js, js2) {
			t.Fatalf("JSON does not round-trip:\n%s\n%s", js, js2)
		}
		md := Markdown(Machine{}, rows)
		if n := bytes.Count(md, []byte("\n| `")); n != len(rows) {
			t.Fatalf("%d table lines for %d rows", n, len(rows))
		}
	})
}

func TestQuote(t *testing.T) {
	t.Parallel()
	res, err := Parse(strings.NewReader(sampleOutput), "bench.txt")
	if err != nil {
		t.Fatal(err)
	}
	rows, err := Build(res, map[string]float64{"eval_signals_scats_s": 53})
	if err != nil {
		t.Fatal(err)
	}
	doc := []byte("intro\n" + readmeBegin + "\nold figures\n" + readmeEnd + "\noutro\n")
	got, err := Quote(doc, Machine{Date: "D", CPU: "C", Cores: 2, LoadAverage: "1 2 3"}, rows)
	if err != nil {
		t.Fatal(err)
	}
	s := string(got)
	for _, want := range []string{"intro\n" + readmeBegin + "\n", readmeEnd + "\noutro\n", "| `rls_updates_per_s_16` | 1.00 M updates/s |  | ≥ 1.00 M updates/s | met |",
		"| `collector_ingest_rps` | 270.0 k readings/s | 0.45 | ratio ≥ 0.6 | **not met** |", "| `pipeline_latency_p99_ms` | not measured |"} {
		if !strings.Contains(s, want) {
			t.Errorf("quote lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "old figures") {
		t.Errorf("old figures kept:\n%s", s)
	}
	again, err := Quote(got, Machine{Date: "D", CPU: "C", Cores: 2, LoadAverage: "1 2 3"}, rows)
	if err != nil || string(again) != s {
		t.Errorf("quoting twice changes the text (err %v)", err)
	}
	if _, err := Quote([]byte("no markers"), Machine{}, rows); err == nil {
		t.Error("Quote without markers: no error")
	}
}
