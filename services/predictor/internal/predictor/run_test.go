package predictor

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"

	"github.com/greenwave-city/greenwave/pkg/kafkatest"
	"github.com/greenwave-city/greenwave/pkg/models"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// TestModelsRestoredWholeBeforeReady writes many versions of many models, a tombstone and garbage to the
// models topic: when followModels reports loaded, the store already holds the newest version of every model.
func TestModelsRestoredWholeBeforeReady(t *testing.T) {
	t.Parallel()
	const parts, nModels, versions = 3, 30, 4
	kafkaConn, names := kafkatest.Setup(t, parts)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	prod := stream.NewProducer(kafkaConn, stream.ProducerConfig{})
	defer prod.Close()
	var outs []stream.Output
	for v := 1; v <= versions; v++ {
		for m := range nModels {
			s := &greenwavev1.ModelSnapshot{ModelId: fmt.Sprintf("i%d/n/900/flow", m), IntersectionId: fmt.Sprint("i", m), Version: uint64(v)}
			b, err := proto.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			outs = append(outs, stream.Output{Topic: names.Models, Key: []byte(s.GetModelId()), Value: b})
		}
	}
	outs = append(outs, stream.Output{Topic: names.Models, Key: []byte("i0/garbage"), Value: []byte{0xff, 0xff}})
	if err := prod.Write(ctx, outs...); err != nil {
		t.Fatal(err)
	}
	store := models.NewStore()
	loaded := make(chan int, 1)
	fctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- followModels(fctx, kafkaConn, names.Models, parts, store, zaptest.NewLogger(t), func() {
			loaded <- store.Len() // what a reader would see the moment readiness flips
		})
	}()
	select {
	case n := <-loaded:
		if n != nModels {
			t.Fatalf("ready with %d of %d models", n, nModels)
		}
	case <-ctx.Done():
		t.Fatal("models never reported loaded")
	}
	for m := range nModels {
		if s, ok := store.Get(fmt.Sprintf("i%d/n/900/flow", m)); !ok || s.Version != versions {
			t.Fatalf("model %d: held %v, want version %d", m, ok, versions)
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("followModels: %v", err)
	}
}

// TestPredictionsPublishedWithDeferredCommits runs the Kafka loop with small batches and input offsets committed
// only every hour: every prediction still reaches subscribers as soon as Kafka acknowledged it (the
// stream.WithAcknowledged hook, not the deferred checkpoint), and each one a subscriber sees is on the predictions
// topic.
func TestPredictionsPublishedWithDeferredCommits(t *testing.T) {
	t.Parallel()
	const parts, frames = 3, 20
	kafkaConn, names := kafkatest.Setup(t, parts)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	svc := newService(serviceConfig{kafkaConn: kafkaConn, names: names, group: "g-" + names.Features, modelPartitions: parts, buffer: 1024,
		maxBatch: 4, commitInterval: time.Hour, writeLinger: 10 * time.Microsecond}, newTestPredictor(trainedStore(t, 100), time.Hour),
		zaptest.NewLogger(t), prometheus.NewRegistry())
	sub := svc.hub.Subscribe(1024, nil)
	defer sub.Close()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- svc.run(runCtx) }()

	prod := stream.NewProducer(kafkaConn, stream.ProducerConfig{})
	defer prod.Close()
	var outs []stream.Output
	for i := range frames {
		f := testFrame(100)
		f.IntersectionID = fmt.Sprint("i", i)
		b, err := proto.Marshal(wire.FrameProto(f))
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, stream.Output{Topic: names.Features, Key: []byte(f.IntersectionID), Value: b})
	}
	if err := prod.Write(ctx, outs...); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for len(seen) < frames {
		it, err := sub.Next(ctx) // ends with the test's deadline if a prediction waited for the commit
		if err != nil {
			t.Fatalf("%d of %d predictions reached the subscriber: %v", len(seen), frames, err)
		}
		seen[it.Value.GetEventId()] = true
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	onTopic := map[string]bool{}
	for p := range parts {
		if err := stream.ReadPartition(ctx, kafkaConn, names.Predictions, p, func(m kafka.Message) error {
			onTopic[string(stream.Header(m, stream.HeaderEventID))] = true
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	for id := range seen {
		if !onTopic[id] {
			t.Fatalf("%s reached a subscriber but is not on the predictions topic", id)
		}
	}
}
