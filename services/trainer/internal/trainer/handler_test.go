package trainer

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/topics"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// TestHandleRejects checks that bad frames are dead-lettered with a specific reason, and that the good
// approaches of a partly bad frame are applied all the same.
func TestHandleRejects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		value   func(rng *rand.Rand) []byte
		reason  greenwavev1.RejectReason
		detail  string
		applied int // approach vectors applied
	}{
		{name: "not protobuf", value: func(rng *rand.Rand) []byte { return []byte{0xff, 0x01} }, reason: greenwavev1.RejectReason_REJECT_REASON_MALFORMED, detail: "decode features"},
		{name: "newer schema", value: func(rng *rand.Rand) []byte {
			f := frame("I-1", 0, approachIDs(2), rng)
			f.SchemaVersion = 99
			return mustMarshal(t, f)
		}, reason: greenwavev1.RejectReason_REJECT_REASON_UNSUPPORTED_SCHEMA},
		{name: "no intersection", value: func(rng *rand.Rand) []byte {
			f := frame("", 0, approachIDs(2), rng)
			return mustMarshal(t, f)
		}, reason: greenwavev1.RejectReason_REJECT_REASON_MISSING_FIELD, detail: "intersection_id"},
		{name: "slash in intersection", value: func(rng *rand.Rand) []byte { return mustMarshal(t, frame("I/1", 0, approachIDs(2), rng)) },
			reason: greenwavev1.RejectReason_REJECT_REASON_MALFORMED, detail: "contains '/'"},
		{name: "no approaches", value: func(rng *rand.Rand) []byte { return mustMarshal(t, frame("I-1", 0, nil, rng)) },
			reason: greenwavev1.RejectReason_REJECT_REASON_MISSING_FIELD, detail: "no approaches"},
		{name: "one approach with a NaN feature", value: func(rng *rand.Rand) []byte {
			f := frame("I-1", 0, approachIDs(3), rng)
			f.Approaches[1].Values[1] = math.NaN()
			return mustMarshal(t, f)
		}, reason: greenwavev1.RejectReason_REJECT_REASON_MALFORMED, detail: `approach "A1"`, applied: 2},
		{name: "repeated approach", value: func(rng *rand.Rand) []byte {
			f := frame("I-1", 0, []string{"A0", "A0"}, rng)
			return mustMarshal(t, f)
		}, reason: greenwavev1.RejectReason_REJECT_REASON_INCONSISTENT, detail: "repeated", applied: 1},
		{name: "misaligned window", value: func(rng *rand.Rand) []byte {
			f := frame("I-1", 0, approachIDs(1), rng)
			f.WindowStart.Seconds += 7
			return mustMarshal(t, f)
		}, reason: greenwavev1.RejectReason_REJECT_REASON_MALFORMED, detail: "window"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Each subtest has its own generator: the subtests run in parallel.
			rng := rand.New(rand.NewPCG(1, 2))
			p, m := newTestPartition(topics.DefaultNames("test."))
			msgs := messages(t, 0, frame("I-1", 0, nil, rng))
			msgs[0].Value = tc.value(rng)
			_, err := p.Handle(context.Background(), msgs[0])
			var rej *stream.RejectError
			if !errors.As(err, &rej) {
				t.Fatalf("Handle = %v, want a RejectError", err)
			}
			if rej.Reason != tc.reason || !strings.Contains(rej.Detail, tc.detail) {
				t.Errorf("rejected %v %q, want %v containing %q", rej.Reason, rej.Detail, tc.reason, tc.detail)
			}
			if got := int(testutil.ToFloat64(m.applied)); got != tc.applied {
				t.Errorf("%d approach vectors applied, want %d", got, tc.applied)
			}
			if len(p.dirty) != tc.applied {
				t.Errorf("%d learners to snapshot, want %d", len(p.dirty), tc.applied)
			}
		})
	}
}

func mustMarshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestHandleWrongPartition checks that a frame outside its intersection's partition is dead-lettered: its
// model's snapshots would land in a partition this handler never restores.
func TestHandleWrongPartition(t *testing.T) {
	t.Parallel()
	m := newMetrics(testRegistry())
	want := stream.PartitionFor("I-1", 3)
	p := newPartition(want, 3, testConfig(), topics.DefaultNames("test."), m, zap.NewNop())
	msg := messages(t, (want+1)%3, frame("I-1", 0, approachIDs(1), rand.New(rand.NewPCG(1, 1))))[0]
	_, err := p.Handle(context.Background(), msg)
	var rej *stream.RejectError
	if !errors.As(err, &rej) || rej.Reason != greenwavev1.RejectReason_REJECT_REASON_INCONSISTENT {
		t.Fatalf("Handle = %v, want INCONSISTENT", err)
	}
	msg.Partition = want
	if _, err := p.Handle(context.Background(), msg); err != nil {
		t.Fatalf("frame in its partition: %v", err)
	}
}
