package predictor

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"

	"github.com/greenwave-city/greenwave/pkg/features"
	"github.com/greenwave-city/greenwave/pkg/kafkatest"
	"github.com/greenwave-city/greenwave/pkg/models"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/topics"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// publishModels writes every snapshot of store to the models topic, keyed by model id, as the trainer does.
func publishModels(ctx context.Context, t *testing.T, prod *stream.Producer, names topics.Names, store *models.Store) {
	t.Helper()
	snaps, _ := store.List(models.Filter{}, "", 1<<20)
	var outs []stream.Output
	for _, s := range snaps {
		b, err := proto.Marshal(wire.SnapshotProto(s))
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, stream.Output{Topic: names.Models, Key: []byte(s.ModelID), Value: b})
	}
	if err := prod.Write(ctx, outs...); err != nil {
		t.Fatal(err)
	}
}

// publishFrames writes frames of testFrame's windows to the features topic.
func publishFrames(ctx context.Context, t *testing.T, prod *stream.Producer, names topics.Names, windows ...int) {
	t.Helper()
	var outs []stream.Output
	for _, w := range windows {
		f := testFrame(w)
		b, err := proto.Marshal(wire.FrameProto(f))
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, stream.Output{Topic: names.Features, Key: []byte(f.IntersectionID), Value: b})
	}
	if err := prod.Write(ctx, outs...); err != nil {
		t.Fatal(err)
	}
}

// startSyncRig runs a predictor on kfake whose models topic holds the snapshots of trainedStore(trained), whose
// frames are stale one hour after their model learned, and whose frames wait up to wait. It returns the service,
// the topics, a producer, a channel receiving every frame that starts waiting, and the next prediction
// published.
func startSyncRig(ctx context.Context, t *testing.T, trained int, wait time.Duration) (*service, topics.Names, *stream.Producer, chan features.Frame, func(context.Context) *greenwavev1.IntersectionPrediction) {
	t.Helper()
	kafkaConn, names := kafkatest.Setup(t, 1)
	prod := stream.NewProducer(kafkaConn, stream.ProducerConfig{})
	t.Cleanup(func() { prod.Close() })
	publishModels(ctx, t, prod, names, trainedStore(t, trained))
	svc := newService(serviceConfig{kafkaConn: kafkaConn, names: names, group: "g-" + names.Features, modelPartitions: 1, buffer: 1024,
		maxBatch: 4, writeLinger: 10 * time.Microsecond, modelWait: wait}, newTestPredictor(models.NewStore(), time.Hour),
		zaptest.NewLogger(t), prometheus.NewRegistry())
	started := make(chan features.Frame, 16)
	svc.waiter.waiting = func(f features.Frame) { started <- f }
	sub := svc.hub.Subscribe(1024, nil)
	t.Cleanup(sub.Close)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- svc.run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	next := func(ctx context.Context) *greenwavev1.IntersectionPrediction {
		t.Helper()
		it, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("no prediction: %v", err)
		}
		return it.Value
	}
	return svc, names, prod, started, next
}

// forecasts returns every approach × horizon forecast of a prediction.
func forecasts(p *greenwavev1.IntersectionPrediction) []*greenwavev1.Prediction {
	var out []*greenwavev1.Prediction
	for _, ap := range p.GetApproaches() {
		out = append(out, ap.GetHorizons()...)
	}
	return out
}

// TestStaleFrameWaitsForFreshModel: a frame whose models are stale (the trainer behind, as in a fast replay)
// is held until the trainer's snapshot arrives on the models topic, then predicted with the fresh model —
// not marked stale, the new version named.
func TestStaleFrameWaitsForFreshModel(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	svc, names, prod, started, next := startSyncRig(ctx, t, 60, time.Hour) // models learned up to window 59
	publishFrames(ctx, t, prod, names, 100)                                // 3 h 25 min after: stale
	select {
	case f := <-started:
		if f.WindowStart != testFrame(100).WindowStart {
			t.Fatalf("window %v waits, want window 100's", f.WindowStart)
		}
	case <-ctx.Done():
		t.Fatal("the stale frame never waited")
	}
	fresh := trainedStore(t, 100) // the trainer catches up: learned up to window 99
	publishModels(ctx, t, prod, names, fresh)
	p := next(ctx)
	fs := forecasts(p)
	if len(fs) == 0 {
		t.Fatal("prediction without forecasts")
	}
	for _, fc := range fs {
		want, _ := fresh.Get(fc.GetModelId())
		if fc.GetStale() || fc.GetFallback() || fc.GetModelVersion() != want.Version {
			t.Errorf("%s: stale %v fallback %v version %d, want a fresh forecast of version %d", fc.GetModelId(), fc.GetStale(), fc.GetFallback(), fc.GetModelVersion(), want.Version)
		}
	}
	if got := testutil.ToFloat64(svc.waiter.fresh); got != 1 {
		t.Errorf("fresh waits = %v, want 1", got)
	}
	if got := testutil.ToFloat64(svc.waiter.timeout); got != 0 {
		t.Errorf("timed-out waits = %v, want 0", got)
	}
}

// TestStaleFrameWithoutNewerModelTimesOut: with no newer snapshot (the trainer down), the frame is predicted
// with the stale model after PREDICTOR_MODEL_WAIT, marked stale; the next frame of the intersection does not
// wait again, since no newer model arrived.
func TestStaleFrameWithoutNewerModelTimesOut(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	svc, names, prod, started, next := startSyncRig(ctx, t, 60, time.Millisecond)
	publishFrames(ctx, t, prod, names, 100, 101)
	for range 2 {
		p := next(ctx)
		fs := forecasts(p)
		if len(fs) == 0 {
			t.Fatal("prediction without forecasts")
		}
		for _, fc := range fs {
			if !fc.GetStale() || fc.GetFallback() || fc.GetModelVersion() == 0 {
				t.Errorf("%s %s: stale %v fallback %v version %d, want the old model marked stale", p.GetEventId(), fc.GetModelId(), fc.GetStale(), fc.GetFallback(), fc.GetModelVersion())
			}
		}
	}
	if n := len(started); n != 1 {
		t.Errorf("%d frames waited, want 1 (the second frame's models were given up)", n)
	}
	if got := testutil.ToFloat64(svc.waiter.timeout); got != 1 {
		t.Errorf("timed-out waits = %v, want 1", got)
	}
	if got := testutil.ToFloat64(svc.waiter.fresh); got != 0 {
		t.Errorf("fresh waits = %v, want 0", got)
	}
}

// TestWhichFramesWait drives Handle directly: frames wait only for held models that are stale and not given
// up; a given-up model is waited for again once a newer (even if still stale) snapshot of it arrives.
func TestWhichFramesWait(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		store    func(t *testing.T) *models.Store
		window   int
		wantWait bool
	}{
		{"warming up: no model at all", func(*testing.T) *models.Store { return models.NewStore() }, 100, false},
		{"fresh model", func(t *testing.T) *models.Store { return trainedStore(t, 100) }, 100, false},
		{"stale model", func(t *testing.T) *models.Store { return trainedStore(t, 60) }, 100, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			store := tc.store(t)
			p, started := waitingPartition(t, store, time.Millisecond)
			out, err := p.Handle(context.Background(), frameMessage(t, tc.window))
			if err != nil || len(out) != 1 {
				t.Fatalf("Handle = %v, %v", out, err)
			}
			if waited := len(started) == 1; waited != tc.wantWait {
				t.Errorf("waited %v, want %v", waited, tc.wantWait)
			}
		})
	}

	t.Run("given up until a newer snapshot", func(t *testing.T) {
		t.Parallel()
		store := trainedStore(t, 60)
		p, started := waitingPartition(t, store, time.Millisecond)
		for _, w := range []int{100, 101} { // times out, then given up
			if _, err := p.Handle(context.Background(), frameMessage(t, w)); err != nil {
				t.Fatal(err)
			}
		}
		if n := len(started); n != 1 {
			t.Fatalf("%d waits before a newer snapshot, want 1", n)
		}
		newer, _ := trainedStore(t, 70).List(models.Filter{}, "", 100) // newer, still stale at window 102
		for _, s := range newer {
			store.Put(s)
		}
		if _, err := p.Handle(context.Background(), frameMessage(t, 102)); err != nil {
			t.Fatal(err)
		}
		if n := len(started); n != 2 {
			t.Fatalf("%d waits after a newer snapshot, want 2", n)
		}
	})
}

// TestQuietTrainerCostsOneWait: once a wait ran out without any snapshot arriving, frames of other
// intersections do not wait either (a dead trainer must not cost a wait per intersection of the partition),
// until the trainer publishes again.
func TestQuietTrainerCostsOneWait(t *testing.T) {
	t.Parallel()
	store := trainedStore(t, 60)
	put := func(from *models.Store) {
		snaps, _ := from.List(models.Filter{}, "", 100)
		for _, s := range snaps {
			store.Put(s)
		}
	}
	put(trainedStoreOf(t, "i2", 60))
	p, started := waitingPartition(t, store, time.Millisecond)
	steps := []struct {
		intersection string
		window       int
		before       func()
		wantWaits    int
	}{
		{"i1", 100, nil, 1}, // times out: the trainer is quiet
		{"i2", 100, nil, 1}, // stale too, but nothing arrived since
		{"i2", 101, func() { put(trainedStoreOf(t, "i2", 70)) }, 2}, // the trainer published: waits again
	}
	for i, st := range steps {
		if st.before != nil {
			st.before()
		}
		if _, err := p.Handle(context.Background(), frameMessageOf(t, st.intersection, st.window)); err != nil {
			t.Fatal(err)
		}
		if n := len(started); n != st.wantWaits {
			t.Fatalf("step %d (%s window %d): %d waits, want %d", i, st.intersection, st.window, n, st.wantWaits)
		}
	}
}

// TestWaitEndsWithContext: cancelling the partition's context (shutdown, rebalance) ends a wait at once; the
// frame is neither predicted nor queued, so the partition's next owner predicts it.
func TestWaitEndsWithContext(t *testing.T) {
	t.Parallel()
	p, started := waitingPartition(t, trainedStore(t, 60), time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-started
		cancel()
	}()
	out, err := p.Handle(ctx, frameMessage(t, 100))
	if !errors.Is(err, context.Canceled) || len(out) != 0 {
		t.Fatalf("Handle = %v, %v; want context.Canceled and no output", out, err)
	}
	if len(p.batch) != 0 {
		t.Fatal("a frame whose wait was cancelled was queued for subscribers")
	}
	if got := testutil.ToFloat64(p.waiter.canceled); got != 1 {
		t.Errorf("cancelled waits = %v, want 1", got)
	}
}

// waitingPartition returns a partition over store whose frames wait up to wait for fresh models (stale after
// one hour), and a channel receiving every frame that starts waiting.
func waitingPartition(t *testing.T, store *models.Store, wait time.Duration) (*partition, chan features.Frame) {
	t.Helper()
	reg := prometheus.NewRegistry()
	w := newModelWaiter(store, wait, zaptest.NewLogger(t), reg)
	started := make(chan features.Frame, 16)
	w.waiting = func(f features.Frame) { started <- f }
	return &partition{pred: newTestPredictor(store, time.Hour), metrics: newMetrics(reg, store, nil), now: time.Now,
		names: topics.DefaultNames(""), waiter: w, gaveUp: map[string]time.Time{}}, started
}

func frameMessage(t *testing.T, window int) kafka.Message {
	t.Helper()
	return frameMessageOf(t, "i1", window)
}

// frameMessageOf is testFrame(window) of another intersection, encoded.
func frameMessageOf(t *testing.T, intersection string, window int) kafka.Message {
	t.Helper()
	f := testFrame(window)
	f.IntersectionID = intersection
	b, err := proto.Marshal(wire.FrameProto(f))
	if err != nil {
		t.Fatal(err)
	}
	return kafka.Message{Value: b}
}
