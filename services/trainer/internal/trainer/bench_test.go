package trainer

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/greenwave-city/greenwave/pkg/kafkaconn"
	"github.com/greenwave-city/greenwave/pkg/kafkatest"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/topics"
)

// Shape of the service benchmark's input: intersections spread over the partitions, four approaches each.
const (
	benchPartitions    = 3
	benchIntersections = 12
	benchApproaches    = 4
)

// committedRecords is how many records of topic the group has committed, over every partition.
func committedRecords(ctx context.Context, kafkaConn kafkaconn.Conn, group, topic string, partitions int) (int64, error) {
	client := kafkaConn.Client(10 * time.Second)
	parts := make([]int, partitions)
	for p := range parts {
		parts[p] = p
	}
	resp, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
	if err != nil {
		return 0, fmt.Errorf("fetch committed offsets of %s: %w", group, err)
	}
	var n int64
	for _, c := range resp.Topics[topic] {
		n += max(c.CommittedOffset, 0)
	}
	return n, nil
}

// BenchmarkTrainerService measures the trainer service end to end: b.N feature frames (four approaches each,
// spread over 12 intersections and 3 partitions) are written to the features topic of a running trainer, and
// the clock stops when its consumer group has committed them all — that is, when every model snapshot covering
// them has been acknowledged by Kafka. It runs the service in-process against kfake, or against the real broker
// when KAFKA_BROKERS is set (make bench). Reported: frames/s and approach-updates/s (one update applies one
// approach's vector to the models of every horizon).
func BenchmarkTrainerService(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kafkaConn, names := kafkatest.Setup(b, benchPartitions)
	prefix := strings.TrimSuffix(names.Features, topics.DefaultNames("").Features)
	env := map[string]string{
		"KAFKA_BROKERS": strings.Join(kafkaConn.Brokers, ","), "TOPIC_PREFIX": prefix, "TOPOLOGY_FILE": "../../../../config/topology.yaml",
		"GRPC_ADDR": "127.0.0.1:0", "HTTP_ADDR": "127.0.0.1:0", "LOG_LEVEL": "error",
		// A checkpoint after every batch, the worst case (and what the figures in docs/trainer.md measured): with
		// the event-time default the clock would also stop only after TRAINER_CHECKPOINT_IDLE.
		"TRAINER_CHECKPOINT_INTERVAL": "0s",
	}
	maps.Copy(env, kafkatest.SecurityEnv())
	waitLeaders(ctx, b, kafkaConn, benchPartitions, names.Features, names.Models)
	done := make(chan error, 1)
	go func() { done <- Run(ctx, func(k string) (string, bool) { v, ok := env[k]; return v, ok }) }()

	rng := rand.New(rand.NewPCG(7, 7))
	batch := func(from, n int) []stream.Output {
		outs := make([]stream.Output, 0, n)
		for i := from; i < from+n; i++ {
			in := fmt.Sprintf("I-%d", i%benchIntersections)
			f := frame(in, i/benchIntersections, approachIDs(benchApproaches), rng)
			outs = append(outs, stream.Output{Topic: names.Features, Key: []byte(in), Value: mustMarshal(b, f), EventID: f.GetEventId()})
		}
		return outs
	}
	prod := stream.NewProducer(kafkaConn, stream.ProducerConfig{})
	defer prod.Close()
	group := prefix + "greenwave.trainer"
	// wait writes outs and polls until the group committed total records.
	wait := func(outs []stream.Output, total int64) {
		if err := prod.Write(ctx, outs...); err != nil {
			b.Fatal(err)
		}
		for {
			n, err := committedRecords(ctx, kafkaConn, group, names.Features, benchPartitions)
			if err != nil {
				b.Fatal(err)
			}
			if n >= total {
				return
			}
			select {
			case err := <-done:
				b.Fatalf("trainer stopped: %v", err)
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	// One window of every intersection first: the clock starts once the service has joined its group and
	// created its models, so start-up is not measured.
	wait(batch(0, benchIntersections), benchIntersections)
	outs := batch(benchIntersections, b.N)
	b.ResetTimer()
	wait(outs, int64(benchIntersections+b.N))
	b.StopTimer()
	s := b.Elapsed().Seconds()
	b.ReportMetric(float64(b.N)/s, "frames/s")
	b.ReportMetric(float64(b.N*benchApproaches)/s, "approach-updates/s")
	cancel()
	if err := <-done; err != nil {
		b.Fatalf("trainer: %v", err)
	}
}

// waitLeaders waits until every partition of the topics answers ListOffsets, so that a benchmark's timing does
// not include a real broker electing the leaders of topics it has just created.
func waitLeaders(ctx context.Context, b *testing.B, kafkaConn kafkaconn.Conn, partitions int, topicNames ...string) {
	b.Helper()
	client := kafkaConn.Client(10 * time.Second)
	req := map[string][]kafka.OffsetRequest{}
	for _, t := range topicNames {
		for p := range partitions {
			req[t] = append(req[t], kafka.LastOffsetOf(p))
		}
	}
	if _, err := stream.ListOffsets(ctx, client, req); err != nil {
		b.Fatalf("partitions of %v not ready: %v", topicNames, err)
	}
}

// BenchmarkPartitionMemory measures what the trainer holds per approach, without a broker: one partition
// handler (default configuration, the deployed feature layout) applies 4 five-minute windows of 250
// intersections × 4 approaches, as make loadtest's 20 simulated minutes do, then checkpoints. It reports the live
// heap after a GC per approach with the handler's outputs dropped (heap-bytes/approach: the learners and the
// partition's maps), and the bytes of the records one checkpoint returns at once, per approach
// (checkpoint-bytes/approach: held until the producer has written them).
func BenchmarkPartitionMemory(b *testing.B) {
	const intersections, windows = 250, 4
	rng := rand.New(rand.NewPCG(5, 5))
	aps := approachIDs(4)
	var msgs []kafka.Message
	for w := range windows {
		for i := range intersections {
			msgs = append(msgs, messages(b, 0, frame(fmt.Sprintf("I-%d", i), w, aps, rng))...)
		}
	}
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	n := float64(intersections * len(aps))
	for b.Loop() {
		before := heap()
		p, _ := newTestPartition(topics.DefaultNames("test."))
		for _, m := range msgs {
			if _, err := p.Handle(context.Background(), m); err != nil {
				b.Fatal(err)
			}
		}
		out := func() int { // the records are dropped on return, as once the producer wrote them
			outs, err := p.Checkpoint(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			var n int
			for _, o := range outs {
				n += len(o.Key) + len(o.Value)
			}
			return n
		}()
		used := float64(heap() - before)
		runtime.KeepAlive(p)
		b.ReportMetric(used/n, "heap-bytes/approach")
		b.ReportMetric(float64(out)/n, "checkpoint-bytes/approach")
	}
	b.ReportMetric(0, "ns/op")
}
