package ingest

import "testing"

func TestFlowVPH(t *testing.T) {
	for _, c := range []struct {
		count    float64
		interval uint32
		want     float64
	}{{10, 60, 600}, {25, 300, 300}, {0, 900, 0}, {1, 3600, 1}} {
		if got := FlowVPH(c.count, c.interval); got != c.want {
			t.Errorf("FlowVPH(%v, %d) = %v, want %v", c.count, c.interval, got, c.want)
		}
	}
}
