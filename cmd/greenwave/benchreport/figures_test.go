package main

import (
	"strings"
	"testing"
)

const sampleFigures = `{"kind": "pipeline", "date": "2026-12-05T22:00:00Z", "load_start": "1 2 3", "load_end": "2 2 3",
  "rows": [
    {"name": "pipeline_latency_p50_ms", "value": 12.5, "unit": "ms", "setup": "p50"},
    {"name": "pipeline_latency_p99_ms", "value": 80, "unit": "ms", "setup": "p99", "aim": {"bound": 50}},
    {"name": "loadtest_rss_mb_cleaner", "value": 120, "unit": "MB", "setup": "rss"}
  ]}`

func TestMergeFigures(t *testing.T) {
	t.Parallel()
	f, err := ParseFigures(strings.NewReader(sampleFigures), "figures.json")
	if err != nil {
		t.Fatal(err)
	}
	rows := Merge(append([]Row{{Name: "other", Unit: "s"}}, notMeasured...), f)
	var names []string
	for _, r := range rows {
		names = append(names, r.Name)
	}
	want := "other pipeline_latency_p50_ms pipeline_latency_p99_ms loadtest_readings_per_s loadtest_rss_mb_cleaner"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("rows %s, want %s (placeholders replaced in place, new rows appended)", got, want)
	}
	p99 := rows[2]
	if p99.Value == nil || *p99.Value != 80 || p99.Aim != "≤ 50 ms" || p99.Met == nil || *p99.Met {
		t.Errorf("p99 row %+v: want 80 ms, aim ≤ 50 ms, not met", p99)
	}
	if !strings.Contains(p99.Setup, "measured 2026-12-05T22:00:00Z") || !strings.Contains(p99.Setup, "load average 1 2 3") {
		t.Errorf("p99 setup %q lacks the date and load of the run", p99.Setup)
	}
	if rows[3].Value != nil {
		t.Errorf("loadtest_readings_per_s is not in the figures but got a value")
	}
}

func TestParseFiguresRejects(t *testing.T) {
	t.Parallel()
	for name, in := range map[string]string{
		"unknown field": `{"rows": [{"name": "a", "unit": "s", "value": 1}], "extra": 1}`,
		"no rows":       `{"kind": "load"}`,
		"no unit":       `{"rows": [{"name": "a", "value": 1}]}`,
		"trailing data": `{"rows": [{"name": "a", "unit": "s", "value": 1}]} {}`,
		"not json":      `rows`,
	} {
		if _, err := ParseFigures(strings.NewReader(in), "f.json"); err == nil || !strings.Contains(err.Error(), "f.json") {
			t.Errorf("%s: error %v, want one naming f.json", name, err)
		}
	}
}

func FuzzParseFigures(f *testing.F) {
	f.Add(sampleFigures)
	f.Add(`{"rows": [{"name": "a", "unit": "s", "value": 1e999}]}`)
	f.Fuzz(func(t *testing.T, in string) {
		fg, err := ParseFigures(strings.NewReader(in), "f.json")
		if err != nil {
			return
		}
		for _, r := range Merge(nil, fg) {
			if r.Value == nil {
				t.Fatalf("row %s without a value", r.Name)
			}
		}
	})
}
