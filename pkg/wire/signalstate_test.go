package wire

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/greenwave-city/greenwave/pkg/signal"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// signalStateFixture is a state with every field set, a profile of several approaches and buckets among them.
func signalStateFixture() (*SignalState, SignalCheckpoint) {
	var prof signal.Profile
	prof.Observe("N", 8, 123.456789, 0.1)
	prof.Observe("N", 8, 1e-300, 0.1)
	prof.Observe("N", 0, 40, 0.1)
	prof.Observe("E", 167, 0, 0.1)
	prof.Observe("S", 100, 612.5, 0.25)
	prof.Observe("S", 5, 88, 0.25)
	st := &SignalState{
		Plan: &greenwavev1.SignalPlan{SchemaVersion: 1, PlanId: "A/1700000000", IntersectionId: "A", CycleS: 0.1 + 0.2, OffsetS: 12.5,
			ValidFrom: timestamppb.New(time.Unix(1700000300, 0)), ValidUntil: timestamppb.New(time.Unix(1700001200, 0)),
			Reason: greenwavev1.PlanReason_PLAN_REASON_PREDICTIVE, ReasonDetail: "webster", OverrideId: "o",
			Phases: []*greenwavev1.PhaseTiming{{PhaseId: "NS", GreenS: 30, YellowS: 3, AllRedS: 2, FlowRatio: 0.3, Approaches: []string{"N", "S"}}}},
		WindowEnd: time.Unix(1700000000, 123456789).UTC(), PlannedThrough: time.Unix(1700000900, 0).UTC(), Profile: prof,
		AppliedOverride: "a", ExpiredOverride: "b",
	}
	return st, SignalCheckpoint{PlansOffset: 1234, Seq: 7, Records: 3}
}

// TestSignalStateGolden: the changelog value is byte-identical to the one signal-control wrote before the format
// moved to pkg/wire, and its header is the one on the broker.
func TestSignalStateGolden(t *testing.T) {
	t.Parallel()
	if SignalStatePayload != "greenwave.v1.SignalControlState" {
		t.Errorf("SignalStatePayload = %q", SignalStatePayload)
	}
	b, err := EncodeSignalState(signalStateFixture())
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "signal-state.golden", b)
}

func TestSignalStateRoundTrip(t *testing.T) {
	t.Parallel()
	full, _ := signalStateFixture()
	tests := []struct {
		name string
		st   *SignalState
	}{
		{"empty", &SignalState{}},
		{"full", full},
	}
	mark := SignalCheckpoint{PlansOffset: 1234, Seq: 7, Records: 3}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, err := EncodeSignalState(tc.st, mark)
			if err != nil {
				t.Fatal(err)
			}
			got, gotMark, err := DecodeSignalState(SignalStatePayload, b)
			if err != nil {
				t.Fatal(err)
			}
			if gotMark != mark {
				t.Errorf("checkpoint mark: got %+v, want %+v", gotMark, mark)
			}
			if !proto.Equal(got.Plan, tc.st.Plan) || !got.WindowEnd.Equal(tc.st.WindowEnd) || !got.PlannedThrough.Equal(tc.st.PlannedThrough) || got.AppliedOverride != tc.st.AppliedOverride ||
				got.ExpiredOverride != tc.st.ExpiredOverride || fmt.Sprint(got.Profile) != fmt.Sprint(tc.st.Profile) {
				t.Errorf("round trip: got %+v, want %+v", got, tc.st)
			}
			b2, _ := EncodeSignalState(got, gotMark)
			if string(b2) != string(b) {
				t.Errorf("re-encoding differs:\n%s\n%s", b, b2)
			}
		})
	}
}

// TestSignalStateLegacy: values of the releases before the protobuf format still restore, with everything in them.
func TestSignalStateLegacy(t *testing.T) {
	t.Parallel()
	full, mark := signalStateFixture()
	planBytes, _ := proto.Marshal(full.Plan)
	js, _ := json.Marshal(signalStateJSON{Version: signalStateJSONVersion, Plan: planBytes, WindowEndUnixNano: full.WindowEnd.UnixNano(),
		Profile: full.Profile, AppliedOverride: full.AppliedOverride, ExpiredOverride: full.ExpiredOverride})
	if got, m, err := DecodeSignalState("", js); m != (SignalCheckpoint{}) || err != nil || !proto.Equal(got.Plan, full.Plan) || !got.WindowEnd.Equal(full.WindowEnd) ||
		fmt.Sprint(got.Profile) != fmt.Sprint(full.Profile) || got.AppliedOverride != "a" || got.ExpiredOverride != "b" {
		t.Errorf("JSON state of the previous release: %+v, %v", got, err)
	}
	if pb, _ := EncodeSignalState(full, mark); len(pb) >= len(js) {
		t.Errorf("protobuf state %d bytes, JSON %d: want smaller", len(pb), len(js))
	}
	// Changelog values written by the version before (a bare plan) still restore.
	legacy, _ := proto.Marshal(&greenwavev1.SignalPlan{PlanId: "A/1", CycleS: 60, ValidFrom: timestamppb.New(time.Unix(100, 0))})
	st, m, err := DecodeSignalState("", legacy)
	if err != nil || m != (SignalCheckpoint{}) || st.Plan.GetCycleS() != 60 || st.WindowEnd.Unix() != 100 {
		t.Errorf("legacy state: %+v, %v", st, err)
	}
}

// FuzzDecodeSignalState: changelog values of the current format decode or fail cleanly, and what decodes
// re-encodes to the same bytes.
func FuzzDecodeSignalState(f *testing.F) {
	var prof signal.Profile
	prof.Observe("N", 3, 120, 0.1)
	b, _ := EncodeSignalState(&SignalState{Plan: &greenwavev1.SignalPlan{PlanId: "x"}, WindowEnd: time.Unix(5, 0), Profile: prof},
		SignalCheckpoint{PlansOffset: 9, Seq: 2, Records: 1})
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		st, mark, err := DecodeSignalState(SignalStatePayload, b)
		if err != nil {
			return
		}
		checkReencodes(t, st, mark)
	})
}

// checkReencodes checks that a decoded state encodes, decodes back with its checkpoint, and encodes the same
// bytes again.
func checkReencodes(t *testing.T, st *SignalState, mark SignalCheckpoint) {
	t.Helper()
	b2, err := EncodeSignalState(st, mark)
	if err != nil {
		t.Fatalf("decoded state does not encode: %v", err)
	}
	st2, mark2, err := DecodeSignalState(SignalStatePayload, b2)
	if err != nil || mark2 != mark {
		t.Fatalf("re-encoded state does not decode: %v (mark %+v, want %+v)", err, mark2, mark)
	}
	if b3, _ := EncodeSignalState(st2, mark2); string(b3) != string(b2) {
		t.Fatal("encoding not stable")
	}
}

// FuzzDecodeLegacySignalState: values without the payload header (earlier releases) decode or fail cleanly, and
// what decodes encodes.
func FuzzDecodeLegacySignalState(f *testing.F) {
	b, _ := proto.Marshal(&greenwavev1.SignalPlan{PlanId: "x"})
	f.Add(b)
	f.Add([]byte(`{"version":2,"profile":{"cells":{"N":{"3":{"m":1,"n":1}}}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, _, err := DecodeSignalState("", b)
		if err != nil {
			return
		}
		// A legacy state upgrades to the current encoding, which is then stable.
		checkReencodes(t, st, SignalCheckpoint{})
	})
}
