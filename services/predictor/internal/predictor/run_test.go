package predictor

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
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

// TestReplayedFramesKeepTheirPublishedPredictions: a predictor crashes after publishing the predictions of 12 frames
// and before committing any (its successor uses a consumer group with nothing committed, the worst case), and the
// trainer publishes newer models meanwhile. The successor replays the 12 frames: it hands their predictions on as
// published — one record and one content per event id on the topic, the same content to its subscribers — and
// predicts only the 3 frames nobody predicted, with the newer models.
//
// Breaks it catches: predicting replayed frames again (15 + 12 records, and the 12 carry other values, since the
// newer models predict them differently), losing the header that marks what a prediction was computed from, or
// reading the wrong end of the predictions topic.
func TestReplayedFramesKeepTheirPublishedPredictions(t *testing.T) {
	t.Parallel()
	const first, later = 12, 3
	kafkaConn, names := kafkatest.Setup(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	prod := stream.NewProducer(kafkaConn, stream.ProducerConfig{})
	defer prod.Close()
	writeFrames := func(from, n int) {
		var outs []stream.Output
		for i := from; i < from+n; i++ {
			out, err := wire.TopicFeatures.Encode(names, wire.FrameProto(testFrame(i)))
			if err != nil {
				t.Fatal(err)
			}
			outs = append(outs, out)
		}
		if err := prod.Write(ctx, outs...); err != nil {
			t.Fatal(err)
		}
	}
	// run predicts with store under group until its subscribers saw n predictions, and returns them by event id.
	run := func(group string, pred *Predictor, n int) (map[string]*greenwavev1.IntersectionPrediction, *service) {
		svc := newService(serviceConfig{kafkaConn: kafkaConn, names: names, group: group, modelPartitions: 1, buffer: 1024,
			maxBatch: 4, commitInterval: time.Hour}, pred, zaptest.NewLogger(t), prometheus.NewRegistry())
		sub := svc.hub.Subscribe(1024, nil)
		defer sub.Close()
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- svc.run(runCtx) }()
		seen := map[string]*greenwavev1.IntersectionPrediction{}
		for len(seen) < n {
			it, err := sub.Next(ctx)
			if err != nil {
				t.Fatalf("%d of %d predictions reached the subscriber: %v", len(seen), n, err)
			}
			seen[it.Value.GetEventId()] = it.Value
		}
		stop()
		if err := <-done; err != nil {
			t.Fatalf("run: %v", err)
		}
		return seen, svc
	}

	writeFrames(100, first)
	before, _ := run("crashed", newTestPredictor(trainedStore(t, 100), time.Hour), first)
	writeFrames(100+first, later)
	newer := newTestPredictor(trainedStore(t, 60), time.Hour)
	changed := 0
	for i := 100; i < 100+first; i++ {
		if p := newer.Predict(testFrame(i)); !proto.Equal(p, before[p.GetEventId()]) {
			changed++
		}
	}
	if changed == 0 {
		t.Fatal("the newer models predict the first frames as the older ones did: the test would prove nothing")
	}
	after, svc := run("successor", newer, first+later)

	for id, p := range before {
		if !proto.Equal(after[id], p) {
			t.Errorf("%s: the successor's subscribers got a prediction of model version %d, want the published one (version %d)", id,
				modelVersion(after[id]), modelVersion(p))
		}
	}
	onTopic := map[string]int{}
	if err := stream.ReadPartition(ctx, kafkaConn, names.Predictions, 0, func(m kafka.Message) error {
		p, err := wire.TopicPredictions.Decode(m)
		if err != nil {
			return err
		}
		onTopic[p.GetEventId()]++
		if want, ok := before[p.GetEventId()]; ok && !proto.Equal(p, want) {
			t.Errorf("%s published again with other content", p.GetEventId())
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(onTopic) != first+later {
		t.Errorf("%d event ids on the topic, want %d", len(onTopic), first+later)
	}
	for id, n := range onTopic {
		if n != 1 {
			t.Errorf("%s on the topic %d times, want once", id, n)
		}
	}
	if got := testutil.ToFloat64(svc.metrics.republishSkipped); got != first {
		t.Errorf("replays_kept_total %v, want %d", got, first)
	}
}

// modelVersion is the model version of a prediction's first forecast (0 when it has none).
func modelVersion(p *greenwavev1.IntersectionPrediction) uint64 {
	if aps := p.GetApproaches(); len(aps) > 0 && len(aps[0].GetHorizons()) > 0 {
		return aps[0].GetHorizons()[0].GetModelVersion()
	}
	return 0
}
