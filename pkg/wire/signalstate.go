package wire

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

// SignalStatePayload is the greenwave-payload header of the signal-control changelog values EncodeSignalState
// writes. Values without it were written by earlier releases (JSON, or a bare plan).
var SignalStatePayload = string((&greenwavev1.SignalControlState{}).ProtoReflect().Descriptor().FullName())

// signalStateSchemaVersion is SignalControlState.schema_version.
const signalStateSchemaVersion = 1

// signalStateJSONVersion is the version of the JSON changelog value the release before the protobuf one wrote
// (still read).
const signalStateJSONVersion = 2

// SignalState is what signal-control remembers per intersection, snapshotted to its compacted changelog
// (greenwave.signal-control.state, keyed by intersection).
type SignalState struct {
	// Plan is the last plan issued (rate limiting, GetPlan, WatchPlans after a restart); nil before the first.
	Plan *greenwavev1.SignalPlan
	// WindowEnd is the end of the last prediction window applied (planned, or rejected): a window not after it is
	// a replay.
	WindowEnd time.Time
	// PlannedThrough is the window end of the newest prediction whose plan was issued, zero before the first.
	// After a restore it can be later than WindowEnd: the windows in between were planned before the restart and
	// are only learned when replayed.
	PlannedThrough time.Time
	// Profile is the learned hour-of-week flow profile the time-of-day fallback plans from.
	Profile signal.Profile
	// AppliedOverride is the override whose plan was last issued immediately (so it is issued once).
	AppliedOverride string
	// ExpiredOverride is the override whose expiry audit was last written (so it is written once).
	ExpiredOverride string
}

// SignalCheckpoint is what a changelog record says about the checkpoint that wrote it: where a restore reads the
// plans topic from (see SignalControlState).
type SignalCheckpoint struct {
	// PlansOffset is the end offset of the plans partition at the checkpoint: plans below it are in the record.
	PlansOffset int64
	// Seq numbers the partition's checkpoints; Records is how many records checkpoint Seq wrote.
	Seq     uint64
	Records uint32
}

// signalStateJSON is the JSON form of SignalState that the release before the protobuf one wrote (version 2):
// read once after an upgrade, never written.
type signalStateJSON struct {
	Version           int            `json:"version"`
	Plan              []byte         `json:"plan,omitempty"`
	WindowEndUnixNano int64          `json:"window_end_unix_nano,omitempty"`
	Profile           signal.Profile `json:"profile"`
	AppliedOverride   string         `json:"applied_override,omitempty"`
	ExpiredOverride   string         `json:"expired_override,omitempty"`
}

// EncodeSignalState returns the changelog value of st, sent with the header SignalStatePayload: a
// SignalControlState (binary protobuf, with the profile as packed per-approach arrays: about a third of the JSON's
// bytes), deterministic for a given state and checkpoint.
func EncodeSignalState(st *SignalState, mark SignalCheckpoint) ([]byte, error) {
	m := &greenwavev1.SignalControlState{SchemaVersion: signalStateSchemaVersion, Plan: st.Plan,
		AppliedOverride: st.AppliedOverride, ExpiredOverride: st.ExpiredOverride,
		PlansOffset: mark.PlansOffset, Checkpoint: mark.Seq, CheckpointRecords: mark.Records}
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

// DecodeSignalState reads a changelog record: a SignalControlState when its payload header is SignalStatePayload,
// else a value of an earlier release (the JSON record, or a bare SignalPlan), whose zero checkpoint makes a
// restore read the plans partition whole.
func DecodeSignalState(payload string, b []byte) (*SignalState, SignalCheckpoint, error) {
	if payload == SignalStatePayload {
		return decodeSignalStateProto(b)
	}
	st, err := decodeLegacySignalState(b)
	return st, SignalCheckpoint{}, err
}

// decodeSignalStateProto reads a SignalControlState value.
func decodeSignalStateProto(b []byte) (*SignalState, SignalCheckpoint, error) {
	var m greenwavev1.SignalControlState
	if err := proto.Unmarshal(b, &m); err != nil {
		return nil, SignalCheckpoint{}, fmt.Errorf("decode state: %w", err)
	}
	if m.GetSchemaVersion() != signalStateSchemaVersion {
		return nil, SignalCheckpoint{}, fmt.Errorf("decode state: schema version %d, want %d", m.GetSchemaVersion(), signalStateSchemaVersion)
	}
	if m.GetPlansOffset() < 0 {
		return nil, SignalCheckpoint{}, fmt.Errorf("decode state: plans offset %d", m.GetPlansOffset())
	}
	mark := SignalCheckpoint{PlansOffset: m.GetPlansOffset(), Seq: m.GetCheckpoint(), Records: m.GetCheckpointRecords()}
	st, err := signalStateFromProto(&m)
	if err != nil {
		return nil, SignalCheckpoint{}, err
	}
	return st, mark, nil
}

// signalStateFromProto converts a decoded SignalControlState, checking what a decoder must.
func signalStateFromProto(m *greenwavev1.SignalControlState) (*SignalState, error) {
	st := &SignalState{Plan: m.GetPlan(), AppliedOverride: m.GetAppliedOverride(), ExpiredOverride: m.GetExpiredOverride()}
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

// decodeLegacySignalState reads a changelog value of an earlier release: the JSON record, or a bare SignalPlan
// (whose valid_from was the end of the window it planned). A protobuf encoding never starts with '{' (that
// would be field 15 with the deprecated group wire type), so the two cannot be confused.
func decodeLegacySignalState(b []byte) (*SignalState, error) {
	if len(b) > 0 && b[0] == '{' {
		var rec signalStateJSON
		if err := json.Unmarshal(b, &rec); err != nil {
			return nil, fmt.Errorf("decode state: %w", err)
		}
		if rec.Version != signalStateJSONVersion {
			return nil, fmt.Errorf("decode state: version %d, want %d", rec.Version, signalStateJSONVersion)
		}
		st := &SignalState{Profile: rec.Profile, AppliedOverride: rec.AppliedOverride, ExpiredOverride: rec.ExpiredOverride}
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
	return &SignalState{Plan: &plan, WindowEnd: plan.GetValidFrom().AsTime()}, nil
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
