package e2e

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// predictionWatcher collects what a PredictionService.Subscribe stream delivers, by event id.
type predictionWatcher struct {
	mu        sync.Mutex
	byID      map[string]*greenwavev1.IntersectionPrediction
	coalesced int
	err       error
}

func (w *predictionWatcher) snapshot() (map[string]*greenwavev1.IntersectionPrediction, int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.byID), w.coalesced, w.err
}

// TestPredictionsKafkaAndGRPCAgree feeds readings through the whole pipeline and checks that a Subscribe client
// and a consumer of the predictions topic receive the same predictions — same event ids, proto.Equal content —
// each covering every approach of its intersection at every horizon.
func TestPredictionsKafkaAndGRPCAgree(t *testing.T) {
	parallelStack(t)
	p := startPipeline(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	// Subscribe before any reading is sent: list-then-watch gives an empty state, then every prediction.
	client := greenwavev1.NewPredictionServiceClient(dial(t, p.stack.Addrs("predictor").GRPC))
	sub, err := client.Subscribe(ctx, &greenwavev1.SubscribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	w := &predictionWatcher{byID: map[string]*greenwavev1.IntersectionPrediction{}}
	go func() {
		for {
			r, err := sub.Recv()
			w.mu.Lock()
			if err != nil {
				if ctx.Err() == nil {
					w.err = err
				}
				w.mu.Unlock()
				return
			}
			pr := r.GetPrediction()
			if prev, ok := w.byID[pr.GetEventId()]; ok && !proto.Equal(prev, pr) {
				w.err = fmt.Errorf("prediction %s delivered twice with different content", pr.GetEventId())
			}
			w.byID[pr.GetEventId()] = pr
			w.coalesced += int(r.GetCoalesced())
			w.mu.Unlock()
		}
	}()

	s := newSender(ctx, t, p.stack.Addrs("collector").GRPC)
	dataEnd := p.feed(ctx, s, 40, nil)
	p.flush(s, dataEnd)

	approaches := map[string][]string{}
	for _, in := range p.topo.Intersections {
		for _, a := range in.Approaches {
			approaches[in.ID] = append(approaches[in.ID], a.ID)
		}
		slices.Sort(approaches[in.ID])
	}
	const horizons = 3 // PREDICTOR_HORIZONS default: 15m, 30m, 1h
	// Stop polling well before ctx ends, so the failure names what was missing rather than a read timeout.
	deadline := time.After(2 * time.Minute)
	for {
		frames := p.eventIDs(ctx, p.names.Features, func(b []byte) (string, error) {
			var f greenwavev1.IntersectionFeatures
			err := proto.Unmarshal(b, &f)
			return f.GetEventId(), err
		})
		onTopic := p.predictions(ctx)
		got, coalesced, werr := w.snapshot()
		if werr != nil {
			t.Fatalf("subscribe: %v", werr)
		}
		intersections := map[string]bool{}
		for _, pr := range onTopic {
			intersections[pr.GetIntersectionId()] = true
		}
		complete := len(frames) > 0 && len(intersections) == len(approaches) && len(got) == len(onTopic) && coalesced == 0
		for id := range frames {
			complete = complete && onTopic[id] != nil
		}
		if complete {
			for id, want := range onTopic {
				if !proto.Equal(got[id], want) {
					t.Fatalf("prediction %s: gRPC %v\nKafka %v", id, got[id], want)
				}
				checkCoverage(t, want, approaches[want.GetIntersectionId()], horizons)
			}
			t.Logf("%d predictions of %d feature frames, identical on Kafka and gRPC", len(onTopic), len(frames))
			return
		}
		select {
		case <-deadline:
			t.Fatalf("%d frames, %d predictions on Kafka (%d intersections), %d over gRPC (%d coalesced)", len(frames), len(onTopic), len(intersections), len(got), coalesced)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// checkCoverage checks that a prediction has every approach at every horizon.
func checkCoverage(t *testing.T, p *greenwavev1.IntersectionPrediction, approaches []string, horizons int) {
	t.Helper()
	var ids []string
	for _, ap := range p.GetApproaches() {
		ids = append(ids, ap.GetApproachId())
		if len(ap.GetHorizons()) != horizons {
			t.Errorf("%s/%s: %d horizons, want %d", p.GetEventId(), ap.GetApproachId(), len(ap.GetHorizons()), horizons)
		}
		for _, h := range ap.GetHorizons() {
			if !(h.GetLower() <= h.GetValue() && h.GetValue() <= h.GetUpper()) || h.GetConfidence() != 0.9 || h.GetModelId() == "" {
				t.Errorf("%s/%s/%d: %v lacks an interval or model id", p.GetEventId(), ap.GetApproachId(), h.GetHorizonS(), h)
			}
		}
	}
	slices.Sort(ids)
	if !slices.Equal(ids, approaches) {
		t.Errorf("%s: approaches %v, want %v", p.GetEventId(), ids, approaches)
	}
}

// predictions reads the predictions topic whole, by event id; a replayed record must equal the first.
func (p *pipeline) predictions(ctx context.Context) map[string]*greenwavev1.IntersectionPrediction {
	p.t.Helper()
	out := map[string]*greenwavev1.IntersectionPrediction{}
	for _, m := range p.readAll(ctx, p.names.Predictions) {
		var pr greenwavev1.IntersectionPrediction
		if err := proto.Unmarshal(m.Value, &pr); err != nil {
			p.t.Fatalf("decode prediction: %v", err)
		}
		if prev, ok := out[pr.GetEventId()]; ok && !proto.Equal(prev, &pr) {
			p.t.Fatalf("prediction %s published twice with different content", pr.GetEventId())
		}
		out[pr.GetEventId()] = &pr
	}
	return out
}

// eventIDs reads a topic whole and returns its records' event ids.
func (p *pipeline) eventIDs(ctx context.Context, topic string, id func([]byte) (string, error)) map[string]bool {
	p.t.Helper()
	out := map[string]bool{}
	for _, m := range p.readAll(ctx, topic) {
		e, err := id(m.Value)
		if err != nil {
			p.t.Fatalf("decode %s: %v", topic, err)
		}
		out[e] = true
	}
	return out
}
