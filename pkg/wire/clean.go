package wire

import (
	"github.com/greenwave-city/greenwave/pkg/clean"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// cleanReasons maps every clean.Reason to its RejectReason; together with the reading kind (weather reasons
// are READING_KIND_WEATHER) the mapping is one to one. TestReasonTables fails when a value is added on one
// side only.
var cleanReasons = map[clean.Reason]greenwavev1.RejectReason{
	clean.ReasonMissingField:             greenwavev1.RejectReason_REJECT_REASON_MISSING_FIELD,
	clean.ReasonOutOfRange:               greenwavev1.RejectReason_REJECT_REASON_OUT_OF_RANGE,
	clean.ReasonUnknownDetector:          greenwavev1.RejectReason_REJECT_REASON_UNKNOWN_DETECTOR,
	clean.ReasonInconsistent:             greenwavev1.RejectReason_REJECT_REASON_INCONSISTENT,
	clean.ReasonDuplicateConflict:        greenwavev1.RejectReason_REJECT_REASON_CONFLICTING_DUPLICATE,
	clean.ReasonImplausible:              greenwavev1.RejectReason_REJECT_REASON_IMPLAUSIBLE,
	clean.ReasonOverCapacity:             greenwavev1.RejectReason_REJECT_REASON_OVER_CAPACITY,
	clean.ReasonStuckDetector:            greenwavev1.RejectReason_REJECT_REASON_STUCK_DETECTOR,
	clean.ReasonLate:                     greenwavev1.RejectReason_REJECT_REASON_LATE,
	clean.ReasonClockJump:                greenwavev1.RejectReason_REJECT_REASON_CLOCK_JUMP,
	clean.ReasonOutlier:                  greenwavev1.RejectReason_REJECT_REASON_OUTLIER,
	clean.ReasonWeatherMissingField:      greenwavev1.RejectReason_REJECT_REASON_MISSING_FIELD,
	clean.ReasonWeatherOutOfRange:        greenwavev1.RejectReason_REJECT_REASON_OUT_OF_RANGE,
	clean.ReasonWeatherDuplicateConflict: greenwavev1.RejectReason_REJECT_REASON_CONFLICTING_DUPLICATE,
}

// RejectReason maps a cleaner reason to the proto enum (UNSPECIFIED for a reason not in clean.Reasons).
func RejectReason(r clean.Reason) greenwavev1.RejectReason {
	return cleanReasons[r]
}
