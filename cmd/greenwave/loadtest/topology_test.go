package main

import (
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/greenwave-city/greenwave/pkg/topology"
)

func TestTopologyValidAndRoundTrips(t *testing.T) {
	for _, tc := range []struct{ n, window int }{{1, 60}, {2500, 300}} {
		topo, err := Topology(tc.n, tc.window)
		if err != nil {
			t.Fatalf("Topology(%d, %d): %v", tc.n, tc.window, err)
		}
		b, err := yaml.Marshal(topo)
		if err != nil {
			t.Fatal(err)
		}
		back, err := topology.Parse(b)
		if err != nil {
			t.Fatalf("parse generated topology: %v", err)
		}
		if got := len(back.Intersections); got != tc.n {
			t.Errorf("%d intersections, want %d", got, tc.n)
		}
		detectors := 0
		for _, in := range back.Intersections {
			if in.Window() != tc.window {
				t.Errorf("%s: window %d, want %d", in.ID, in.Window(), tc.window)
			}
			for _, a := range in.Approaches {
				detectors += len(a.Detectors)
			}
		}
		if detectors != 4*tc.n {
			t.Errorf("%d detectors, want %d", detectors, 4*tc.n)
		}
	}
}

func TestTopologyRejectsBadWindow(t *testing.T) {
	if _, err := Topology(1, 7); err == nil {
		t.Error("window 7 s accepted; it does not divide a day")
	}
}
