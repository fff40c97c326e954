package check

import (
	"bytes"
	"encoding/csv"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestSampleUpToDate(t *testing.T) {
	t.Parallel()
	detectors, err := TopologyDetectors(readRepoFile(t, "config/topology.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readRepoFile(t, SampleCSV), Sample(detectors, DemoSampleConfig())) {
		t.Fatalf("%s differs from what config/topology.yaml gives: run 'go run ./deploy/check/cmd/gensample'", SampleCSV)
	}
}

func TestSampleIsCanonicalCSV(t *testing.T) {
	t.Parallel()
	detectors, err := TopologyDetectors(readRepoFile(t, "config/topology.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]Detector{}
	for _, d := range detectors {
		known[d.ID] = d
	}
	rows, err := csv.NewReader(bytes.NewReader(readRepoFile(t, SampleCSV))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rows[0], ",") != SampleHeader {
		t.Fatalf("header %v, want %s", rows[0], SampleHeader)
	}
	impossible := 0
	for i, r := range rows[1:] {
		line := i + 2
		if _, err := time.Parse(time.RFC3339, r[0]); err != nil {
			t.Fatalf("line %d: observed_at: %v", line, err)
		}
		d, ok := known[r[3]]
		if !ok || d.Intersection != r[1] || d.Approach != r[2] {
			t.Fatalf("line %d: detector %s/%s/%s is not in the topology", line, r[1], r[2], r[3])
		}
		if n, err := strconv.Atoi(r[5]); err != nil || n < 0 {
			t.Fatalf("line %d: count %q", line, r[5])
		}
		if occ, _ := strconv.ParseFloat(r[6], 64); occ > 1 {
			impossible++
		}
	}
	// The faults are deliberate: the demo's dead-letter panel should show something.
	if impossible == 0 {
		t.Error("the sample has no impossible reading for the cleaner to reject")
	}
}
