package signalcontrol

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/greenwave-city/greenwave/pkg/broadcast"
	"github.com/greenwave-city/greenwave/pkg/kafkatest"
	"github.com/greenwave-city/greenwave/pkg/signal"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/topics"
	"github.com/greenwave-city/greenwave/pkg/topology"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// restartWindows is how many five-minute windows per intersection the restart test plans: 30 hours, so that
// the hour-of-week profile has several buckets and the time-of-day fallback plans from learned flows.
const restartWindows = 360

// restartPrediction is the prediction of window k of an intersection: flows that vary with k and the
// intersection, every seventh window stale (a time-of-day plan from the learned profile) and every eleventh
// window's observation imputed (not learned), so that plans depend on the profile and the rate limit.
func (h *harness) restartPrediction(id string, k int) stream.Output {
	h.t.Helper()
	shift := float64(id[0]-'A') * 40
	flow := 250 + shift + 180*math.Sin(float64(k)/9)
	opts := []predOpt{func(p *greenwavev1.Prediction, a *greenwavev1.ApproachPrediction) {
		v := flow
		if a.GetApproachId() == "E" {
			v = 0.6*flow + 30*math.Cos(float64(k)/5)
		}
		p.Value, p.Lower, p.Upper = v, v-40, v+40
		a.Observed.FlowVph = v + 25*math.Sin(float64(k)/3)
	}}
	if k%7 == 3 {
		opts = append(opts, stale)
	}
	if k%11 == 5 {
		opts = append(opts, imputed)
	}
	return h.prediction(id, k, opts...)
}

// restartChunks is the input, in chunks of a few windows of every intersection.
func (h *harness) restartChunks() [][]stream.Output {
	var chunks [][]stream.Output
	for k := 0; k < restartWindows; k += 15 {
		var c []stream.Output
		for w := k; w < min(k+15, restartWindows); w++ {
			for _, id := range watchIntersections {
				c = append(c, h.restartPrediction(id, w))
			}
		}
		chunks = append(chunks, c)
	}
	return chunks
}

// finalState waits until the changelog holds, for every intersection, the state after the last window (the
// final checkpoint, which the idle rule writes for this historical input) and returns it.
func (h *harness) finalState(ctx context.Context) map[string]*intersectionState {
	h.t.Helper()
	last := windowStart(restartWindows - 1).Add(5 * time.Minute)
	for {
		got := map[string]*intersectionState{}
		for part := range 2 {
			if err := stream.ReadPartition(ctx, h.kafkaConn, h.names.SignalState, part, func(m kafka.Message) error {
				st, _, err := wire.DecodeSignalState(string(stream.Header(m, stream.HeaderPayload)), m.Value)
				if err != nil {
					return err
				}
				got[string(m.Key)] = st
				return nil
			}); err != nil {
				h.t.Fatalf("read state: %v", err)
			}
		}
		done := len(got) == len(watchIntersections)
		for _, st := range got {
			done = done && st.WindowEnd.Equal(last)
		}
		if done {
			return got
		}
		select {
		case <-ctx.Done():
			h.t.Fatalf("the final state was never checkpointed: %d records", len(got))
		case <-time.After(50 * time.Millisecond): // polling interval
		}
	}
}

// plansOnTopic returns the plans topic's records per intersection, in offset order.
func (h *harness) plansOnTopic(ctx context.Context) map[string][]*greenwavev1.SignalPlan {
	h.t.Helper()
	out := map[string][]*greenwavev1.SignalPlan{}
	for part := range 2 {
		if err := stream.ReadPartition(ctx, h.kafkaConn, h.names.Plans, part, func(m kafka.Message) error {
			var p greenwavev1.SignalPlan
			if err := proto.Unmarshal(m.Value, &p); err != nil {
				return err
			}
			out[string(m.Key)] = append(out[string(m.Key)], &p)
			return nil
		}); err != nil {
			h.t.Fatalf("read plans: %v", err)
		}
	}
	return out
}

// TestRestartEquivalence is signal-control's restart-equivalence test with the checkpoint cadence on (one hour
// of event time, so a restart replays up to an hour of predictions whose plans are mostly issued already). The
// same predictions go to an uninterrupted run and to a run stopped and restarted at seeded random points — some
// right after a chunk is written, some once its first plans are acknowledged, so a stop lands before, between
// and after checkpoints, also in the middle of a batch's writes. Both must end in exactly the same state
// (profile, last plan, planned window, markers), and their plans topics must hold exactly the same plans in the
// same order per intersection: every plan once, none re-issued by a replay, none lost.
func TestRestartEquivalence(t *testing.T) {
	t.Parallel()
	for _, seed := range []uint64{1, 2} {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			run := func(kills map[int]bool, afterAck map[int]bool) (map[string]*intersectionState, map[string][]*greenwavev1.SignalPlan) {
				h := newHarnessWith(t, watchTopology, map[string]string{"SIGNAL_CHECKPOINT_INTERVAL": "1h", "SIGNAL_CHECKPOINT_IDLE": "200ms"})
				prod := stream.NewProducer(h.kafkaConn, stream.ProducerConfig{})
				defer prod.Close()
				for i, chunk := range h.restartChunks() {
					if err := prod.Write(ctx, chunk...); err != nil {
						t.Fatal(err)
					}
					if !kills[i] {
						continue
					}
					if afterAck[i] {
						// Wait for a plan of this chunk: its outputs are acknowledged, its checkpoint likely not yet.
						first := windowStart(i*15 + 1)
						for p, _ := h.hub.Latest("A"); p.GetValidFrom().AsTime().Before(first); p, _ = h.hub.Latest("A") {
							select {
							case <-ctx.Done():
								t.Fatalf("no plan of chunk %d", i)
							case <-time.After(5 * time.Millisecond): // polling interval
							}
						}
					}
					h.stop()
					h.start()
				}
				return h.finalState(ctx), h.plansOnTopic(ctx)
			}
			wantState, wantPlans := run(nil, nil)

			rng := rand.New(rand.NewPCG(seed, 11))
			kills, afterAck := map[int]bool{}, map[int]bool{}
			chunks := (restartWindows + 14) / 15
			for len(kills) < 6 {
				i := rng.IntN(chunks - 1)
				kills[i] = true
				afterAck[i] = rng.IntN(2) == 0
			}
			t.Logf("stopped and restarted after chunks %v (after their first plans: %v)", kills, afterAck)
			gotState, gotPlans := run(kills, afterAck)

			for _, id := range watchIntersections {
				w, g := wantState[id], gotState[id]
				if !proto.Equal(w.Plan, g.Plan) || !w.WindowEnd.Equal(g.WindowEnd) || !w.PlannedThrough.Equal(g.PlannedThrough) || !reflect.DeepEqual(w.Profile, g.Profile) ||
					w.AppliedOverride != g.AppliedOverride || w.ExpiredOverride != g.ExpiredOverride {
					t.Errorf("%s: state after restarts differs:\n got %+v\nwant %+v", id, g, w)
				}
				if len(wantPlans[id]) != restartWindows {
					t.Errorf("%s: uninterrupted run issued %d plans, want %d", id, len(wantPlans[id]), restartWindows)
				}
				if len(gotPlans[id]) != len(wantPlans[id]) {
					t.Errorf("%s: %d plans on the topic after restarts, %d uninterrupted", id, len(gotPlans[id]), len(wantPlans[id]))
				}
				for i := range min(len(gotPlans[id]), len(wantPlans[id])) {
					if !proto.Equal(gotPlans[id][i], wantPlans[id][i]) {
						t.Errorf("%s: plan %d after restarts is %s, uninterrupted %s", id, i, gotPlans[id][i].GetPlanId(), wantPlans[id][i].GetPlanId())
						break
					}
				}
			}
			// The profile and the time-of-day plans were exercised.
			tod := 0
			for _, p := range wantPlans["A"] {
				if p.GetReason() == greenwavev1.PlanReason_PLAN_REASON_TIME_OF_DAY {
					tod++
				}
			}
			if tod == 0 {
				t.Error("no time-of-day plan: the test does not exercise the restored profile")
			}
		})
	}
}

// TestPlansFrom: a restore reads the plans topic from the newest checkpoint's offset when all of that
// checkpoint's records are there, and from the oldest record's offset when the process ended halfway through
// writing it; records of an earlier release (no checkpoint numbers) read the partition whole.
func TestPlansFrom(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		marks map[string]wire.SignalCheckpoint
		want  int64
	}{
		{"no state", nil, 0},
		{"complete newest", map[string]wire.SignalCheckpoint{"A": {PlansOffset: 40, Seq: 3, Records: 2}, "B": {PlansOffset: 40, Seq: 3, Records: 2}, "C": {PlansOffset: 5, Seq: 1, Records: 3}}, 40},
		{"incomplete newest", map[string]wire.SignalCheckpoint{"A": {PlansOffset: 40, Seq: 3, Records: 2}, "B": {PlansOffset: 20, Seq: 2, Records: 2}, "C": {PlansOffset: 5, Seq: 1, Records: 3}}, 5},
		{"earlier release", map[string]wire.SignalCheckpoint{"A": {}, "B": {}}, 0},
		// A's record of the earlier release covers its plans: it would be in checkpoint 1 had it issued any since.
		{"first checkpoint after an upgrade", map[string]wire.SignalCheckpoint{"A": {}, "B": {PlansOffset: 9, Seq: 1, Records: 1}}, 9},
	}
	for _, tc := range tests {
		if got := plansFrom(tc.marks); got != tc.want {
			t.Errorf("%s: plansFrom = %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestCheckpointDue: checkpoints follow event time (UTC-aligned multiples of the interval), come at once after
// an override marker changed, and a quiet partition is checkpointed only when its input is historical.
func TestCheckpointDue(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).Unix()
	tests := []struct {
		name                    string
		every, idleAfter, idle  time.Duration
		eventTime, checkpointed int64
		markers                 bool
		want                    bool
	}{
		{"every batch", 0, 0, 0, day + 10, day + 5, false, true},
		{"same interval", 12 * time.Hour, 10 * time.Second, 0, day + 11*3600, day + 60, false, false},
		{"boundary crossed", 12 * time.Hour, 10 * time.Second, 0, day + 12*3600, day + 11*3600, false, true},
		{"marker changed", 12 * time.Hour, 10 * time.Second, 0, day + 60, day + 60, true, true},
		{"historical and quiet", 12 * time.Hour, 10 * time.Second, 10 * time.Second, day + 60, day, false, true},
		{"historical, not quiet long enough", 12 * time.Hour, 10 * time.Second, time.Second, day + 60, day, false, false},
		{"live and quiet", 12 * time.Hour, 10 * time.Second, time.Minute, now.Unix() - 600, now.Unix() - 900, false, false},
		{"idle rule off", 12 * time.Hour, 0, time.Hour, day + 60, day, false, false},
	}
	for _, tc := range tests {
		p := &partition{svc: &service{checkpointEvery: tc.every, checkpointIdle: tc.idleAfter}, eventTime: tc.eventTime, checkpointed: tc.checkpointed, markers: tc.markers}
		if got := p.CheckpointDue(now, tc.idle); got != tc.want {
			t.Errorf("%s: CheckpointDue = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestRelearnSurvivesSecondRestart: a checkpoint taken while a restored partition is still replaying windows it
// had planned before the restart carries how far it had planned (planned_through), so a second restart from that
// checkpoint does not plan those windows again either. The partition is driven directly, its state passed through
// the changelog encoding as a restore would read it.
func TestRelearnSurvivesSecondRestart(t *testing.T) {
	t.Parallel()
	topo, err := topology.Parse([]byte(testTopology))
	if err != nil {
		t.Fatal(err)
	}
	hub := broadcast.New[*greenwavev1.SignalPlan]()
	defer hub.Close()
	table := newOverrideTable()
	now := func() time.Time { return time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC) }
	svc := &service{
		planner: &Planner{topo: topology.NewIndex(topo), revision: topo.Revision, horizon: 15 * time.Minute, validity: 15 * time.Minute,
			gate: signal.Gate{MaxRelativeInterval: 0.5}, zone: time.UTC, minSamples: 2, coordination: map[string]coordination{}},
		names: topics.DefaultNames(""), partitions: 1, hub: hub, metrics: newMetrics(prometheus.NewRegistry(), hub, table, now),
		overrides: table, log: zap.NewNop(), now: now, alpha: 0.1,
	}
	h := &harness{t: t}
	handle := func(p *partition, k int) []stream.Output {
		t.Helper()
		o := h.restartPrediction("A", k)
		outs, err := p.Handle(context.Background(), kafka.Message{Key: o.Key, Value: o.Value})
		if err != nil {
			t.Fatalf("window %d: %v", k, err)
		}
		return outs
	}
	// through passes a partition's state of A through the changelog encoding into a new partition.
	through := func(p *partition) *partition {
		t.Helper()
		b, err := wire.EncodeSignalState(p.state["A"], wire.SignalCheckpoint{})
		if err != nil {
			t.Fatal(err)
		}
		st, _, err := wire.DecodeSignalState(wire.SignalStatePayload, b)
		if err != nil {
			t.Fatal(err)
		}
		q := newPartition(svc, 0)
		q.state["A"] = st
		return q
	}

	// The uninterrupted run: windows 0..20, a plan each.
	whole := newPartition(svc, 0)
	var plans []*greenwavev1.SignalPlan
	for k := range 21 {
		outs := handle(whole, k)
		if len(outs) != 1 {
			t.Fatalf("window %d: %d outputs", k, len(outs))
		}
		var p greenwavev1.SignalPlan
		if err := proto.Unmarshal(outs[0].Value, &p); err != nil {
			t.Fatal(err)
		}
		plans = append(plans, &p)
	}

	// Checkpointed after window 5, plans issued through window 14, then the process ended. The restore finds
	// plans 6..14 on the topic.
	run := newPartition(svc, 0)
	for k := range 6 {
		handle(run, k)
	}
	run = through(run)
	st := run.state["A"]
	st.Plan, st.PlannedThrough = plans[14], plans[14].GetValidFrom().AsTime()
	// Replays 6..9 (learned only), is checkpointed there, and ends again.
	for k := 6; k < 10; k++ {
		if outs := handle(run, k); len(outs) != 0 {
			t.Fatalf("window %d planned again after the first restart", k)
		}
	}
	// The second restore finds no plan after that checkpoint: planned_through in the record is what remains.
	run = through(run)
	for k := 10; k < 21; k++ {
		outs := handle(run, k)
		if k <= 14 {
			if len(outs) != 0 {
				t.Fatalf("window %d planned again after the second restart", k)
			}
			continue
		}
		var p greenwavev1.SignalPlan
		if len(outs) != 1 || proto.Unmarshal(outs[0].Value, &p) != nil || !proto.Equal(&p, plans[k]) {
			t.Fatalf("window %d after the restarts: %v, want plan %s", k, outs, plans[k].GetPlanId())
		}
	}
	w, g := whole.state["A"], run.state["A"]
	if !proto.Equal(w.Plan, g.Plan) || !w.WindowEnd.Equal(g.WindowEnd) || !w.PlannedThrough.Equal(g.PlannedThrough) || !reflect.DeepEqual(w.Profile, g.Profile) {
		t.Errorf("state after the restarts differs:\n got %+v\nwant %+v", g, w)
	}
}

// TestStateSize: the reported size is the partition's intersections and the bytes of their last changelog
// records, the same for the partition that wrote them and for one restored from them.
func TestStateSize(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, names := kafkatest.Setup(t, 1)
	topo, err := topology.Parse([]byte(watchTopology))
	if err != nil {
		t.Fatal(err)
	}
	hub := broadcast.New[*greenwavev1.SignalPlan]()
	defer hub.Close()
	table := newOverrideTable()
	now := func() time.Time { return time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC) }
	svc := &service{
		planner: &Planner{topo: topology.NewIndex(topo), revision: topo.Revision, horizon: 15 * time.Minute, validity: 15 * time.Minute,
			gate: signal.Gate{MaxRelativeInterval: 0.5}, zone: time.UTC, minSamples: 2, coordination: map[string]coordination{}},
		names: names, partitions: 1, hub: hub, metrics: newMetrics(prometheus.NewRegistry(), hub, table, now),
		overrides: table, log: zap.NewNop(), now: now, alpha: 0.1,
		kafkaConn: conn, client: conn.Client(30 * time.Second),
	}
	h := &harness{t: t}
	p := newPartition(svc, 0)
	if got := p.StateSize(); got != (stream.StateSize{}) {
		t.Fatalf("empty partition: StateSize() = %+v", got)
	}
	for k := range 3 {
		for _, id := range []string{"A", "B"} {
			o := h.restartPrediction(id, k)
			if _, err := p.Handle(ctx, kafka.Message{Key: o.Key, Value: o.Value}); err != nil {
				t.Fatalf("%s window %d: %v", id, k, err)
			}
		}
	}
	if got := p.StateSize(); got.Keys != 2 || got.Bytes != 0 {
		t.Fatalf("before any checkpoint: StateSize() = %+v, want 2 keys and no changelog bytes", got)
	}
	outs, err := p.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := stream.StateSize{Keys: 2}
	for _, o := range outs {
		want.Bytes += int64(stream.MessageBytes(o.Message()))
	}
	if got := p.StateSize(); got != want || len(outs) != 2 {
		t.Fatalf("after the checkpoint (%d records): StateSize() = %+v, want %+v", len(outs), got, want)
	}
	prod := stream.NewProducer(conn, stream.ProducerConfig{})
	defer prod.Close()
	if err := prod.Write(ctx, outs...); err != nil {
		t.Fatal(err)
	}
	restored, err := restorePartition(ctx, svc, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := restored.StateSize(); got != want {
		t.Errorf("restored: StateSize() = %+v, want %+v", got, want)
	}
}
