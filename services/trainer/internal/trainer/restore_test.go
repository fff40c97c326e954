package trainer

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/greenwave-city/greenwave/pkg/features"
	"github.com/greenwave-city/greenwave/pkg/kafkatest"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/topics"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

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
				kafkaConn, names := kafkatest.Setup(t, 1)
				prod := stream.NewProducer(kafkaConn, stream.ProducerConfig{})
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
				restored, err := restorePartition(ctx, kafkaConn, 0, 0, testConfig(), names, m, zap.NewNop())
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
	kafkaConn, names := kafkatest.Setup(t, 1)
	prod := stream.NewProducer(kafkaConn, stream.ProducerConfig{})
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
	restored, err := restorePartition(ctx, kafkaConn, 0, 0, testConfig(), names, m, zap.NewNop())
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

// TestRestoreKeepsItsTarget: trainers of different targets share the changelog; each restores only its own
// target's models.
func TestRestoreKeepsItsTarget(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	kafkaConn, names := kafkatest.Setup(t, 1)
	prod := stream.NewProducer(kafkaConn, stream.ProducerConfig{})
	defer prod.Close()
	p, _ := newTestPartition(names) // flow
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
	if err := prod.Write(ctx, outs...); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		target string
		want   int
	}{{"flow", 2}, {"speed", 0}} {
		cfg := testConfig()
		cfg.Target = tc.target
		m := newMetrics(testRegistry())
		restored, err := restorePartition(ctx, kafkaConn, 0, 0, cfg, names, m, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		if len(restored.learners) != tc.want {
			t.Errorf("%s trainer restored %d learners, want %d", tc.target, len(restored.learners), tc.want)
		}
		if n := testutil.ToFloat64(m.restoreFailures); n != 0 {
			t.Errorf("%s trainer: %v restore failures, want 0 (another target's models are not failures)", tc.target, n)
		}
	}
}

// TestStateSize: the reported size is the partition's learners and the bytes of their changelog snapshots,
// the same for the partition that wrote them and for one restored from them.
func TestStateSize(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	brokers, names := kafkatest.Setup(t, 1)
	prod := stream.NewProducer(brokers, stream.ProducerConfig{})
	defer prod.Close()
	p, m := newTestPartition(names)
	if got := p.StateSize(); got != (stream.StateSize{}) {
		t.Fatalf("empty partition: StateSize() = %+v", got)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for _, m := range messages(t, 0, frame("I-1", 0, approachIDs(2), rng)) {
		if _, err := p.Handle(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if got := p.StateSize(); got.Keys != 2 || got.Bytes != 0 {
		t.Fatalf("before any checkpoint: StateSize() = %+v, want 2 learners and no changelog bytes", got)
	}
	// The drift and promotion counters of every horizon exist from the first window, at 0 (counted before
	// WithLabelValues below would create them).
	if n := testutil.CollectAndCount(m.drifts); n != 3 {
		t.Errorf("%d drifts_total series after one window, want one per horizon (3)", n)
	}
	if n := testutil.CollectAndCount(m.promotions); n != 3 {
		t.Errorf("%d promotions_total series after one window, want one per horizon (3)", n)
	}
	for _, hs := range []string{"900", "1800", "3600"} {
		if n := testutil.ToFloat64(m.drifts.WithLabelValues(hs)); n != 0 {
			t.Errorf("drifts_total{horizon_s=%q} = %v after one window", hs, n)
		}
	}
	outs, err := p.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := stream.StateSize{Keys: 2}
	for _, o := range outs {
		if o.Topic == names.TrainerState {
			want.Bytes += int64(stream.MessageBytes(o.Message()))
		}
	}
	if got := p.StateSize(); got != want || want.Bytes == 0 {
		t.Fatalf("after the checkpoint: StateSize() = %+v, want %+v", got, want)
	}
	if err := prod.Write(ctx, outs...); err != nil {
		t.Fatal(err)
	}
	restored, err := restorePartition(ctx, brokers, 0, 0, testConfig(), names, newMetrics(testRegistry()), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if got := restored.StateSize(); got != want {
		t.Errorf("restored: StateSize() = %+v, want %+v", got, want)
	}
}
