package cleaner

import (
	"context"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/greenwave-city/greenwave/pkg/kafkatest"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/topics"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// TestClockJumpOnKafka runs the cleaner service on a broker twice over the example topology's three
// intersections: once with clean input, once with one gateway of I-101 (its N detectors) stamping a clock 3 days
// ahead — a single reading at minute 20, then every reading from minute 50 on. The bad readings are dead-lettered
// as clock_jump, nothing else is, and every frame of every intersection equals the clean run's: the bad clock
// closed nobody's windows (the clean run has no readings of those detectors where the bad one had shifted ones).
func TestClockJumpOnKafka(t *testing.T) {
	t.Parallel()
	topo := loadTopology(t)
	const minutes = 90
	type input struct{ clean, bad []*greenwavev1.TrafficReading }
	var in input
	shifted := 0
	for m := range minutes {
		for _, id := range []string{"I-100", "I-101", "I-102"} {
			inter, _ := topo.Intersection(id)
			for ai, a := range inter.Approaches {
				for di, d := range a.Detectors {
					r := reading(id, d, m, float64(4+(m*7+ai*3+di)%9))
					gateway := id == "I-101" && a.ID == "N"
					if gateway && m >= 50 {
						b := proto.Clone(r).(*greenwavev1.TrafficReading)
						at := r.GetObservedAt().AsTime().Add(72 * time.Hour)
						b.ObservedAt, b.ReadingId = timestamppb.New(at), strings.Replace(b.GetReadingId(), "@", "@+", 1)
						in.bad = append(in.bad, b)
						shifted++
						continue
					}
					in.clean, in.bad = append(in.clean, r), append(in.bad, r)
					if gateway && m == 20 && di == 0 {
						b := proto.Clone(r).(*greenwavev1.TrafficReading)
						b.ObservedAt = timestamppb.New(r.GetObservedAt().AsTime().Add(72 * time.Hour))
						b.ReadingId = "single-wrong-clock"
						in.bad = append(in.bad, b)
						shifted++
					}
				}
			}
		}
	}
	want := runCleaner(t, in.clean)
	got := runCleaner(t, in.bad)
	if len(want.frames) < 3*(minutes/5-2) {
		t.Fatalf("clean run: %d frames", len(want.frames))
	}
	for id, f := range want.frames {
		if g, ok := got.frames[id]; !ok || !proto.Equal(g, f) {
			t.Fatalf("frame %s differs or is missing after the bad clock", id)
		}
	}
	if len(got.frames) != len(want.frames) {
		t.Fatalf("%d frames, clean run %d", len(got.frames), len(want.frames))
	}
	jumps := 0
	for _, d := range got.dead {
		if d.GetReason() != greenwavev1.RejectReason_REJECT_REASON_CLOCK_JUMP {
			t.Fatalf("dead letter %s: %s", d.GetReason(), d.GetDetail())
		}
		if !strings.Contains(d.GetDetail(), "ahead of intersection I-101's event time") {
			t.Fatalf("detail %q", d.GetDetail())
		}
		jumps++
	}
	// The cleaner holds at most max(8, 2 × 8 detectors) readings back; the newest ones are still waiting.
	if len(want.dead) != 0 || jumps < shifted-16 || jumps == 0 {
		t.Fatalf("%d clock_jump dead letters for %d shifted readings (clean run: %d dead letters)", jumps, shifted, len(want.dead))
	}
	t.Logf("%d frames equal; %d of %d shifted readings dead-lettered as clock_jump", len(want.frames), jumps, shifted)
}

type cleanerResult struct {
	frames map[string]*greenwavev1.IntersectionFeatures
	dead   []*greenwavev1.DeadLetter
}

// runCleaner writes the readings to a fresh namespace, runs the cleaner service until it committed them all, and
// returns the frames by event id and the dead letters.
func runCleaner(t *testing.T, readings []*greenwavev1.TrafficReading) cleanerResult {
	t.Helper()
	kafkaConn := kafkatest.Conn(t)
	prefix := kafkatest.Prefix(t)
	names := topics.DefaultNames(prefix)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := topics.EnsureTopics(ctx, kafkaConn, topics.Specs(names, 1)); err != nil {
		t.Fatal(err)
	}
	prod := stream.NewProducer(kafkaConn, stream.ProducerConfig{})
	defer prod.Close()
	var outs []stream.Output
	for _, r := range readings {
		b, err := proto.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, stream.Output{Topic: names.Readings, Key: []byte(r.GetIntersectionId()), Value: b, EventID: r.GetReadingId()})
	}
	if err := prod.Write(ctx, outs...); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"KAFKA_BROKERS": strings.Join(kafkaConn.Brokers, ","), "TOPIC_PREFIX": prefix, "TOPOLOGY_FILE": topologyFile,
		"GRPC_ADDR": "127.0.0.1:0", "HTTP_ADDR": "127.0.0.1:0", "LOG_LEVEL": "warn",
		"CLEANER_SESSION_TIMEOUT": "6s", "CLEANER_CHECKPOINT_INTERVAL": "200ms",
	}
	maps.Copy(env, kafkatest.SecurityEnv())
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- Run(runCtx, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	}()
	client := kafkaConn.Client(10 * time.Second)
	for {
		committed, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: prefix + "greenwave.cleaner", Topics: map[string][]int{names.Readings: {0}}})
		if err != nil {
			t.Fatalf("fetch committed offsets: %v", err)
		}
		if c := committed.Topics[names.Readings]; len(c) == 1 && c[0].CommittedOffset >= int64(len(readings)) {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("cleaner exited: %v", err)
		case <-ctx.Done():
			t.Fatal("cleaner did not commit the input before the deadline")
		case <-time.After(50 * time.Millisecond):
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("cleaner: %v", err)
	}
	res := cleanerResult{frames: map[string]*greenwavev1.IntersectionFeatures{}}
	if err := stream.ReadPartition(ctx, kafkaConn, names.Features, 0, func(m kafka.Message) error {
		f := &greenwavev1.IntersectionFeatures{}
		if err := proto.Unmarshal(m.Value, f); err != nil {
			return err
		}
		res.frames[f.GetEventId()] = f
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := stream.ReadPartition(ctx, kafkaConn, names.DeadLetters, 0, func(m kafka.Message) error {
		d := &greenwavev1.DeadLetter{}
		if err := proto.Unmarshal(m.Value, d); err != nil {
			return err
		}
		res.dead = append(res.dead, d)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return res
}
