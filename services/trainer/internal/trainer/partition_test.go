package trainer

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/greenwave-city/greenwave/pkg/features"
	"github.com/greenwave-city/greenwave/pkg/kafkatest"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/topics"
	"github.com/greenwave-city/greenwave/pkg/train"
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

// TestRestoreReplayIsExact runs the crash the processor's order allows: the snapshots of a batch are
// acknowledged, then the process dies before the offsets are committed, so the restarted partition restores the
// snapshots and replays frames they already contain. It also covers a crash in the middle of a checkpoint
// that acknowledged only some horizons of a learner. The result must equal an uninterrupted run, and replays
// must change nothing. The second stream crosses a feature-set upgrade in the crashed batch, so the restore
// finds snapshots of the old feature set, of the new one, or of both (a partial checkpoint), and replays frames
// of both.
func TestRestoreReplayIsExact(t *testing.T) {
	t.Parallel()
	const windows, batch = 120, 25
	names := topics.DefaultNames("test.")
	for _, fx := range []struct {
		name string
		// upgradeAt is the first window of feature set 2 (-1: the stream keeps pkg/features' feature set).
		upgradeAt int
	}{
		{name: "one feature set", upgradeAt: -1},
		{name: "feature-set upgrade in the crashed batch", upgradeAt: 40},
	} {
		rng := rand.New(rand.NewPCG(3, 4))
		var frames []*greenwavev1.IntersectionFeatures
		for w := range windows {
			for _, in := range []string{"I-1", "I-2"} {
				fsv, fn := features.SetVersion, features.Names()
				switch {
				case fx.upgradeAt < 0:
				case w < fx.upgradeAt:
					fsv, fn = 1, upgradeNamesV1
				default:
					fsv, fn = 2, upgradeNamesV2
				}
				frames = append(frames, frameWith(in, w, approachIDs(2), rng, fsv, fn))
			}
		}
		msgs := messages(t, 0, frames...)

		whole, wm := newTestPartition(names)
		for _, m := range msgs {
			if _, err := whole.Handle(context.Background(), m); err != nil {
				t.Fatal(err)
			}
		}
		if n, want := testutil.ToFloat64(wm.upgrades), map[bool]float64{false: 0, true: 4}[fx.upgradeAt >= 0]; n != want {
			t.Fatalf("%s: %v upgrades in the uninterrupted run, want %v", fx.name, n, want)
		}
		want := learnerSnapshots(whole)

		for _, tc := range []struct {
			name string
			// partial keeps only the first n records of the crashed checkpoint (-1: all of them).
			partial int
		}{
			{name: "crash after the checkpoint was acknowledged", partial: -1},
			{name: "crash after one horizon of a learner was acknowledged", partial: 1},
			{name: "crash after a learner and a half", partial: 5},
			{name: "crash before any snapshot was acknowledged", partial: 0},
		} {
			t.Run(fx.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				brokers, names := kafkatest.Setup(t, 1)
				prod := stream.NewProducer(brokers, stream.ProducerConfig{})
				defer prod.Close()
				p, _ := newTestPartition(names)
				committed := 0
				// Three batches checkpointed and committed, then a fourth checkpointed (maybe partly) but not committed.
				for b := range 4 {
					for _, m := range msgs[b*batch : (b+1)*batch] {
						if _, err := p.Handle(ctx, m); err != nil {
							t.Fatal(err)
						}
					}
					outs, err := p.Checkpoint(ctx)
					if err != nil {
						t.Fatal(err)
					}
					if b == 3 && tc.partial >= 0 {
						outs = outs[:tc.partial]
					}
					if err := prod.Write(ctx, outs...); err != nil {
						t.Fatal(err)
					}
					if b < 3 {
						committed = (b + 1) * batch
					}
				}
				m := newMetrics(testRegistry())
				restored, err := restorePartition(ctx, brokers, 0, 0, testConfig(), names, m, zap.NewNop())
				if err != nil {
					t.Fatal(err)
				}
				if n := testutil.ToFloat64(m.restoreFailures); n != 0 {
					t.Fatalf("%v restore failures", n)
				}
				if len(restored.learners) != 4 {
					t.Fatalf("restored %d learners, want 4", len(restored.learners))
				}
				for _, m := range msgs[committed:] {
					if _, err := restored.Handle(ctx, m); err != nil {
						t.Fatal(err)
					}
				}
				got := learnerSnapshots(restored)
				if len(got) != len(want) {
					t.Fatalf("%d models after restore and replay, want %d", len(got), len(want))
				}
				for id, w := range want {
					if !proto.Equal(w, got[id]) {
						t.Errorf("model %s after restore and replay differs from the uninterrupted run (version %d, want %d)",
							id, got[id].GetVersion(), w.GetVersion())
					}
				}
			})
		}
	}
}

// TestRestoreSkipsWhatItCannotRead checks that an undecodable record and a learner whose horizons are missing
// are counted, and that the partition still starts.
func TestRestoreSkipsWhatItCannotRead(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	brokers, names := kafkatest.Setup(t, 1)
	prod := stream.NewProducer(brokers, stream.ProducerConfig{})
	defer prod.Close()
	p, _ := newTestPartition(names)
	rng := rand.New(rand.NewPCG(5, 6))
	for _, m := range messages(t, 0, frame("I-1", 0, approachIDs(2), rng)) {
		if _, err := p.Handle(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	outs, err := p.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A0 complete, A1 with its 30-minute and one-hour snapshots missing, then garbage.
	outs = append(outs[:4], stream.Output{Topic: names.Models, Key: []byte("I-1/A9/900/flow"), Value: []byte{0xff, 0x01}})
	if err := prod.Write(ctx, outs...); err != nil {
		t.Fatal(err)
	}
	m := newMetrics(testRegistry())
	restored, err := restorePartition(ctx, brokers, 0, 0, testConfig(), names, m, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if len(restored.learners) != 1 || restored.learners["I-1/A0"] == nil {
		t.Errorf("restored %v, want only I-1/A0", restored.learners)
	}
	if n := testutil.ToFloat64(m.restoreFailures); n != 2 {
		t.Errorf("%v restore failures counted, want 2 (the garbage record and I-1/A1)", n)
	}
}

// TestCheckpointDue: checkpoints follow event time (UTC-aligned multiples of the interval); a quiet partition
// is checkpointed only when its input is historical.
func TestCheckpointDue(t *testing.T) {
	t.Parallel()
	day := int64(24 * 3600)
	now := time.Unix(100*day+3600, 0)
	tests := []struct {
		name                    string
		every, idleAfter        time.Duration
		eventTime, checkpointed int64
		idle                    time.Duration
		want                    bool
	}{
		{"every batch", 0, 0, 5, 5, 0, true},
		{"first window", 24 * time.Hour, 0, 10*day + 300, 0, 0, true},
		{"same day", 24 * time.Hour, 0, 10*day + 7200, 10*day + 300, 0, false},
		{"midnight crossed", 24 * time.Hour, 0, 11 * day, 10*day + 300, 0, true},
		{"replay idle", 24 * time.Hour, 10 * time.Second, 10*day + 7200, 10*day + 300, 10 * time.Second, true},
		{"replay not idle long enough", 24 * time.Hour, 10 * time.Second, 10*day + 7200, 10*day + 300, 9 * time.Second, false},
		{"replay idle, idle checkpoints off", 24 * time.Hour, 0, 10*day + 7200, 10*day + 300, time.Hour, false},
		{"live idle", 24 * time.Hour, 10 * time.Second, 100*day + 1800, 100*day + 300, time.Hour, false},
	}
	for _, tc := range tests {
		p := &partition{checkpointEvery: tc.every, checkpointIdle: tc.idleAfter, eventTime: tc.eventTime, checkpointed: tc.checkpointed}
		if got := p.CheckpointDue(now, tc.idle); got != tc.want {
			t.Errorf("%s: CheckpointDue = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestPublishDue: a learner's served snapshots follow its own event time — its first window, the first window
// it can forecast after one it could not, and each UTC-aligned multiple of the interval.
func TestPublishDue(t *testing.T) {
	t.Parallel()
	day := int64(24 * 3600)
	forecast := train.Update{Horizons: []train.HorizonUpdate{{Forecast: 1}, {Forecast: 2}}}
	warming := train.Update{Horizons: []train.HorizonUpdate{{Forecast: 1}, {Forecast: math.NaN()}}}
	tests := []struct {
		name  string
		every time.Duration
		last  *servedMark // nil: never published
		end   int64
		upd   train.Update
		want  bool
	}{
		{"first window", 12 * time.Hour, nil, 10*day + 900, warming, true},
		{"same half day, warming up", 12 * time.Hour, &servedMark{end: 10 * day, ready: false}, 10*day + 900, warming, false},
		{"first forecast", 12 * time.Hour, &servedMark{end: 10 * day, ready: false}, 10*day + 900, forecast, true},
		{"same half day, forecasting", 12 * time.Hour, &servedMark{end: 10*day + 900, ready: true}, 10*day + 1800, forecast, false},
		{"noon crossed", 12 * time.Hour, &servedMark{end: 10*day + 900, ready: true}, 10*day + day/2, forecast, true},
		{"no forecast after a reset does not publish", 12 * time.Hour, &servedMark{end: 10*day + 900, ready: true}, 10*day + 1800, warming, false},
		{"every window", 0, &servedMark{end: 10*day + 900, ready: true}, 10*day + 1800, forecast, true},
	}
	for _, tc := range tests {
		p := &partition{publishEvery: tc.every, served: map[string]servedMark{}}
		if tc.last != nil {
			p.served["I-1/A0"] = *tc.last
		}
		if got := p.publishDue("I-1/A0", tc.end, tc.upd); got != tc.want {
			t.Errorf("%s: publishDue = %v, want %v", tc.name, got, tc.want)
		}
	}
}
