package cleaner

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// handle runs one record through p the way stream.Processor does: a *RejectError becomes a dead letter.
func handle(t *testing.T, p *partition, m kafka.Message) []stream.Output {
	t.Helper()
	outs, err := p.Handle(context.Background(), m)
	var rej *stream.RejectError
	if errors.As(err, &rej) {
		return append(outs, wire.DeadLetter("cleaner", p.names.DeadLetters, m, rej))
	}
	if err != nil {
		t.Fatalf("handle offset %d: %v", m.Offset, err)
	}
	return outs
}

func checkpoint(t *testing.T, p *partition) map[string][]byte {
	t.Helper()
	outs, err := p.Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	snaps := map[string][]byte{}
	for _, o := range outs {
		if o.Topic != p.names.CleanerState {
			t.Fatalf("checkpoint wrote to %s", o.Topic)
		}
		snaps[string(o.Key)] = o.Value
	}
	return snaps
}

func byTopic(outs []stream.Output) map[string]int {
	n := map[string]int{}
	for _, o := range outs {
		n[o.Topic]++
	}
	return n
}

func TestScriptCoversEveryPath(t *testing.T) {
	t.Parallel()
	p := newTestPartition(t, 0)
	reasons := map[string]int{}
	var outs []stream.Output
	for _, m := range messages(0, script(t, p.topo, "I-100", 60)) {
		outs = append(outs, handle(t, p, m)...)
	}
	for _, o := range outs {
		if o.Topic == p.names.DeadLetters {
			var dl greenwavev1.DeadLetter
			if err := proto.Unmarshal(o.Value, &dl); err != nil {
				t.Fatal(err)
			}
			reasons[stream.ReasonLabel(dl.GetReason())]++
		}
	}
	for _, want := range []string{"malformed", "unknown_detector", "conflicting_duplicate", "late", "stuck_detector"} {
		if reasons[want] == 0 {
			t.Errorf("no %s dead letter; got %v", want, reasons)
		}
	}
	if n := byTopic(outs); n[p.names.Features] < 10 || n[p.names.DetectorHealth] != 6*n[p.names.Features] {
		t.Errorf("outputs by topic %v: want ≥10 frames and one health record per detector (6) per frame", n)
	}
}

// TestRestoreEqualsUninterrupted checkpoints after record k, restores a new handler from the snapshot and
// redelivers from an earlier offset j (the committed offset lags the state when a crash lands between the
// two): the records up to k must produce nothing, and the rest exactly what an uninterrupted run produced.
func TestRestoreEqualsUninterrupted(t *testing.T) {
	t.Parallel()
	topo := loadTopology(t)
	msgs := messages(0, append(script(t, topo, "I-100", 60), script(t, topo, "I-102", 60)...))
	p := newTestPartition(t, 0)
	want := make([][]stream.Output, len(msgs))
	for i, m := range msgs {
		want[i] = handle(t, p, m)
	}
	for _, tc := range []struct {
		name string
		k, j int
	}{
		{"no redelivery", 100, 100},
		{"redeliver one", 100, 99},
		{"redeliver a batch with a late reading", 250, 150},
		{"redeliver across intersections", 420, 300},
		{"from the start", 500, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			first := newTestPartition(t, 0)
			for _, m := range msgs[:tc.k] {
				handle(t, first, m)
			}
			restored := newTestPartition(t, 0)
			for id, b := range checkpoint(t, first) {
				if skip, err := restored.restore(id, kafka.Message{Value: b}); err != nil || skip != "" {
					t.Fatalf("restore %s: %q %v", id, skip, err)
				}
			}
			for i, m := range msgs[tc.j:] {
				i += tc.j
				got := handle(t, restored, m)
				// Records of no intersection (malformed, unknown) carry no state: they are dead-lettered
				// again, identically, which consumers drop by event id.
				if i < tc.k && len(got) > 0 && !reflect.DeepEqual(got, want[i]) {
					t.Fatalf("redelivered offset %d produced %d records that differ from the first delivery", i, len(got))
				}
				if i >= tc.k && !reflect.DeepEqual(got, want[i]) {
					t.Fatalf("offset %d: restored handler produced %v, uninterrupted %v", i, byTopic(got), byTopic(want[i]))
				}
			}
		})
	}
}

func TestRedeliverySkippedOnlyForItsPartition(t *testing.T) {
	t.Parallel()
	p := newTestPartition(t, 0)
	msgs := messages(0, script(t, p.topo, "I-100", 10))
	for _, m := range msgs {
		handle(t, p, m)
	}
	snaps := checkpoint(t, p)
	other := newTestPartition(t, 1) // a snapshot from another partition must not suppress records here
	if _, err := other.restore("I-100", kafka.Message{Value: snaps["I-100"]}); err != nil {
		t.Fatal(err)
	}
	if _, ok := other.applied["I-100"]; ok {
		t.Fatal("offset of partition 0 applied to partition 1")
	}
	same := newTestPartition(t, 0)
	if _, err := same.restore("I-100", kafka.Message{Value: snaps["I-100"]}); err != nil {
		t.Fatal(err)
	}
	if got := same.applied["I-100"]; got != msgs[len(msgs)-1].Offset {
		t.Fatalf("applied offset %d, want %d", got, msgs[len(msgs)-1].Offset)
	}
}

func TestRestoreErrors(t *testing.T) {
	t.Parallel()
	p := newTestPartition(t, 0)
	for _, m := range messages(0, script(t, p.topo, "I-100", 10)) {
		handle(t, p, m)
	}
	good := checkpoint(t, p)["I-100"]
	for _, tc := range []struct {
		name, id string
		b        []byte
		skip     string
		err      string
	}{
		{"good", "I-100", good, "", ""},
		{"not in the topology", "I-999", good, "no longer in the topology", ""},
		{"garbage", "I-100", []byte("{"), "", "bad cleaner snapshot"},
		{"state of another intersection", "I-101", good, "", "bad cleaner state"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			skip, err := newTestPartition(t, 0).restore(tc.id, kafka.Message{Value: tc.b})
			if !strings.Contains(skip, tc.skip) || (skip == "") != (tc.skip == "") ||
				(err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("restore = %q, %v; want a skip containing %q and an error containing %q", skip, err, tc.skip, tc.err)
			}
		})
	}
}

func TestHealthRecordsPerClosedWindow(t *testing.T) {
	t.Parallel()
	p := newTestPartition(t, 0)
	var frames, health []stream.Output
	for _, m := range messages(0, script(t, p.topo, "I-100", 60)) {
		for _, o := range handle(t, p, m) {
			switch o.Topic {
			case p.names.Features:
				frames = append(frames, o)
			case p.names.DetectorHealth:
				health = append(health, o)
			}
		}
	}
	ids := map[string]bool{}
	var stuck *greenwavev1.DetectorHealth
	for _, o := range health {
		var h greenwavev1.DetectorHealth
		if err := proto.Unmarshal(o.Value, &h); err != nil {
			t.Fatal(err)
		}
		if ids[o.EventID] || o.EventID != h.GetEventId() || o.EventID != HealthEventID("I-100", h.GetDetectorId(), h.GetWindowStart().AsTime()) {
			t.Fatalf("health event id %q (record %q) duplicate or not deterministic", o.EventID, h.GetEventId())
		}
		ids[o.EventID] = true
		if string(o.Key) != "I-100" || h.GetIntersectionId() != "I-100" || h.GetSchemaVersion() != 1 || h.GetApproachId() == "" {
			t.Fatalf("health record %v", &h)
		}
		for _, s := range []float64{h.GetValidShare(), h.GetFlaggedShare(), h.GetImputedShare(), h.GetLateShare(), h.GetRejectedShare(), h.GetScore()} {
			if !(s >= 0 && s <= 1) {
				t.Fatalf("share or score outside 0..1: %v", &h)
			}
		}
		if sum := h.GetValidShare() + h.GetLateShare() + h.GetRejectedShare(); sum != 0 && (sum < 1-1e-9 || sum > 1+1e-9) {
			t.Fatalf("valid+late+rejected shares sum to %v: %v", sum, &h)
		}
		if got := h.GetWindowEnd().AsTime().Sub(h.GetWindowStart().AsTime()); got.Seconds() != 300 {
			t.Fatalf("health window %v, want the 300 s window", got)
		}
		if h.GetDetectorId() == "I-100-W1" {
			stuck = &h
		}
	}
	if len(frames) == 0 || len(health) != 6*len(frames) {
		t.Fatalf("%d health records for %d frames of 6 detectors", len(health), len(frames))
	}
	if stuck == nil || !(stuck.GetRejectedShare() > 0) || !(stuck.GetScore() < 1) {
		t.Fatalf("stuck detector's last health record %v: want rejections and a score below 1", stuck)
	}
}

func TestDeadLetterIDsMatchPayload(t *testing.T) {
	t.Parallel()
	p := newTestPartition(t, 0)
	ids := map[string]bool{}
	for _, m := range messages(0, script(t, p.topo, "I-100", 60)) {
		for _, o := range handle(t, p, m) {
			if o.Topic != p.names.DeadLetters {
				continue
			}
			var dl greenwavev1.DeadLetter
			if err := proto.Unmarshal(o.Value, &dl); err != nil {
				t.Fatal(err)
			}
			if dl.GetEventId() != o.EventID || ids[o.EventID] {
				t.Fatalf("dead letter id %q in the header, %q in the payload, or seen before", o.EventID, dl.GetEventId())
			}
			ids[o.EventID] = true
		}
	}
	if len(ids) == 0 {
		t.Fatal("no dead letters")
	}
}

// TestFeatureGroupPartition checks that a partition accepts only the readings and changelog state of the
// feature groups it owns (the example topology is one group keyed I-100), and that its changelog records are
// placed with the group's readings.
func TestFeatureGroupPartition(t *testing.T) {
	t.Parallel()
	const partitions = 4
	home := stream.PartitionFor("I-100", partitions)
	p := newCheckedPartition(t, home, partitions)
	msgs := messages(home, script(t, p.topo, "I-101", 10))
	for _, m := range msgs {
		for _, o := range handle(t, p, m) {
			var dl greenwavev1.DeadLetter
			if o.Topic == p.names.DeadLetters && (proto.Unmarshal(o.Value, &dl) != nil || dl.GetReason() == greenwavev1.RejectReason_REJECT_REASON_INCONSISTENT) {
				t.Fatalf("reading in its group's partition dead-lettered: %v", &dl)
			}
		}
	}
	outs, err := p.Checkpoint(context.Background())
	if err != nil || len(outs) != 1 {
		t.Fatalf("checkpoint: %d records, %v", len(outs), err)
	}
	if outs[0].PartitionKey != "I-100" {
		t.Errorf("changelog record of I-101 has partition key %q, want I-100 (co-partitioned with the readings)", outs[0].PartitionKey)
	}

	other := newCheckedPartition(t, (home+1)%partitions, partitions)
	_, err = other.Handle(context.Background(), messages(other.id, script(t, other.topo, "I-101", 1))[0])
	var rej *stream.RejectError
	if !errors.As(err, &rej) || rej.Reason != greenwavev1.RejectReason_REJECT_REASON_INCONSISTENT || !strings.Contains(rej.Detail, fmt.Sprintf("belongs in partition %d", home)) {
		t.Fatalf("reading outside its group's partition: %v, want INCONSISTENT naming partition %d", err, home)
	}
	skip, err := other.restore("I-101", outs[0].Message())
	if err != nil || !strings.Contains(skip, fmt.Sprintf("now go to partition %d", home)) {
		t.Fatalf("restore outside the group's partition = %q, %v; want it skipped", skip, err)
	}
	if len(other.states) != 0 {
		t.Fatal("state restored outside its partition")
	}
}

// TestRestoreFromMixedCheckpoints checkpoints a partition holding the three linked intersections of the example
// topology twice (the second time after forgetting the emission positions the first settled), and restores every
// mix of the two checkpoints' records — what a crash in the middle of writing the second leaves — then replays
// from the first checkpoint's commit: every record after the second checkpoint publishes exactly what the
// uninterrupted run published, upstream features included, and every replayed record in between publishes
// nothing or exactly the same.
func TestRestoreFromMixedCheckpoints(t *testing.T) {
	t.Parallel()
	topo := loadTopology(t)
	ids := []string{"I-100", "I-101", "I-102"}
	var scripts [][][]byte
	for _, id := range ids {
		scripts = append(scripts, script(t, topo, id, 50))
	}
	var values [][]byte
	for i := 0; ; i++ {
		more := false
		for _, s := range scripts {
			if i < len(s) {
				values, more = append(values, s[i]), true
			}
		}
		if !more {
			break
		}
	}
	msgs := messages(0, values)
	ref := newTestPartition(t, 0)
	want := make([][]stream.Output, len(msgs))
	for i, m := range msgs {
		want[i] = handle(t, ref, m)
	}
	upstream := 0
	for _, outs := range want {
		for _, o := range outs {
			if o.Topic == ref.names.Features {
				var f greenwavev1.IntersectionFeatures
				if err := proto.Unmarshal(o.Value, &f); err != nil {
					t.Fatal(err)
				}
				if framesHaveUpstream(&f) {
					upstream++
				}
			}
		}
	}
	if upstream == 0 {
		t.Fatal("no frame has an upstream feature: the input does not exercise them")
	}
	for _, cut := range [][3]int{{40, 200, 380}, {300, 420, 700}, {500, 520, 900}} {
		first := newTestPartition(t, 0)
		for _, m := range msgs[:cut[0]] {
			handle(t, first, m)
		}
		checkpoint(t, first) // an earlier one: it settles what the next checkpoint may forget
		for _, m := range msgs[cut[0]:cut[1]] {
			handle(t, first, m)
		}
		cp1 := checkpoint(t, first)
		for _, m := range msgs[cut[1]:cut[2]] {
			handle(t, first, m)
		}
		cp2 := checkpoint(t, first)
		for mask := range 1 << len(ids) {
			restored := newTestPartition(t, 0)
			for i, id := range ids {
				b, ok := cp2[id]
				if mask&(1<<i) == 0 || !ok {
					b = cp1[id]
				}
				if b == nil {
					continue
				}
				if skip, err := restored.restore(id, kafka.Message{Value: b}); err != nil || skip != "" {
					t.Fatalf("restore %s: %q %v", id, skip, err)
				}
			}
			for i := cut[1]; i < len(msgs); i++ {
				got := handle(t, restored, msgs[i])
				if (i >= cut[2] || len(got) > 0) && !reflect.DeepEqual(got, want[i]) {
					t.Fatalf("cut %v, mask %03b: offset %d published %v, uninterrupted %v", cut, mask, i, byTopic(got), byTopic(want[i]))
				}
			}
		}
	}
}

func framesHaveUpstream(f *greenwavev1.IntersectionFeatures) bool {
	i := slices.Index(f.GetFeatureNames(), "upstream_lag1_present")
	for _, a := range f.GetApproaches() {
		if v := a.GetValues(); i >= 0 && i < len(v) && v[i] == 1 {
			return true
		}
	}
	return false
}

// TestStateSize: the reported size is the partition's intersections and the bytes of their last changelog
// records, the same after a restore from those records as after writing them.
func TestStateSize(t *testing.T) {
	t.Parallel()
	topo := loadTopology(t)
	p := newTestPartition(t, 0)
	if got := p.StateSize(); got != (stream.StateSize{}) {
		t.Fatalf("empty partition: StateSize() = %+v", got)
	}
	for _, m := range messages(0, append(script(t, topo, "I-100", 30), script(t, topo, "I-102", 30)...)) {
		handle(t, p, m)
	}
	outs, err := p.Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var want stream.StateSize
	restored := newTestPartition(t, 0)
	for _, o := range outs {
		want.Keys++
		want.Bytes += int64(stream.MessageBytes(o.Message()))
		restored.setStateBytes(string(o.Key), stream.MessageBytes(o.Message()))
		if skip, err := restored.restore(string(o.Key), o.Message()); err != nil || skip != "" {
			t.Fatalf("restore %s: %q %v", o.Key, skip, err)
		}
	}
	if want.Keys != 2 {
		t.Fatalf("checkpoint wrote %d records, want one per intersection (2)", want.Keys)
	}
	if got := p.StateSize(); got != want {
		t.Errorf("after the checkpoint: StateSize() = %+v, want %+v", got, want)
	}
	if got := restored.StateSize(); got != want {
		t.Errorf("restored: StateSize() = %+v, want %+v", got, want)
	}
}

// TestSpeedOnlyReadings: the live handler takes readings marked count_absent (speed-only sensors) and emits
// frames whose vectors carry the speed with flow_absent, not gaps; a reading with no quantity is dead-lettered
// MISSING_FIELD.
func TestSpeedOnlyReadings(t *testing.T) {
	t.Parallel()
	p := newTestPartition(t, 0)
	inter, _ := p.topo.Intersection("I-100")
	var values [][]byte
	for m := range 12 {
		for _, a := range inter.Approaches {
			for _, d := range a.Detectors {
				r := reading("I-100", d, m, 0)
				r.CountAbsent, r.SpeedKmh = true, proto.Float64(float64(70+m))
				b, err := proto.Marshal(r)
				if err != nil {
					t.Fatal(err)
				}
				values = append(values, b)
			}
		}
	}
	none := reading("I-100", inter.Approaches[0].Detectors[0], 12, 0)
	none.CountAbsent = true
	b, err := proto.Marshal(none)
	if err != nil {
		t.Fatal(err)
	}
	values = append(values, b)
	frames, deadLetters := 0, 0
	for _, m := range messages(0, values) {
		for _, o := range handle(t, p, m) {
			switch o.Topic {
			case p.names.Features:
				var f greenwavev1.IntersectionFeatures
				if err := proto.Unmarshal(o.Value, &f); err != nil {
					t.Fatal(err)
				}
				frames++
				for _, v := range f.GetApproaches() {
					ob := v.GetObserved()
					if v.GetGap() || !ob.GetFlowAbsent() || ob.GetFlowVph() != 0 || ob.SpeedKmh == nil || ob.GetImputed() {
						t.Errorf("frame %s approach %s: gap %v observed %v, want speed without flow", f.GetEventId(), v.GetApproachId(), v.GetGap(), ob)
					}
				}
			case p.names.DeadLetters:
				var dl greenwavev1.DeadLetter
				if err := proto.Unmarshal(o.Value, &dl); err != nil {
					t.Fatal(err)
				}
				deadLetters++
				if dl.GetReason() != greenwavev1.RejectReason_REJECT_REASON_MISSING_FIELD {
					t.Errorf("dead letter %v, want MISSING_FIELD for the reading with no quantity", &dl)
				}
			}
		}
	}
	if frames == 0 || deadLetters != 1 {
		t.Fatalf("%d frames and %d dead letters, want frames and one dead letter", frames, deadLetters)
	}
}
