package signalcontrol

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/greenwave-city/greenwave/pkg/signal"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// statePayload is the greenwave-payload header of the changelog values encodeState writes: a
// greenwave.v1.SignalControlState. Values without it were written by earlier versions (JSON, or a bare plan).
const statePayload = "greenwave.v1.SignalControlState"

// stateSchemaVersion is SignalControlState.schema_version.
const stateSchemaVersion = 1

// stateVersion is the version of the JSON changelog value the previous release wrote (still read).
const stateVersion = 2

// intersectionState is what signal-control remembers per intersection, snapshotted to the compacted
// greenwave.signal-control.state changelog (keyed by intersection) at the event-time checkpoint cadence
// (SIGNAL_CHECKPOINT_INTERVAL); the plans topic holds what was issued since.
type intersectionState struct {
	// Plan is the last plan issued (rate limiting, GetPlan, WatchPlans after a restart); nil before the first.
	Plan *greenwavev1.SignalPlan
	// WindowEnd is the end of the last prediction window applied (planned, or rejected): a window not after it is
	// a replay.
	WindowEnd time.Time
	// PlannedThrough is the window end of the newest prediction whose plan was issued, zero before the first.
	// After a restore it can be later than WindowEnd: the windows in between were planned before the restart and
	// are only learned when replayed (see partition).
	PlannedThrough time.Time
	// Profile is the learned hour-of-week flow profile the time-of-day fallback plans from.
	Profile signal.Profile
	// AppliedOverride is the override whose plan was last issued immediately (so it is issued once).
	AppliedOverride string
	// ExpiredOverride is the override whose expiry audit was last written (so it is written once).
	ExpiredOverride string
}

// checkpointMark is what a changelog record says about the checkpoint that wrote it (see SignalControlState).
type checkpointMark struct {
	// plansOffset is the end offset of the plans partition at the checkpoint: plans below it are in the record.
	plansOffset int64
	// seq numbers the partition's checkpoints; records is how many records checkpoint seq wrote.
	seq     uint64
	records uint32
}

// stateRecord is the JSON form of intersectionState that the previous release wrote (version 2): read once
// after an upgrade, never written.
type stateRecord struct {
	Version           int            `json:"version"`
	Plan              []byte         `json:"plan,omitempty"`
	WindowEndUnixNano int64          `json:"window_end_unix_nano,omitempty"`
	Profile           signal.Profile `json:"profile"`
	AppliedOverride   string         `json:"applied_override,omitempty"`
	ExpiredOverride   string         `json:"expired_override,omitempty"`
}

// encodeState returns the changelog value of st: a SignalControlState (binary protobuf, with the profile as
// packed per-approach arrays: about a third of the JSON's bytes), deterministic for a given state.
func encodeState(st *intersectionState, mark checkpointMark) ([]byte, error) {
	m := &greenwavev1.SignalControlState{SchemaVersion: stateSchemaVersion, Plan: st.Plan,
		AppliedOverride: st.AppliedOverride, ExpiredOverride: st.ExpiredOverride,
		PlansOffset: mark.plansOffset, Checkpoint: mark.seq, CheckpointRecords: mark.records}
	if !st.WindowEnd.IsZero() {
		m.WindowEnd = timestamppb.New(st.WindowEnd)
	}
	if !st.PlannedThrough.IsZero() {
		m.PlannedThrough = timestamppb.New(st.PlannedThrough)
	}
	approaches := make([]string, 0, len(st.Profile.Cells))
	for a, cells := range st.Profile.Cells {
		if len(cells) > 0 {
			approaches = append(approaches, a)
		}
	}
	sort.Strings(approaches)
	for _, a := range approaches {
		cells := st.Profile.Cells[a]
		buckets := make([]int, 0, len(cells))
		for b := range cells {
			buckets = append(buckets, b)
		}
		sort.Ints(buckets)
		ap := &greenwavev1.ApproachFlowProfile{ApproachId: a}
		for _, b := range buckets {
			if b < 0 || b >= signal.ProfileBuckets {
				return nil, fmt.Errorf("encode state: profile bucket %d of approach %s", b, a)
			}
			ap.Bucket = append(ap.Bucket, uint32(b))
			ap.MeanVph = append(ap.MeanVph, cells[b].MeanVPH)
			ap.Samples = append(ap.Samples, cells[b].Samples)
		}
		m.Profile = append(m.Profile, ap)
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode state: %w", err)
	}
	return b, nil
}

// decodeProtoState reads a SignalControlState value.
func decodeProtoState(b []byte) (*intersectionState, checkpointMark, error) {
	var m greenwavev1.SignalControlState
	if err := proto.Unmarshal(b, &m); err != nil {
		return nil, checkpointMark{}, fmt.Errorf("decode state: %w", err)
	}
	if m.GetSchemaVersion() != stateSchemaVersion {
		return nil, checkpointMark{}, fmt.Errorf("decode state: schema version %d, want %d", m.GetSchemaVersion(), stateSchemaVersion)
	}
	if m.GetPlansOffset() < 0 {
		return nil, checkpointMark{}, fmt.Errorf("decode state: plans offset %d", m.GetPlansOffset())
	}
	mark := checkpointMark{plansOffset: m.GetPlansOffset(), seq: m.GetCheckpoint(), records: m.GetCheckpointRecords()}
	st, err := stateFromProto(&m)
	if err != nil {
		return nil, checkpointMark{}, err
	}
	return st, mark, nil
}

// stateFromProto converts a decoded SignalControlState, checking what a decoder must.
func stateFromProto(m *greenwavev1.SignalControlState) (*intersectionState, error) {
	st := &intersectionState{Plan: m.GetPlan(), AppliedOverride: m.GetAppliedOverride(), ExpiredOverride: m.GetExpiredOverride()}
	if w := m.GetWindowEnd(); w != nil {
		if err := w.CheckValid(); err != nil {
			return nil, fmt.Errorf("decode state: window end: %w", err)
		}
		st.WindowEnd = w.AsTime()
	}
	if w := m.GetPlannedThrough(); w != nil {
		if err := w.CheckValid(); err != nil {
			return nil, fmt.Errorf("decode state: planned through: %w", err)
		}
		st.PlannedThrough = w.AsTime()
	}
	for _, ap := range m.GetProfile() {
		n := len(ap.GetBucket())
		if len(ap.GetMeanVph()) != n || len(ap.GetSamples()) != n || n == 0 {
			return nil, fmt.Errorf("decode state: profile of approach %s has %d buckets, %d means and %d counts", ap.GetApproachId(),
				n, len(ap.GetMeanVph()), len(ap.GetSamples()))
		}
		if st.Profile.Cells[ap.GetApproachId()] != nil {
			return nil, fmt.Errorf("decode state: profile of approach %s repeated", ap.GetApproachId())
		}
		cells := make(map[int]signal.ProfileCell, n)
		for i, b := range ap.GetBucket() {
			if (i > 0 && b <= ap.GetBucket()[i-1]) || b >= signal.ProfileBuckets {
				return nil, fmt.Errorf("decode state: profile of approach %s: bucket %d out of order or range", ap.GetApproachId(), b)
			}
			cells[int(b)] = signal.ProfileCell{MeanVPH: ap.GetMeanVph()[i], Samples: ap.GetSamples()[i]}
		}
		if st.Profile.Cells == nil {
			st.Profile.Cells = map[string]map[int]signal.ProfileCell{}
		}
		st.Profile.Cells[ap.GetApproachId()] = cells
	}
	if err := checkProfile(st.Profile); err != nil {
		return nil, fmt.Errorf("decode state: %w", err)
	}
	return st, nil
}

// decodeStateRecord reads a changelog record: a SignalControlState when its payload header says so, else a value
// of an earlier release (see decodeState), whose zero mark makes the restore read the plans partition whole.
func decodeStateRecord(payload string, b []byte) (*intersectionState, checkpointMark, error) {
	if payload == statePayload {
		return decodeProtoState(b)
	}
	st, err := decodeState(b)
	return st, checkpointMark{}, err
}

// decodeState reads a changelog value of an earlier release: the JSON record, or a bare SignalPlan
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
