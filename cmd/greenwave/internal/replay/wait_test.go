package replay

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/greenwave-city/greenwave/pkg/kafkatest"
	"github.com/greenwave-city/greenwave/pkg/stream"
)

// TestWaitPipeline: the wait follows the pipeline hop by hop — it waits for the cleaner's group on the readings,
// then for the trainer's and predictor's on the features, then for signal-control's on the predictions — and
// returns only once the last group has committed everything that was on its input topic. The test plays the
// services: it commits a group's offsets when the wait announces it is waiting for that group.
func TestWaitPipeline(t *testing.T) {
	t.Parallel()
	const partitions = 2
	kafkaConn, names := kafkatest.Setup(t, partitions)
	// Setup and the producer talk through kafka-go's default transport, which pools its connections for good
	// (TestMain checks for leaked goroutines).
	defer func() {
		if tr, ok := kafka.DefaultTransport.(*kafka.Transport); ok {
			tr.CloseIdleConnections()
		}
	}()
	prefix := strings.TrimSuffix(names.Readings, "greenwave.readings.raw")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	prod := stream.NewProducer(kafkaConn, stream.ProducerConfig{})
	defer prod.Close()
	write := func(topic string, n int) {
		t.Helper()
		var outs []stream.Output
		for i := range n {
			outs = append(outs, stream.Output{Topic: topic, Key: []byte(fmt.Sprintf("I-%d", i)), Value: []byte("x")})
		}
		if err := prod.Write(ctx, outs...); err != nil {
			t.Fatal(err)
		}
	}
	write(names.Readings, 20)
	transport := kafkaConn.NewTransport(0)
	defer transport.CloseIdleConnections()
	client := &kafka.Client{Addr: kafkaConn.Addr(), Timeout: 10 * time.Second, Transport: transport}
	// commit plays a service: its group commits topic up to the end offsets.
	commit := func(group, topic string) error {
		ends, _, err := partitionOffsets(ctx, client, topic)
		if err != nil {
			return err
		}
		offs := map[string][]kafka.OffsetCommit{}
		for p, end := range ends {
			offs[topic] = append(offs[topic], kafka.OffsetCommit{Partition: p, Offset: end})
		}
		resp, err := client.OffsetCommit(ctx, &kafka.OffsetCommitRequest{GroupID: group, GenerationID: -1, Topics: offs})
		if err != nil {
			return err
		}
		for _, ps := range resp.Topics {
			for _, p := range ps {
				if p.Error != nil {
					return p.Error
				}
			}
		}
		return nil
	}
	// Each stage's outputs appear once its input is committed, as the services' publish-then-commit does.
	outputs := map[string]func(){
		prefix + "greenwave.cleaner":   func() { write(names.Features, 8) },
		prefix + "greenwave.predictor": func() { write(names.Predictions, 5) },
	}
	var order []string
	err := waitPipeline(ctx, client, pipelineStages(prefix), 10*time.Millisecond, func(group, topic string, behind int64) {
		order = append(order, fmt.Sprintf("%s %s %d", strings.TrimPrefix(group, prefix), strings.TrimPrefix(topic, prefix), behind))
		if f := outputs[group]; f != nil {
			f()
		}
		if err := commit(group, topic); err != nil {
			t.Errorf("commit %s: %v", group, err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"greenwave.cleaner greenwave.readings.raw 20",
		"greenwave.trainer greenwave.features 8",
		"greenwave.predictor greenwave.features 8",
		"greenwave.signalcontrol greenwave.predictions 5",
	}
	if strings.Join(order, "\n") != strings.Join(want, "\n") {
		t.Errorf("waited for\n%s\nwant\n%s", strings.Join(order, "\n"), strings.Join(want, "\n"))
	}

	// Nothing new: the wait returns at once, waiting for no group.
	order = nil
	if err := waitPipeline(ctx, client, pipelineStages(prefix), 10*time.Millisecond, func(g, _ string, _ int64) { order = append(order, g) }); err != nil || len(order) != 0 {
		t.Errorf("second wait = %v, waited for %v; want nothing to wait for", err, order)
	}

	// A group that never commits: the wait ends with ctx, naming the group and how far behind it is.
	write(names.Readings, 3)
	wctx, wcancel := context.WithCancel(ctx)
	err = waitPipeline(wctx, client, pipelineStages(prefix), 10*time.Millisecond, func(string, string, int64) { wcancel() })
	if err == nil || !strings.Contains(err.Error(), "greenwave.cleaner") || !strings.Contains(err.Error(), "3 records behind") {
		t.Errorf("wait with a stuck group = %v, want it to name the cleaner 3 records behind", err)
	}
}

// TestWaitFindsTrainerGroups: a trainer of another target (TRAINER_TARGET) consumes as greenwave.trainer-<target>;
// the wait follows the trainer groups the cluster has, and the default one while it has none.
func TestWaitFindsTrainerGroups(t *testing.T) {
	t.Parallel()
	kafkaConn, names := kafkatest.Setup(t, 1)
	defer func() {
		if tr, ok := kafka.DefaultTransport.(*kafka.Transport); ok {
			tr.CloseIdleConnections()
		}
	}()
	prefix := strings.TrimSuffix(names.Readings, "greenwave.readings.raw")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	transport := kafkaConn.NewTransport(0)
	defer transport.CloseIdleConnections()
	client := &kafka.Client{Addr: kafkaConn.Addr(), Timeout: 10 * time.Second, Transport: transport}
	featureGroups := func() []string {
		t.Helper()
		stages, err := withTrainerGroups(ctx, client, pipelineStages(prefix), prefix)
		if err != nil {
			t.Fatal(err)
		}
		return stages[1].groups
	}
	if got, want := featureGroups(), []string{prefix + "greenwave.trainer", prefix + "greenwave.predictor"}; !slices.Equal(got, want) {
		t.Fatalf("without trainer groups: %v, want %v", got, want)
	}
	for _, g := range []string{"greenwave.trainer-speed", "greenwave.trainer-occupancy", "greenwave.trainers-other"} {
		resp, err := client.OffsetCommit(ctx, &kafka.OffsetCommitRequest{GroupID: prefix + g, GenerationID: -1,
			Topics: map[string][]kafka.OffsetCommit{names.Features: {{Partition: 0, Offset: 0}}}})
		if err != nil {
			t.Fatal(err)
		}
		for _, ps := range resp.Topics {
			for _, p := range ps {
				if p.Error != nil {
					t.Fatal(p.Error)
				}
			}
		}
	}
	want := []string{prefix + "greenwave.trainer-occupancy", prefix + "greenwave.trainer-speed", prefix + "greenwave.predictor"}
	if got := featureGroups(); !slices.Equal(got, want) {
		t.Fatalf("with speed and occupancy trainers: %v, want %v", got, want)
	}
}
