package sumo

import (
	"bytes"
	"testing"
	"time"
)

func TestProgressBar(t *testing.T) {
	tests := []struct {
		name              string
		on                bool
		total             int
		end               time.Duration
		arrived, expected int
		want              string
	}{
		{name: "half the vehicles", on: true, total: 300, arrived: 150, expected: 100, want: "\rrun [###############...............]  50%  00:10:00 simulated, 150 vehicles arrived, 100 expected \n"},
		{name: "nothing yet", on: true, total: 300, want: "\rrun [..............................]   0%  00:10:00 simulated, 0 vehicles arrived, 0 expected \n"},
		{name: "a third of --end", on: true, total: 300, end: 30 * time.Minute, arrived: 7, want: "\rrun [##########....................]  33%  00:10:00 simulated, 7 vehicles arrived, 0 expected \n"},
		{name: "no total", on: true, arrived: 7, expected: 3, want: "\rrun  00:10:00 simulated, 7 vehicles arrived, 3 expected \n"},
		{name: "not a terminal", total: 2, arrived: 1, expected: 1, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			b := &progressBar{w: &buf, on: tt.on, label: "run", total: tt.total, end: tt.end}
			b.draw(10*time.Minute, tt.arrived, tt.expected)
			b.done()
			b.done() // a second done adds nothing
			if got := buf.String(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	if b := newProgressBar(&bytes.Buffer{}, "run", false, 1, 0); b.on {
		t.Error("a bar on a buffer, not a terminal")
	}
	if n := routeVehicles("../../../../deploy/sumo/grid3x3/grid3x3.rou.xml"); n != 3000 {
		t.Errorf("grid3x3 has %d vehicles, want 3000", n)
	}
}
