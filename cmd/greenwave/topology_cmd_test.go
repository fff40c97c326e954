package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/cli"
	"github.com/greenwave-city/greenwave/pkg/dataset"
	"github.com/greenwave-city/greenwave/pkg/topology"
)

func TestTopologyImport(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		args          []string
		intersections []string
		stderr        string
		// zone is the data's time zone, which the topology must carry for the services' calendar features.
		zone string
	}{
		{name: "metro", args: []string{"--format", "metro"}, intersections: []string{dataset.MetroIntersectionID}, zone: "America/Chicago"},
		{name: "scats", args: []string{"../../pkg/dataset/testdata/scats_sample.csv", "--format", "scats"}, intersections: []string{"0970"},
			stderr: "skipped site 4335: only 1 approach", zone: "Australia/Melbourne"},
		{name: "csv", args: []string{"--format", "csv", "--time-zone", "UTC", "--adjacency", "../../pkg/dataset/testdata/readings_topology_edges.csv",
			"../../pkg/dataset/testdata/readings_topology.csv"}, intersections: []string{"K1", "K2", "STATION7"},
			stderr: `readings_topology.csv:8: detector_id: "K2 BAD" holds white space, '/' or a non-printable character (bad_id): places no detector
greenwave topology import: 3 intersections (0 signalised, 3 forecast_only), 6 detectors, 5 upstream references in 1 feature groups`, zone: "UTC"},
		{name: "csv signals", args: []string{"--format", "csv", "--time-zone", "Europe/Berlin", "--signals", "../../pkg/dataset/testdata/readings_topology.csv"},
			intersections: []string{"K1", "K2", "STATION7"}, stderr: "3 intersections (1 signalised, 2 forecast_only)", zone: "Europe/Berlin"},
		{name: "sumo", args: []string{"--format", "sumo", "../../deploy/sumo/arterial/arterial.net.xml"}, intersections: []string{"J1", "J2", "J3", "J4", "J5"}, zone: "UTC"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			if err := run(context.Background(), append([]string{"topology", "import"}, tc.args...), &stdout, &stderr); err != nil {
				t.Fatalf("%v\n%s", err, stderr.String())
			}
			// The output is a topology dev and the services load as is.
			topo, err := topology.Parse(stdout.Bytes())
			if err != nil {
				t.Fatalf("output does not parse: %v\n%s", err, stdout.String())
			}
			var ids []string
			for _, in := range topo.Intersections {
				ids = append(ids, in.ID)
			}
			if strings.Join(ids, ",") != strings.Join(tc.intersections, ",") || !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("intersections %q, stderr %q", ids, stderr.String())
			}
			if !strings.Contains(stdout.String(), "\ntime_zone: "+tc.zone+"\n") || topo.Zone() != tc.zone {
				t.Errorf("time zone %q, want time_zone: %s written", topo.Zone(), tc.zone)
			}
		})
	}
}

func TestTopologyImportErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no subcommand", []string{"topology"}, 2, "want the subcommand import"},
		{"no format", []string{"topology", "import"}, 2, "--format csv|scats|metro|sumo is required"},
		{"bad format", []string{"topology", "import", "--format", "xml"}, 2, `--format "xml"`},
		{"csv without file", []string{"topology", "import", "--format", "csv"}, 2, "needs the readings FILE"},
		{"csv flag for scats", []string{"topology", "import", "--format", "scats", "--signals", "x.csv"}, 2, "are for --format csv"},
		{"csv bad max group", []string{"topology", "import", "--format", "csv", "--max-group", "0", "x.csv"}, 2, "--max-group and --lanes must be at least 1"},
		{"csv not canonical", []string{"topology", "import", "--format", "csv", "../../pkg/dataset/testdata/metro_sample.csv"}, 1, "metro_sample.csv:1: header lacks column(s)"},
		{"adjacency unknown id", []string{"topology", "import", "--format", "csv", "--adjacency", "testdata/import/unknown_edges.csv",
			"../../pkg/dataset/testdata/readings_topology.csv"}, 1, `testdata/import/unknown_edges.csv:3: "K9" is neither a detector nor an intersection`},
		{"adjacency bad row", []string{"topology", "import", "--format", "csv", "--adjacency", "testdata/import/bad_edges.csv",
			"../../pkg/dataset/testdata/readings_topology.csv"}, 1, `testdata/import/bad_edges.csv:2: directed "sometimes"`},
		{"missing file", []string{"topology", "import", "--format", "scats", "/nonexistent.csv"}, 1, "no such file"},
		{"not a scats file", []string{"topology", "import", "--format", "scats", "../../pkg/dataset/testdata/metro_sample.csv"}, 1, "no header row"},
		{"not a sumo network", []string{"topology", "import", "--format", "sumo", "../../pkg/dataset/testdata/metro_sample.csv"}, 1, "not a SUMO network"},
		{"missing sumo network", []string{"topology", "import", "--format", "sumo", "/nonexistent.net.xml"}, 1, "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stderr bytes.Buffer
			err := run(context.Background(), tc.args, io.Discard, &stderr)
			if code := cli.ExitCode(err, &stderr); code != tc.code || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr.String(), tc.code, tc.want)
			}
		})
	}
}
