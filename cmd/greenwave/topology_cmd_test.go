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
		{"no format", []string{"topology", "import"}, 2, "--format scats|metro|sumo is required"},
		{"bad format", []string{"topology", "import", "--format", "csv"}, 2, `--format "csv"`},
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
