package congestion

import (
	"math"
	"testing"

	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

func TestLevels(t *testing.T) {
	t.Parallel()
	th := DefaultThresholds()
	tests := []struct {
		dos   float64
		level greenwavev1.CongestionLevel
		los   string
	}{
		{0, greenwavev1.CongestionLevel_CONGESTION_LEVEL_FREE, "A"},
		{0.6, greenwavev1.CongestionLevel_CONGESTION_LEVEL_LIGHT, "A"},
		{0.65, greenwavev1.CongestionLevel_CONGESTION_LEVEL_LIGHT, "B"},
		{0.75, greenwavev1.CongestionLevel_CONGESTION_LEVEL_MODERATE, "C"},
		{0.84, greenwavev1.CongestionLevel_CONGESTION_LEVEL_MODERATE, "D"},
		{0.95, greenwavev1.CongestionLevel_CONGESTION_LEVEL_HEAVY, "E"},
		{1.0, greenwavev1.CongestionLevel_CONGESTION_LEVEL_SEVERE, "E"},
		{1.3, greenwavev1.CongestionLevel_CONGESTION_LEVEL_SEVERE, "F"},
		{math.NaN(), greenwavev1.CongestionLevel_CONGESTION_LEVEL_UNSPECIFIED, ""},
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
