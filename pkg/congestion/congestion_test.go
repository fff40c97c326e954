package congestion

import (
	"math"
	"testing"
)

func TestLevels(t *testing.T) {
	t.Parallel()
	th := DefaultThresholds()
	tests := []struct {
		dos   float64
		level Level
		los   string
	}{
		{0, LevelFree, "A"},
		{0.6, LevelLight, "A"},
		{0.65, LevelLight, "B"},
		{0.75, LevelModerate, "C"},
		{0.84, LevelModerate, "D"},
		{0.95, LevelHeavy, "E"},
		{1.0, LevelSevere, "E"},
		{1.3, LevelSevere, "F"},
		{math.NaN(), LevelUnspecified, ""},
	}
	for _, tt := range tests {
		if got := th.Level(tt.dos); got != tt.level {
			t.Errorf("Level(%v) = %v, want %v", tt.dos, got, tt.level)
		}
		if got := LevelOfService(tt.dos); got != tt.los {
			t.Errorf("LevelOfService(%v) = %q, want %q", tt.dos, got, tt.los)
		}
	}
	if err := (Thresholds{Free: 0.7, Light: 0.6, Moderate: 0.8, Heavy: 1}).Validate(); err == nil {
		t.Error("Validate accepted decreasing thresholds")
	}
}
