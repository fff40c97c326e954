package trainer

import (
	"context"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/greenwave-city/greenwave/pkg/kafkatest"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/topics"
	"github.com/greenwave-city/greenwave/pkg/train"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// frameOfWindow is frame with windows of ws seconds: window w starts at t0 + w·ws.
func frameOfWindow(in string, w, ws int, approaches []string, rng *rand.Rand) *greenwavev1.IntersectionFeatures {
	f := frame(in, 0, approaches, rng)
	start := t0.Add(time.Duration(w*ws) * time.Second)
	f.WindowStart, f.WindowEnd = timestamppb.New(start), timestamppb.New(start.Add(time.Duration(ws)*time.Second))
	f.EventId = wire.FeaturesEventID(in, start)
	return f
}

// TestHandleConfiguresEachWindow: with auto horizons each intersection's learners are fitted to its frames'
// window (15-minute and hourly intersections in one partition), exactly as train.ConfigFor — the rule of
// greenwave eval — says; the training status reports them.
func TestHandleConfiguresEachWindow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	m := newMetrics(testRegistry())
	p := newPartition(0, 0, train.BaseConfig(), topics.DefaultNames("test."), m, zap.NewNop())
	p.status = newStatusBoard()
	for w := range 6 {
		for _, f := range []*greenwavev1.IntersectionFeatures{frameOfWindow("Q", w, 900, approachIDs(2), rng), frameOfWindow("H", w, 3600, approachIDs(1), rng)} {
			if _, err := p.Handle(ctx, messages(t, 0, f)[0]); err != nil {
				t.Fatalf("window %d of %s: %v", w, f.GetIntersectionId(), err)
			}
		}
	}
	for key, ws := range map[string]int{"Q/A0": 900, "Q/A1": 900, "H/A0": 3600} {
		want, _ := train.ConfigFor(train.BaseConfig(), ws)
		got := p.learners[key].Config()
		if got.WindowS != ws || !slices.Equal(got.Horizons, want.Horizons) {
			t.Errorf("%s: window %d horizons %v, want %d %v", key, got.WindowS, got.Horizons, ws, want.Horizons)
		}
	}
	outs, err := p.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, o := range outs {
		ids = append(ids, string(o.Key))
	}
	if want := []string{"H/A0/3600/flow", "Q/A0/900/flow", "Q/A0/1800/flow", "Q/A0/3600/flow", "Q/A1/900/flow", "Q/A1/1800/flow", "Q/A1/3600/flow"}; !slices.Equal(ids, want) {
		t.Fatalf("models %v, want %v", ids, want)
	}
	st := p.status.list(nil)
	if len(st) != 2 || st[0].GetIntersectionId() != "H" || st[0].GetWindowS() != 3600 || !slices.Equal(st[0].GetHorizonsS(), []uint32{3600}) ||
		st[1].GetVectorsApplied() != 12 || !slices.Equal(st[1].GetApproaches(), []string{"A0", "A1"}) || st[1].GetRejected() != 0 {
		t.Fatalf("status %v", st)
	}
}

// TestHandleRejectsHorizonsThatDoNotFit: TRAINER_HORIZONS that are not multiples of an intersection's window
// dead-letter its frames with a detail naming the setting, count every one by cause, log the cause once, and
// say so in the training status; other intersections train on.
func TestHandleRejectsHorizonsThatDoNotFit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	core, logs := observer.New(zapcore.InfoLevel)
	m := newMetrics(testRegistry())
	base := train.BaseConfig()
	base.Horizons = []time.Duration{15 * time.Minute, 30 * time.Minute, time.Hour}
	p := newPartition(0, 0, base, topics.DefaultNames("test."), m, zap.New(core))
	p.status = newStatusBoard()
	for w := range 5 {
		_, err := p.Handle(ctx, messages(t, 0, frameOfWindow("H", w, 3600, approachIDs(2), rng))[0])
		rej, ok := err.(*stream.RejectError)
		if !ok || rej.Reason != greenwavev1.RejectReason_REJECT_REASON_INCONSISTENT || !strings.Contains(rej.Detail, "TRAINER_HORIZONS=15m,30m,1h") ||
			!strings.Contains(rej.Detail, "3600 s window") || !strings.Contains(rej.Detail, "or to auto") || rej.EventID == "" {
			t.Fatalf("window %d: %v, want a rejection naming TRAINER_HORIZONS and the window", w, err)
		}
		if _, err := p.Handle(ctx, messages(t, 0, frameOfWindow("F", w, 300, approachIDs(1), rng))[0]); err != nil {
			t.Fatalf("a 300 s intersection: %v", err)
		}
	}
	if n := testutil.ToFloat64(m.rejected.WithLabelValues(causeHorizons)); n != 5 {
		t.Fatalf("%v rejections counted, want 5", n)
	}
	if n := logs.FilterMessageSnippet("cannot use frames").Len(); n != 1 {
		t.Fatalf("logged %d times, want once", n)
	}
	if len(p.learners) != 1 {
		t.Fatalf("learners %v, want only F's", p.learners)
	}
	st := p.status.list([]string{"H"})
	if len(st) != 1 || st[0].GetRejected() != 5 || st[0].GetLastRejectionCause() != causeHorizons ||
		!strings.Contains(st[0].GetLastRejection(), "TRAINER_HORIZONS") || st[0].GetVectorsApplied() != 0 {
		t.Fatalf("status %v", st)
	}
	// A partition revoked forgets its status: the instance that takes it over reports it.
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if st := p.status.list(nil); len(st) != 0 {
		t.Fatalf("status after close %v", st)
	}
}

// TestHandleRejectsAChangedWindow: an intersection whose window changes (a topology edit) keeps its models,
// whose frames of the new window are dead-lettered as window_changed.
func TestHandleRejectsAChangedWindow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(5, 6))
	m := newMetrics(testRegistry())
	p := newPartition(0, 0, train.BaseConfig(), topics.DefaultNames("test."), m, zap.NewNop())
	if _, err := p.Handle(ctx, messages(t, 0, frameOfWindow("I", 0, 300, approachIDs(1), rng))[0]); err != nil {
		t.Fatal(err)
	}
	_, err := p.Handle(ctx, messages(t, 0, frameOfWindow("I", 1, 900, approachIDs(1), rng))[0])
	if rej, ok := err.(*stream.RejectError); !ok || !strings.Contains(rej.Detail, "window is now 900 s") {
		t.Fatalf("err %v", err)
	}
	if n := testutil.ToFloat64(m.rejected.WithLabelValues(causeWindowChanged)); n != 1 {
		t.Fatalf("%v counted", n)
	}
}

// TestRestoreFitsEachWindow: learners of hourly and 15-minute intersections restore with the configuration
// their snapshots' window calls for, and continue exactly like an uninterrupted run.
func TestRestoreFitsEachWindow(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	kafkaConn, names := kafkatest.Setup(t, 1)
	prod := stream.NewProducer(kafkaConn, stream.ProducerConfig{})
	defer prod.Close()
	rng := rand.New(rand.NewPCG(7, 8))
	var frames []*greenwavev1.IntersectionFeatures
	for w := range 12 {
		frames = append(frames, frameOfWindow("Q", w, 900, approachIDs(2), rng), frameOfWindow("H", w, 3600, approachIDs(1), rng))
	}
	msgs := messages(t, 0, frames...)
	newP := func() *partition {
		return newPartition(0, 0, train.BaseConfig(), names, newMetrics(testRegistry()), zap.NewNop())
	}
	whole := newP()
	for _, msg := range msgs {
		if _, err := whole.Handle(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	first := newP()
	for _, msg := range msgs[:10] {
		if _, err := first.Handle(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	outs, err := first.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := prod.Write(ctx, outs...); err != nil {
		t.Fatal(err)
	}
	m := newMetrics(testRegistry())
	restored, err := restorePartition(ctx, kafkaConn, 0, 0, train.BaseConfig(), names, m, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if n := testutil.ToFloat64(m.restoreFailures); n != 0 || len(restored.learners) != 3 {
		t.Fatalf("%v restore failures, %d learners", n, len(restored.learners))
	}
	for _, msg := range msgs[10:] {
		if _, err := restored.Handle(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	want, got := learnerSnapshots(whole), learnerSnapshots(restored)
	if len(got) != len(want) {
		t.Fatalf("%d models, want %d", len(got), len(want))
	}
	for id, w := range want {
		if !proto.Equal(w, got[id]) {
			t.Errorf("model %s differs from the uninterrupted run", id)
		}
	}
}

// TestListModelsReportsTrainingStatus: the first page of ListModels carries the training status of the
// filtered intersections; later pages do not repeat it.
func TestListModelsReportsTrainingStatus(t *testing.T) {
	t.Parallel()
	board := newStatusBoard()
	board.applied(0, "I-1", t0, train.DefaultConfig(), []string{"N"})
	board.reject(0, "I-2", t0, &rejection{cause: causeHorizons, detail: "TRAINER_HORIZONS=15m does not fit"})
	api := NewAPI(modelsStoreWith(), nil, 8, testRegistry()).WithStatus(board)
	resp, err := api.ListModels(context.Background(), &greenwavev1.ListModelsRequest{PageSize: 2, Filter: &greenwavev1.ModelFilter{IntersectionIds: []string{"I-2"}}})
	if err != nil {
		t.Fatal(err)
	}
	if st := resp.GetTraining(); len(st) != 1 || st[0].GetIntersectionId() != "I-2" || st[0].GetRejected() != 1 || st[0].GetLastRejectionCause() != causeHorizons {
		t.Fatalf("training %v", st)
	}
	all, err := api.ListModels(context.Background(), &greenwavev1.ListModelsRequest{PageSize: 2})
	if err != nil || len(all.GetTraining()) != 2 || all.GetNextPageToken() == "" {
		t.Fatalf("training %v, next %q, %v", all.GetTraining(), all.GetNextPageToken(), err)
	}
	next, err := api.ListModels(context.Background(), &greenwavev1.ListModelsRequest{PageSize: 2, PageToken: all.GetNextPageToken()})
	if err != nil || len(next.GetTraining()) != 0 {
		t.Fatalf("second page training %v, %v", next.GetTraining(), err)
	}
}
