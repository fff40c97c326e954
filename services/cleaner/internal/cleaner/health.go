package cleaner

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/greenwave-city/greenwave/pkg/clean"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// HealthEventID is the deterministic event id of a detector's health record for the window starting at
// windowStart: "<intersection>/<detector>/<window start, Unix seconds>". A replayed window gives the same id
// and the same content.
func HealthEventID(intersection, detector string, windowStart time.Time) string {
	return fmt.Sprintf("%s/%s/%d", intersection, detector, windowStart.Unix())
}

// healthRecords converts the detector health at one window's close into one DetectorHealth message per
// detector, in topology order.
//
// The counts behind the shares are exponentially decayed (half-life clean.Config.HealthHalfLife of event
// time), so the shares describe the recent past, weighted towards the closed window. With n = valid + late +
// rejected readings: valid_share, late_share and rejected_share are those counts over n (they sum to 1),
// flagged_share is the outlier-flagged readings over n (a part of valid_share), and imputed_share is the
// share of closed windows in which the detector had no reading and was filled in. Every share is 0 without
// evidence. score is clean.DetectorHealth.Score.
func healthRecords(intersection string, wh clean.WindowHealth) []*greenwavev1.DetectorHealth {
	out := make([]*greenwavev1.DetectorHealth, 0, len(wh.Detectors))
	for _, h := range wh.Detectors {
		rec := &greenwavev1.DetectorHealth{
			SchemaVersion:  wire.SchemaVersion,
			EventId:        HealthEventID(intersection, h.DetectorID, wh.WindowStart),
			IntersectionId: intersection,
			ApproachId:     h.ApproachID,
			DetectorId:     h.DetectorID,
			WindowStart:    timestamppb.New(wh.WindowStart),
			WindowEnd:      timestamppb.New(wh.WindowEnd),
			Score:          h.Score,
		}
		if n := h.Valid + h.Late + h.Rejected; n > 0 {
			rec.ValidShare, rec.LateShare, rec.RejectedShare = h.Valid/n, h.Late/n, h.Rejected/n
			rec.FlaggedShare = min(1, h.Flagged/n)
		}
		if h.Windows > 0 {
			rec.ImputedShare = min(1, h.Imputed/h.Windows)
		}
		out = append(out, rec)
	}
	return out
}
