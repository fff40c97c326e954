package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/sumo"
)

// fixedBench is two scenarios, one without a static run.
func fixedBench() Bench {
	r := func(sc, c string, loss float64) sumo.Result {
		return sumo.Result{Scenario: sc, Controller: c, TimeLossS: loss, WaitingTimeS: loss / 2, DurationS: 100 + loss, Stops: 1.5,
			FuelML: 140, CO2G: 326.25, Completed: 3000, Inserted: 3000}
	}
	b := Bench{Commit: "abc1234", Date: "2026-12-05T12:00:00Z", SUMOVersion: "1.15.0", Seeds: []int{42, 7}, Results: []sumo.Result{
		r("grid", sumo.Static, 50), r("grid", sumo.Actuated, 40), r("grid", sumo.Greenwave, 60),
		r("other", sumo.Actuated, 30), r("other", "greenwave_actuated", 20),
	}}
	// The greenwave row is the mean of two seeds.
	b.Runs = []Run{{Seed: 42, Result: r("grid", sumo.Greenwave, 58)}, {Seed: 7, Result: r("grid", sumo.Greenwave, 62)}}
	return b
}

func TestMean(t *testing.T) {
	runs := []Run{
		{Seed: 1, Result: sumo.Result{Scenario: "s", Controller: "c", TimeLossS: 10, WaitingTimeS: 4, DurationS: 100, Stops: 1, FuelML: 100, CO2G: 200, Completed: 10, Inserted: 12}},
		{Seed: 2, Result: sumo.Result{Scenario: "s", Controller: "c", TimeLossS: 20, WaitingTimeS: 6, DurationS: 120, Stops: 2, FuelML: 110, CO2G: 220, Completed: 11, Inserted: 11}},
	}
	want := sumo.Result{Scenario: "s", Controller: "c", TimeLossS: 15, WaitingTimeS: 5, DurationS: 110, Stops: 1.5, FuelML: 105, CO2G: 210, Completed: 21, Inserted: 23}
	if got := Mean(runs); got != want {
		t.Errorf("Mean = %+v, want %+v", got, want)
	}
	if got := Mean(nil); got != (sumo.Result{}) {
		t.Errorf("Mean(nil) = %+v", got)
	}
}

func TestParseSeeds(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []int
	}{{"42", []int{42}}, {"42, 7,11", []int{42, 7, 11}}, {"", nil}, {"4,-1", nil}, {"x", nil}} {
		got, err := parseSeeds(tt.in)
		if (err == nil) != (tt.want != nil) || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseSeeds(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestWriteMarkdown(t *testing.T) {
	var b bytes.Buffer
	if err := fixedBench().WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		"Commit `abc1234`, 2026-12-05T12:00:00Z, SUMO 1.15.0, SUMO seeds 42, 7, averaged",
		"| scenario | controller | time loss s | range s | waiting s | trip s | stops | fuel ml | CO₂ g | completed/inserted | time loss vs static |",
		"| grid | static | 50.0 | — | 25.0 | 150.0 | 1.50 | 140.0 | 326.2 | 3000/3000 | — |",
		"| grid | actuated | 40.0 | — | 20.0 | 140.0 | 1.50 | 140.0 | 326.2 | 3000/3000 | -20.0 % |",
		"| grid | greenwave | 60.0 | 58.0–62.0 | 30.0 | 160.0 | 1.50 | 140.0 | 326.2 | 3000/3000 | +20.0 % |",
		"| other | greenwave_actuated | 20.0 | — | 10.0 | 120.0 | 1.50 | 140.0 | 326.2 | 3000/3000 | n/a |",
		"](time-loss.svg)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if rows := strings.Count(md, "\n| "); rows != 1+5 {
		t.Errorf("%d table rows, want header and 5:\n%s", rows, md)
	}
}

func TestWriteJSON(t *testing.T) {
	var b bytes.Buffer
	want := fixedBench()
	if err := want.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var got Bench
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip: got %+v, want %+v", got, want)
	}
	for _, key := range []string{`"commit"`, `"date"`, `"sumo_version"`, `"results"`, `"time_loss_s"`} {
		if !bytes.Contains(b.Bytes(), []byte(key)) {
			t.Errorf("JSON lacks %s", key)
		}
	}
}

func TestWritePlot(t *testing.T) {
	var b bytes.Buffer
	if err := fixedBench().WritePlot(&b); err != nil {
		t.Fatal(err)
	}
	// Well-formed XML whose texts carry the axis labels, every scenario and every controller (the legend).
	dec := xml.NewDecoder(&b)
	var texts []string
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG: %v", err)
		}
		if cd, ok := tok.(xml.CharData); ok && len(bytes.TrimSpace(cd)) > 0 {
			texts = append(texts, string(bytes.TrimSpace(cd)))
		}
	}
	all := strings.Join(texts, "\n")
	for _, want := range []string{"time loss per vehicle (s)", "scenario", "grid", "other", "static", "actuated", "greenwave", "greenwave_actuated"} {
		if !strings.Contains(all, want) {
			t.Errorf("SVG texts lack %q: %q", want, texts)
		}
	}
	if err := (Bench{}).WritePlot(io.Discard); err == nil {
		t.Error("an empty bench plotted")
	}
}

func TestWriteFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	if err := fixedBench().WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{FileJSON, FileMarkdown, FilePlot} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestScenarioDirs(t *testing.T) {
	root := t.TempDir()
	for _, f := range []string{"b/b.net.xml", "a/a.net.xml", "notes/readme.md"} {
		p := filepath.Join(root, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := scenarioDirs(root)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{filepath.Join(root, "a"), filepath.Join(root, "b")}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := scenarioDirs(filepath.Join(root, "notes")); err == nil {
		t.Error("a directory without scenarios gave no error")
	}
}
