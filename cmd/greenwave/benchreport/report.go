package main

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"golang.org/x/perf/benchfmt"
)

// Row is one figure of the report. Value, BaselineValue, Ratio and Met are null when they do not apply (no
// baseline, no aim) or when the figure was not measured; Setup then says why.
type Row struct {
	Name          string   `json:"name"`
	Value         *float64 `json:"value"`
	Unit          string   `json:"unit"`
	BaselineName  string   `json:"baseline_name,omitempty"`
	BaselineValue *float64 `json:"baseline_value"`
	Ratio         *float64 `json:"ratio"`
	Setup         string   `json:"setup"`
	// Aim is the target in words ("≥ 1000000 updates/s"), empty when the row has none.
	Aim string `json:"aim,omitempty"`
	// Met says whether Value (or Ratio, for aims on the ratio) meets Aim; null without an aim or a value.
	Met *bool `json:"met"`
}

// aim is a row's target: the value (or the ratio, onRatio) must be at least (atLeast) or at most bound.
type aim struct {
	bound   float64
	atLeast bool
	onRatio bool
}

func (a aim) String(unit string) string {
	op, u := "≤", unit
	if a.atLeast {
		op = "≥"
	}
	if a.onRatio {
		return fmt.Sprintf("ratio %s %s", op, formatValue(a.bound))
	}
	return fmt.Sprintf("%s %s %s", op, formatValue(a.bound), u)
}

func (a aim) met(value, ratio *float64) *bool {
	x := value
	if a.onRatio {
		x = ratio
	}
	if x == nil {
		return nil
	}
	ok := *x <= a.bound
	if a.atLeast {
		ok = *x >= a.bound
	}
	return &ok
}

// metric names one reported metric of one benchmark: Benchmark is the name without "Benchmark" and without the
// -GOMAXPROCS suffix, Unit the unit go test printed (a b.ReportMetric unit or ns/op, B/op, allocs/op).
type metric struct{ benchmark, unit string }

// rowSpec says how a row is made from the benchmark results.
type rowSpec struct {
	name  string
	value metric
	// scale multiplies the metric into unit (0 means 1).
	scale float64
	unit  string
	// baselineName and baseline, when set, are the baseline's row name and metric.
	baselineName string
	baseline     metric
	// ratio, when set, is the metric that is the ratio (a median of per-op ratios, say); otherwise the ratio
	// is value / baseline.
	ratio metric
	// setup describes the measurement; extra metrics of the same benchmark listed in details are appended as
	// "unit value".
	setup   string
	details []metric
	aim     *aim
	// external names a figure that does not come from go test (the eval wall time): it is taken from
	// Inputs.External under this key.
	external string
}

// specs are the report's rows, in order.
var specs = []rowSpec{
	{name: "rls_updates_per_s_16", value: metric{"RLSUpdate16", "updates/s"}, unit: "updates/s",
		setup: "pkg/regression BenchmarkRLSUpdate16: RLS.Update, 16 inputs, default RLS configuration, random rows; one core (-cpu 1)",
		aim:   &aim{bound: 1e6, atLeast: true}},
	{name: "rls_updates_per_s_32", value: metric{"RLSUpdate32", "updates/s"}, unit: "updates/s",
		setup: "pkg/regression BenchmarkRLSUpdate32: as the 16-input row with 32 inputs (O(n²) per update); one core"},
	{name: "rls_updates_per_s_deployed", value: metric{"RLSUpdateDeployed", "updates/s"}, unit: "updates/s",
		setup:   "pkg/train BenchmarkRLSUpdateDeployed: RLS.Update at the learner's input count for the real feature layout (features.Names without bias, plus the seasonal inputs), default RLS configuration; one core",
		details: []metric{{"RLSUpdateDeployed", "inputs"}},
		aim:     &aim{bound: 250e3, atLeast: true}},
	{name: "learner_frames_per_s", value: metric{"LearnerApply", "frames/s"}, unit: "frames/s",
		setup: "pkg/train BenchmarkLearnerApply: Learner.Apply with the default configuration (3 horizons × 8 candidates) on the deployed feature layout; one core"},
	{name: "learner_heap_bytes_per_approach", value: metric{"LearnerMemory", "heap-bytes/approach"}, unit: "bytes",
		setup: "pkg/train BenchmarkLearnerMemory: live heap (after GC) of one approach's learner (default configuration: 3 horizons × 8 candidates, deployed feature layout) after a day of 5-minute windows, over 64 learners; the trainer's live heap is about this × its approaches"},
	{name: "cleaner_core_rps", value: metric{"CleanCity", "readings/s"}, unit: "readings/s",
		baselineName: "cleaner_one_intersection_rps", baseline: metric{"CleanReadings", "readings/s"},
		setup:   "pkg/clean BenchmarkCleanCity: Intersection.Add on 1 000 intersections fed minute by minute, weather present all week, upstream features on (each intersection's N approach reads the previous one's E); baseline BenchmarkCleanReadings, one intersection; one core",
		details: []metric{{"CleanCity", "weather-share"}, {"CleanCity", "upstream-share"}},
		aim:     &aim{bound: 200e3, atLeast: true}},
	{name: "predictor_fanout_msgs_per_s", value: metric{"SubscribeFanout", "hub-delivered-msgs/s"}, unit: "msgs/s",
		baselineName: "bare_grpc_stream_msgs_per_s", baseline: metric{"SubscribeFanout", "bare-delivered-msgs/s"},
		ratio: metric{"SubscribeFanout", "hub/bare"},
		setup: "services/predictor BenchmarkSubscribeFanout: predictions received by 100 Subscribe clients over loopback gRPC per second (summed over clients), through the hub vs a bare grpc-go stream sending every message; coalesced messages are not counted (see predictor_fanout_coalesced_share); 2 cores",
		aim:   &aim{bound: 0.5, atLeast: true, onRatio: true}},
	{name: "predictor_fanout_coalesced_share", value: metric{"SubscribeFanout", "hub-coalesced-share"}, unit: "share",
		setup: "services/predictor BenchmarkSubscribeFanout: share of published predictions × clients the hub coalesced away (replaced by a newer prediction of the same intersection before the client took it)"},
	{name: "predictor_latency_p50_ms", value: metric{"PredictionLatency", "p50-ms"}, unit: "ms",
		setup:   "services/predictor BenchmarkPredictionLatency on the real broker: from just before the frame's produce call to the features topic to its prediction acknowledged by Kafka and handed to the hub, queueing in the reader included, paced at 10 000 vectors/s",
		details: []metric{{"PredictionLatency", "vectors/s"}}},
	{name: "predictor_latency_p99_ms", value: metric{"PredictionLatency", "p99-ms"}, unit: "ms",
		setup:   "as predictor_latency_p50_ms (the 99th percentile over every frame of the run)",
		details: []metric{{"PredictionLatency", "vectors/s"}},
		aim:     &aim{bound: 5}},
	{name: "collector_ingest_rps", value: metric{"Ingest", "collector-readings/s"}, unit: "readings/s",
		baselineName: "plain_kafka_go_producer_rps", baseline: metric{"Ingest", "plain-readings/s"},
		ratio: metric{"Ingest", "collector/plain"},
		setup: "services/collector BenchmarkIngest on the real broker: StreamReadings over loopback gRPC (8 batches of 500 in flight, acks=all) vs a plain kafka-go producer writing the same records and headers with 8 concurrent writers; the two alternate which goes first; medians over the ops (ratio: median of per-op ratios)",
		aim:   &aim{bound: 0.6, atLeast: true, onRatio: true}},
	{name: "model_memory_bytes_10k", value: metric{"ModelMemory", "heap-bytes"}, unit: "bytes",
		setup:   "services/predictor BenchmarkModelMemory: live heap (after GC) of the model store and compiled models holding 10 002 deployed-size models (default learner configuration, features.Names), each decoded from its own models-topic record",
		details: []metric{{"ModelMemory", "models"}, {"ModelMemory", "heap-bytes/model"}}},
	{name: "snapshot_bytes_per_model", value: metric{"ModelMemory", "snapshot-bytes/model"}, unit: "bytes",
		setup: "services/predictor BenchmarkModelMemory: mean size of a deployed-size model's record value on the models topic (deflated protobuf)"},
	{name: "trainer_service_frames_per_s", value: metric{"TrainerService", "frames/s"}, unit: "frames/s",
		setup:   "services/trainer BenchmarkTrainerService on the real broker: 2 400 four-approach frames written to the features topic of a running trainer, until its group committed them all (every snapshot acknowledged)",
		details: []metric{{"TrainerService", "approach-updates/s"}}},
	{name: "webster_plan_us", value: metric{"Webster", "ns/op"}, scale: 1e-3, unit: "µs",
		setup: "pkg/signal BenchmarkWebster: one Webster plan; one core"},
	{name: "eval_signals_scats_s", external: "eval_signals_scats_s", unit: "s",
		setup: "wall time of `greenwave eval --signals --format scats --horizons 15m` on the Boroondara October 2006 file (bin/greenwave, output discarded)",
		aim:   &aim{bound: 30}},
}

// notMeasured are the rows no benchmark makes: cmd/greenwave/loadtest measures them (benchreport --figures
// replaces these placeholders); a report built without its figures says so.
var notMeasured = []Row{
	{Name: "pipeline_latency_p50_ms", Unit: "ms", Setup: "not measured: no figures of cmd/greenwave/loadtest --mode pipeline (make bench) given"},
	{Name: "pipeline_latency_p99_ms", Unit: "ms", Setup: "not measured: no figures of cmd/greenwave/loadtest --mode pipeline (make bench) given", Aim: "≤ 50 ms"},
	{Name: "loadtest_readings_per_s", Unit: "readings/s", Setup: "not measured: no figures of `make loadtest` (bench/loadtest.json) given"},
}

// Results holds the parsed benchmark results: metric → values, one per result line (a benchmark run with
// -count gives several).
type Results map[metric][]float64

// Parse reads `go test -bench` output (any number of packages, concatenated). Lines that are not benchmark
// results (test output, PASS, ok …) are skipped as benchfmt skips them; a malformed result line is an error
// naming file:line.
func Parse(r io.Reader, fileName string) (Results, error) {
	res := Results{}
	br := benchfmt.NewReader(r, fileName)
	for br.Scan() {
		switch rec := br.Result().(type) {
		case *benchfmt.SyntaxError:
			return nil, rec
		case *benchfmt.Result:
			name := string(rec.Name.Full())
			if i := strings.LastIndexByte(name, '-'); i > 0 && isDigits(name[i+1:]) {
				name = name[:i] // the GOMAXPROCS suffix
			}
			for _, v := range rec.Values {
				unit, val := v.Unit, v.Value
				if v.OrigUnit != "" { // benchfmt tidied the unit (ns/op → sec/op): keep what go test printed
					unit, val = v.OrigUnit, v.OrigValue
				}
				if !math.IsNaN(val) && !math.IsInf(val, 0) {
					k := metric{name, unit}
					res[k] = append(res[k], val)
				}
			}
		}
	}
	if err := br.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", fileName, err)
	}
	return res, nil
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// get returns the median of m's values, false when m was not reported.
func (r Results) get(m metric) (float64, bool) {
	vs := r[m]
	if len(vs) == 0 {
		return 0, false
	}
	s := slices.Sorted(slices.Values(vs))
	n := len(s) / 2
	if len(s)%2 == 0 {
		return (s[n-1] + s[n]) / 2, true
	}
	return s[n], true
}

// Build makes the report's rows from the results and the external figures. A row whose benchmark is missing is
// an error (a report must not silently lose a figure); the rows of notMeasured are appended as they are.
func Build(r Results, external map[string]float64) ([]Row, error) {
	var rows []Row
	var missing []string
	for _, sp := range specs {
		row := Row{Name: sp.name, Unit: sp.unit, Setup: sp.setup}
		var v float64
		var ok bool
		if sp.external != "" {
			v, ok = external[sp.external]
		} else if v, ok = r.get(sp.value); ok && sp.scale != 0 {
			v *= sp.scale
		}
		if !ok {
			missing = append(missing, sp.name)
			continue
		}
		row.Value = &v
		if sp.baselineName != "" {
			row.BaselineName = sp.baselineName
			if bv, ok := r.get(sp.baseline); ok {
				row.BaselineValue = &bv
				ratio := v / bv
				if sp.ratio != (metric{}) {
					if ratio, ok = r.get(sp.ratio); !ok {
						missing = append(missing, sp.name+" ratio")
					}
				}
				if !math.IsNaN(ratio) && !math.IsInf(ratio, 0) { // a zero baseline has no ratio
					row.Ratio = &ratio
				}
			} else {
				missing = append(missing, sp.baselineName)
			}
		}
		var details []string
		for _, d := range sp.details {
			if dv, ok := r.get(d); ok {
				details = append(details, d.unit+" "+formatValue(dv))
			}
		}
		if len(details) > 0 {
			row.Setup += " [" + strings.Join(details, ", ") + "]"
		}
		if sp.aim != nil {
			row.Aim = sp.aim.String(sp.unit)
			row.Met = sp.aim.met(row.Value, row.Ratio)
		}
		rows = append(rows, row)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("no result for %s", strings.Join(missing, ", "))
	}
	return append(rows, notMeasured...), nil
}

// formatValue prints a figure with about three significant digits and an SI prefix for the sizes a report has.
func formatValue(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e9:
		return fmt.Sprintf("%.2f G", v/1e9)
	case a >= 1e6:
		return fmt.Sprintf("%.2f M", v/1e6)
	case a >= 1e4:
		return fmt.Sprintf("%.1f k", v/1e3)
	case a >= 100 || v == math.Trunc(v):
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

// Machine describes where the report was made.
type Machine struct {
	CPU         string `json:"cpu"`
	Cores       int    `json:"cores"`
	GoVersion   string `json:"go_version"`
	Date        string `json:"date"`
	LoadAverage string `json:"load_average"`
	// LoadAverageStart is the load average when the benchmarks started ("" when not given).
	LoadAverageStart string `json:"load_average_start,omitempty"`
	Commit           string `json:"commit,omitempty"`
	Note             string `json:"note,omitempty"`
}

// Markdown renders the report as a Markdown page: the machine, then one table of every row.
func Markdown(m Machine, rows []Row) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Benchmark report\n\nWritten by `make bench` (cmd/greenwave/benchreport); the same rows are in report.json.\n\n")
	fmt.Fprintf(&b, "- Machine: %s, %d cores\n- Go: %s\n- Date: %s\n", m.CPU, m.Cores, m.GoVersion, m.Date)
	if m.LoadAverageStart != "" {
		fmt.Fprintf(&b, "- Load average (1, 5, 15 min) when the benchmarks started: %s\n", m.LoadAverageStart)
	}
	fmt.Fprintf(&b, "- Load average (1, 5, 15 min) when the report was written: %s\n", m.LoadAverage)
	if m.Commit != "" {
		fmt.Fprintf(&b, "- Commit: %s\n", m.Commit)
	}
	if m.Note != "" {
		fmt.Fprintf(&b, "- Note: %s\n", m.Note)
	}
	b.WriteString("\n| Row | Value | Unit | Baseline | Baseline value | Ratio | Aim | Met | Setup |\n|---|---:|---|---|---:|---:|---|---|---|\n")
	opt := func(p *float64) string {
		if p == nil {
			return ""
		}
		return formatValue(*p)
	}
	for _, r := range rows {
		val := opt(r.Value)
		if r.Value == nil {
			val = "not measured"
		}
		met := ""
		if r.Met != nil {
			met = "not met"
			if *r.Met {
				met = "met"
			}
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.Name, val, r.Unit, r.BaselineName,
			opt(r.BaselineValue), opt(r.Ratio), r.Aim, met, strings.ReplaceAll(r.Setup, "|", `\|`))
	}
	return b.Bytes()
}

// keyRows are the rows the README quotes (between readmeBegin and readmeEnd), in this order.
var keyRows = []string{
	"rls_updates_per_s_16", "rls_updates_per_s_deployed", "cleaner_core_rps", "collector_ingest_rps",
	"predictor_latency_p99_ms", "predictor_fanout_msgs_per_s", "model_memory_bytes_10k", "eval_signals_scats_s",
	"pipeline_latency_p50_ms", "pipeline_latency_p99_ms", "loadtest_readings_per_s", "loadtest_max_lag_records",
}

// The markers around the README's quote of the report; Quote replaces what lies between them.
const (
	readmeBegin = "<!-- bench:begin (written by make bench from bench/report.json; do not edit) -->"
	readmeEnd   = "<!-- bench:end -->"
)

// Quote replaces the text between readmeBegin and readmeEnd in doc by a table of the keyRows of rows, headed by
// the report's date. It is an error when the markers are missing or out of order.
func Quote(doc []byte, m Machine, rows []Row) ([]byte, error) {
	b := bytes.Index(doc, []byte(readmeBegin))
	e := bytes.Index(doc, []byte(readmeEnd))
	if b < 0 || e < b {
		return nil, fmt.Errorf("no %q … %q markers", readmeBegin, readmeEnd)
	}
	byName := map[string]Row{}
	for _, r := range rows {
		byName[r.Name] = r
	}
	var t bytes.Buffer
	t.WriteString(readmeBegin + "\n")
	merged := ""
	for _, name := range keyRows {
		if r, ok := byName[name]; ok && r.Value != nil && strings.Contains(r.Setup, "(measured ") {
			merged = "; the pipeline and load-test rows are from runs of their own, dated with their load in the report"
			break
		}
	}
	fmt.Fprintf(&t, "From [bench/report.md](bench/report.md) of %s (%s, %d cores, load average %s%s):\n\n", m.Date, m.CPU, m.Cores, m.LoadAverage, merged)
	t.WriteString("| row | value | ratio to baseline | aim | met |\n|---|---:|---:|---|---|\n")
	for _, name := range keyRows {
		r, ok := byName[name]
		if !ok {
			continue
		}
		val, ratio, met := "not measured", "", ""
		if r.Value != nil {
			val = formatValue(*r.Value) + " " + r.Unit
		}
		if r.Ratio != nil {
			ratio = formatValue(*r.Ratio)
		}
		if r.Met != nil {
			met = map[bool]string{true: "met", false: "**not met**"}[*r.Met]
		}
		fmt.Fprintf(&t, "| `%s` | %s | %s | %s | %s |\n", r.Name, val, ratio, r.Aim, met)
	}
	out := append([]byte{}, doc[:b]...)
	out = append(out, t.Bytes()...)
	return append(out, doc[e:]...), nil
}
