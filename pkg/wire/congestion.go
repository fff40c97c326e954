package wire

import (
	"github.com/greenwave-city/greenwave/pkg/congestion"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// levels maps the congestion levels to the proto enum; TestLevelTable fails when either side gains a value.
var levels = map[congestion.Level]greenwavev1.CongestionLevel{
	congestion.LevelUnspecified: greenwavev1.CongestionLevel_CONGESTION_LEVEL_UNSPECIFIED,
	congestion.LevelFree:        greenwavev1.CongestionLevel_CONGESTION_LEVEL_FREE,
	congestion.LevelLight:       greenwavev1.CongestionLevel_CONGESTION_LEVEL_LIGHT,
	congestion.LevelModerate:    greenwavev1.CongestionLevel_CONGESTION_LEVEL_MODERATE,
	congestion.LevelHeavy:       greenwavev1.CongestionLevel_CONGESTION_LEVEL_HEAVY,
	congestion.LevelSevere:      greenwavev1.CongestionLevel_CONGESTION_LEVEL_SEVERE,
}

// LevelProto returns the enum of a congestion level (CONGESTION_LEVEL_UNSPECIFIED for one the table lacks).
func LevelProto(l congestion.Level) greenwavev1.CongestionLevel { return levels[l] }

// Level returns the congestion level of an enum value, and ok false for a value this build does not know.
func Level(p greenwavev1.CongestionLevel) (l congestion.Level, ok bool) {
	for l, v := range levels {
		if v == p {
			return l, true
		}
	}
	return congestion.LevelUnspecified, false
}
