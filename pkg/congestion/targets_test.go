package congestion

import (
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/greenwave-city/greenwave/pkg/train"
)

const (
	free     = LevelFree
	light    = LevelLight
	moderate = LevelModerate
	heavy    = LevelHeavy
	severe   = LevelSevere
	unknown  = LevelUnspecified
)

func TestClassify(t *testing.T) {
	t.Parallel()
	c := DefaultClassifier()
	if errs := c.Validate(); len(errs) > 0 {
		t.Fatalf("defaults invalid: %v", errs)
	}
	flow, speed, occ := train.TargetFlow, train.TargetSpeed, train.TargetOccupancy
	tests := []struct {
		name     string
		target   string
		value    float64
		capacity float64
		level    Level
		los      string
		dos      float64
	}{
		{"flow free", flow, 300, 1000, free, "A", 0.3},
		{"flow heavy", flow, 950, 1000, heavy, "E", 0.95},
		{"flow over capacity", flow, 1200, 1000, severe, "F", 1.2},
		{"flow without capacity", flow, 500, 0, unknown, "", math.NaN()},
		{"speed at free flow", speed, 50, 0, free, "A", math.NaN()},
		{"speed at the free bound", speed, 40, 0, free, "B", math.NaN()},
		{"speed 70 %", speed, 35, 0, light, "B", math.NaN()},
		{"speed 60 %", speed, 30, 0, moderate, "C", math.NaN()},
		{"speed 45 %", speed, 22.5, 0, heavy, "D", math.NaN()},
		{"speed 35 %", speed, 17.5, 0, heavy, "E", math.NaN()},
		{"speed crawling", speed, 10, 0, severe, "F", math.NaN()},
		{"speed NaN", speed, math.NaN(), 0, unknown, "", math.NaN()},
		{"occupancy empty road", occ, 0.02, 0, free, "", math.NaN()},
		{"occupancy 12 %", occ, 0.12, 0, light, "", math.NaN()},
		{"occupancy 20 %", occ, 0.20, 0, moderate, "", math.NaN()},
		{"occupancy 30 %", occ, 0.30, 0, heavy, "", math.NaN()},
		{"occupancy queued", occ, 0.50, 0, severe, "", math.NaN()},
		{"unknown target", "", 1, 1, unknown, "", math.NaN()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			level, los, dos := c.Classify(tt.target, tt.value, tt.capacity)
			if level != tt.level || los != tt.los || !(dos == tt.dos || math.IsNaN(dos) && math.IsNaN(tt.dos)) {
				t.Fatalf("Classify = %v %q %g, want %v %q %g", level, los, dos, tt.level, tt.los, tt.dos)
			}
		})
	}
}

func TestThresholdsValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		c    func(*Classifier)
	}{
		{"speed bounds increasing", func(c *Classifier) { c.Speed = SpeedThresholds{0.3, 0.5, 0.67, 0.8} }},
		{"speed ratio above 1", func(c *Classifier) { c.Speed.Free = 1.2 }},
		{"occupancy above 1", func(c *Classifier) { c.Occupancy.Heavy = 1.5 }},
		{"occupancy decreasing", func(c *Classifier) { c.Occupancy = OccupancyThresholds{0.35, 0.25, 0.15, 0.1} }},
		{"saturation NaN", func(c *Classifier) { c.Saturation.Light = math.NaN() }},
		{"free-flow speed zero", func(c *Classifier) { c.FreeFlowSpeedKMH = 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := DefaultClassifier()
			tt.c(&c)
			if errs := c.Validate(); len(errs) != 1 {
				t.Fatalf("Validate = %v, want one error", errs)
			}
		})
	}
}

func TestParseBounds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      []string
		want    [4]float64
		wantErr string
	}{
		{in: []string{"0.6,0.7,0.85,1"}, want: [4]float64{0.6, 0.7, 0.85, 1}},
		{in: []string{"0.8", " 0.67", "0.5 ", "0.3"}, want: [4]float64{0.8, 0.67, 0.5, 0.3}},
		{in: []string{"0.6,0.7,0.85"}, wantErr: "want 4 bounds"},
		{in: []string{"0.6,x,0.85,1"}, wantErr: `bound 2 "x"`},
		{in: []string{"0.6,NaN,0.85,1"}, wantErr: "bound 2"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.in, "|"), func(t *testing.T) {
			t.Parallel()
			a, b, c, d, err := ParseBounds(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || [4]float64{a, b, c, d} != tt.want {
				t.Fatalf("ParseBounds = %v %v %v %v, %v; want %v", a, b, c, d, err, tt.want)
			}
		})
	}
}

func FuzzParseBounds(f *testing.F) {
	f.Add("0.6,0.7,0.85,1")
	f.Add("1e308,-0,inf,0x1p-2")
	f.Fuzz(func(t *testing.T, s string) {
		a, b, c, d, err := ParseBounds([]string{s})
		if err != nil {
			return
		}
		for _, v := range []float64{a, b, c, d} {
			if math.IsNaN(v) {
				t.Fatalf("ParseBounds(%q) returned NaN", s)
			}
		}
		// What parsed prints back to the same four values.
		text := make([]string, 4)
		for i, v := range []float64{a, b, c, d} {
			text[i] = strconv.FormatFloat(v, 'g', -1, 64)
		}
		a2, b2, c2, d2, err := ParseBounds([]string{strings.Join(text, ",")})
		if err != nil {
			t.Fatalf("ParseBounds(%q) -> %v: reparse: %v", s, text, err)
		}
		for i, pair := range [][2]float64{{a, a2}, {b, b2}, {c, c2}, {d, d2}} {
			if math.Float64bits(pair[0]) != math.Float64bits(pair[1]) {
				t.Fatalf("ParseBounds(%q): bound %d %v reparses as %v", s, i+1, pair[0], pair[1])
			}
		}
		// Whatever parsed, validation decides; it must never panic.
		_ = (Thresholds{a, b, c, d}).Validate()
		_ = (SpeedThresholds{a, b, c, d}).Validate()
	})
}
