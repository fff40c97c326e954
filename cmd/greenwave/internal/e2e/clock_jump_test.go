package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/greenwave-city/greenwave/pkg/kafkatest"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/topics"
	"github.com/greenwave-city/greenwave/pkg/topology"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// TestCleanerClockJump runs the cleaner process twice over the restart test's input: once as is, once with a
// gateway of I-101 (its N detectors) whose clock is 3 days ahead writing between the first and second chunk — a
// single reading, then ten minutes of readings. Every frame of every intersection is the same in both runs, the
// bad readings are dead-lettered as clock_jump, and every other dead letter is the same.
func TestCleanerClockJump(t *testing.T) {
	parallelStack(t)
	root, _ := serviceBinaries(t, "cleaner")
	topo, err := topology.Load(filepath.Join(root, "config", "topology.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	session := "CLEANER_SESSION_TIMEOUT=1s"
	if kafkatest.Real() {
		session = "CLEANER_SESSION_TIMEOUT=6s"
	}
	chunkEnds := []int{12, 24, 40}
	input := func(names topics.Names) restartInput { return buildRestartInput(t, topo, names, chunkEnds) }
	weather := func(names topics.Names) []stream.Output { return input(names).weather }
	wrongClock := func(names topics.Names) []stream.Output {
		ix := topology.NewIndex(topo)
		var outs []stream.Output
		add := func(det string, m int) {
			at := restartT0.Add(72*time.Hour + time.Duration(m)*time.Minute)
			r := &greenwavev1.TrafficReading{SchemaVersion: 1, ReadingId: fmt.Sprintf("%s@%d", det, at.Unix()),
				IntersectionId: "I-101", DetectorId: det, ObservedAt: timestamppb.New(at), IntervalS: 60, Count: 6}
			b, err := proto.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			outs = append(outs, stream.Output{Topic: names.Readings, Key: []byte("I-101"), Value: b, EventID: r.GetReadingId(),
				Payload: wire.TopicReadings.Payload(), PartitionKey: ix.PartitionKey("I-101")})
		}
		add("I-101-N1", 5)
		for m := 10; m < 20; m++ {
			add("I-101-N1", m)
			add("I-101-N2", m)
		}
		return outs
	}

	runs := map[string]cleanerOutputs{}
	bad := 0
	for _, name := range []string{"clean", "wrong clock"} {
		r := startCleanerRun(ctx, t, weather, session, "CLEANER_CHECKPOINT_INTERVAL=500ms")
		for i, c := range input(r.names).chunks {
			r.write(ctx, c)
			if i == 0 && name == "wrong clock" {
				w := wrongClock(r.names)
				bad = len(w)
				r.write(ctx, w)
			}
		}
		r.waitCommitted(ctx)
		runs[name] = r.collect(ctx)
	}
	want, got := runs["clean"], runs["wrong clock"]
	if len(want.frames) < 20 {
		t.Fatalf("clean run: %d frames", len(want.frames))
	}
	compareByID(t, "frame", want.frames, got.frames)
	// Dead-letter ids name source offsets, which the extra records shift: compare reading ids and reasons.
	type key struct{ source, reason string }
	count := func(o cleanerOutputs) map[key]int {
		n := map[key]int{}
		for _, d := range o.dead {
			n[key{d.GetSourceEventId(), d.GetReason().String()}]++
		}
		return n
	}
	wantDead, gotDead := count(want), count(got)
	jumps := 0
	for k, n := range gotDead {
		if k.reason == greenwavev1.RejectReason_REJECT_REASON_CLOCK_JUMP.String() {
			jumps += n
			continue
		}
		if wantDead[k] != n {
			t.Errorf("dead letter %v: %d, clean run %d", k, n, wantDead[k])
		}
	}
	for k, n := range wantDead {
		if gotDead[k] != n {
			t.Errorf("dead letter %v: clean run %d, wrong-clock run %d", k, n, gotDead[k])
		}
	}
	if jumps != bad {
		t.Fatalf("%d clock_jump dead letters for %d wrong-clock readings", jumps, bad)
	}
	t.Logf("%d frames equal; %d wrong-clock readings dead-lettered as clock_jump", len(want.frames), jumps)
}
