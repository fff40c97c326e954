package signalcontrol

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/greenwave-city/greenwave/pkg/signal"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// stateVersion is the version of the changelog value written by encodeState.
const stateVersion = 2

// intersectionState is what signal-control remembers per intersection, snapshotted to the compacted
// greenwave.signal-control.state changelog (keyed by intersection) after every batch.
type intersectionState struct {
	// Plan is the last plan issued (rate limiting, GetPlan, WatchPlans after a restart); nil before the first.
	Plan *greenwavev1.SignalPlan
	// WindowEnd is the end of the last prediction window planned: a window not after it is a replay.
	WindowEnd time.Time
	// Profile is the learned hour-of-week flow profile the time-of-day fallback plans from.
	Profile signal.Profile
	// AppliedOverride is the override whose plan was last issued immediately (so it is issued once).
	AppliedOverride string
	// ExpiredOverride is the override whose expiry audit was last written (so it is written once).
	ExpiredOverride string
}

// stateRecord is the JSON form of intersectionState. JSON keeps the value readable with standard tools
// (kcat | jq); the plan stays binary protobuf inside it. Times are Unix nanoseconds so they round-trip exactly.
type stateRecord struct {
	Version           int            `json:"version"`
	Plan              []byte         `json:"plan,omitempty"`
	WindowEndUnixNano int64          `json:"window_end_unix_nano,omitempty"`
	Profile           signal.Profile `json:"profile"`
	AppliedOverride   string         `json:"applied_override,omitempty"`
	ExpiredOverride   string         `json:"expired_override,omitempty"`
}

func encodeState(st *intersectionState) ([]byte, error) {
	rec := stateRecord{Version: stateVersion, Profile: st.Profile, AppliedOverride: st.AppliedOverride, ExpiredOverride: st.ExpiredOverride}
	if !st.WindowEnd.IsZero() {
		rec.WindowEndUnixNano = st.WindowEnd.UnixNano()
	}
	if st.Plan != nil {
		b, err := proto.Marshal(st.Plan)
		if err != nil {
			return nil, fmt.Errorf("encode plan: %w", err)
		}
		rec.Plan = b
	}
	return json.Marshal(rec)
}

// decodeState reads a changelog value: the JSON record, or — written by earlier versions — a bare SignalPlan
// (whose valid_from was the end of the window it planned). A protobuf encoding never starts with '{' (that
// would be field 15 with the deprecated group wire type), so the two cannot be confused.
func decodeState(b []byte) (*intersectionState, error) {
	if len(b) > 0 && b[0] == '{' {
		var rec stateRecord
		if err := json.Unmarshal(b, &rec); err != nil {
			return nil, fmt.Errorf("decode state: %w", err)
		}
		if rec.Version != stateVersion {
			return nil, fmt.Errorf("decode state: version %d, want %d", rec.Version, stateVersion)
		}
		st := &intersectionState{Profile: rec.Profile, AppliedOverride: rec.AppliedOverride, ExpiredOverride: rec.ExpiredOverride}
		if rec.WindowEndUnixNano != 0 {
			st.WindowEnd = time.Unix(0, rec.WindowEndUnixNano).UTC()
		}
		if rec.Plan != nil {
			st.Plan = &greenwavev1.SignalPlan{}
			if err := proto.Unmarshal(rec.Plan, st.Plan); err != nil {
				return nil, fmt.Errorf("decode state plan: %w", err)
			}
		}
		if err := checkProfile(st.Profile); err != nil {
			return nil, fmt.Errorf("decode state: %w", err)
		}
		return st, nil
	}
	var plan greenwavev1.SignalPlan
	if err := proto.Unmarshal(b, &plan); err != nil {
		return nil, fmt.Errorf("decode legacy state: %w", err)
	}
	return &intersectionState{Plan: &plan, WindowEnd: plan.GetValidFrom().AsTime()}, nil
}

// checkProfile rejects a profile that Observe could not have produced.
func checkProfile(p signal.Profile) error {
	for a, cells := range p.Cells {
		for b, c := range cells {
			if b < 0 || b >= signal.ProfileBuckets || !(c.MeanVPH >= 0) || c.MeanVPH > 1e12 || c.Samples == 0 {
				return errors.New("profile of approach " + a + " holds an impossible cell")
			}
		}
	}
	return nil
}
