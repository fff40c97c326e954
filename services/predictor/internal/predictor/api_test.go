package predictor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/greenwave-city/greenwave/pkg/broadcast"
	"github.com/greenwave-city/greenwave/pkg/models"
	"github.com/greenwave-city/greenwave/pkg/server/limitstest"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// apiServer serves an API over a hub on a loopback gRPC server and returns a client.
func apiServer(t *testing.T, buffer int) (*broadcast.Hub[*greenwavev1.IntersectionPrediction], greenwavev1.PredictionServiceClient) {
	t.Helper()
	hub := broadcast.New[*greenwavev1.IntersectionPrediction]()
	return hub, serveAPI(t, &API{hub: hub, buffer: buffer, metrics: newMetrics(prometheus.NewRegistry(), models.NewStore(), hub)})
}

// serveAPI serves api on a loopback gRPC server and returns a client; the cleanup closes api's hub.
func serveAPI(t *testing.T, api *API) greenwavev1.PredictionServiceClient {
	t.Helper()
	t.Cleanup(api.hub.Close) // runs after the server stopped: cleanups run last-added first
	return greenwavev1.NewPredictionServiceClient(limitstest.Serve(t, func(s *grpc.Server) { greenwavev1.RegisterPredictionServiceServer(s, api) }))
}

// pred is a prediction of intersection id numbered seq (in window_start), with forecasts for 900 and 1800 s.
func pred(id string, seq int, level greenwavev1.CongestionLevel, pad int) *greenwavev1.IntersectionPrediction {
	p := &greenwavev1.IntersectionPrediction{EventId: fmt.Sprintf("%s@%d", id, seq), IntersectionId: id, Level: level,
		WindowStart: &timestamppb.Timestamp{Seconds: int64(seq)}}
	ap := &greenwavev1.ApproachPrediction{ApproachId: "n" + strings.Repeat("x", pad)}
	for _, h := range []uint32{900, 1800} {
		ap.Horizons = append(ap.Horizons, &greenwavev1.Prediction{HorizonS: h, Level: level})
	}
	p.Approaches = []*greenwavev1.ApproachPrediction{ap}
	return p
}

func seqOf(p *greenwavev1.IntersectionPrediction) int { return int(p.GetWindowStart().GetSeconds()) }

func TestSubscribeFilters(t *testing.T) {
	t.Parallel()
	hub, client := apiServer(t, 64)
	moderate, heavy := greenwavev1.CongestionLevel_CONGESTION_LEVEL_MODERATE, greenwavev1.CongestionLevel_CONGESTION_LEVEL_HEAVY
	free := greenwavev1.CongestionLevel_CONGESTION_LEVEL_FREE
	hub.Publish("a", pred("a", 1, free, 0))
	hub.Publish("b", pred("b", 1, heavy, 0))
	hub.Publish("c", pred("c", 1, moderate, 0))
	tests := []struct {
		name     string
		req      *greenwavev1.SubscribeRequest
		initial  []string // intersections of the initial state, in order
		live     []string // after publishing a@2 (heavy), c@2 (free), b@2 (moderate)
		horizons int
	}{
		{"everything", &greenwavev1.SubscribeRequest{}, []string{"a@1", "b@1", "c@1"}, []string{"a@2", "c@2", "b@2"}, 2},
		{"intersections", &greenwavev1.SubscribeRequest{IntersectionIds: []string{"a", "c"}}, []string{"a@1", "c@1"}, []string{"a@2", "c@2"}, 2},
		{"minimum level", &greenwavev1.SubscribeRequest{MinLevel: moderate}, []string{"b@1", "c@1"}, []string{"a@2", "b@2"}, 2},
		{"horizons", &greenwavev1.SubscribeRequest{IntersectionIds: []string{"b"}, HorizonsS: []uint32{1800}}, []string{"b@1"}, []string{"b@2"}, 1},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	streams := make([]greenwavev1.PredictionService_SubscribeClient, len(tests))
	for i, tt := range tests {
		st, err := client.Subscribe(ctx, tt.req)
		if err != nil {
			t.Fatal(err)
		}
		streams[i] = st
		// The initial state is complete before the live updates are published.
		for _, want := range tt.initial {
			r, err := st.Recv()
			if err != nil || r.GetPrediction().GetEventId() != want || !r.GetInitial() {
				t.Fatalf("%s: initial %v (%v), want %s", tt.name, r, err, want)
			}
		}
	}
	hub.Publish("a", pred("a", 2, heavy, 0))
	hub.Publish("c", pred("c", 2, free, 0))
	hub.Publish("b", pred("b", 2, moderate, 0))
	hub.Publish("end", pred("end", 1, heavy, 0)) // a sentinel every subscription but the filtered ones sees
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, want := range tt.live {
				r, err := streams[i].Recv()
				if err != nil || r.GetPrediction().GetEventId() != want || r.GetInitial() {
					t.Fatalf("live %v (%v), want %s", r, err, want)
				}
				for _, ap := range r.GetPrediction().GetApproaches() {
					if len(ap.GetHorizons()) != tt.horizons {
						t.Fatalf("%d horizons, want %d", len(ap.GetHorizons()), tt.horizons)
					}
				}
			}
		})
	}
	t.Run("invalid filter", func(t *testing.T) {
		st, err := client.Subscribe(ctx, &greenwavev1.SubscribeRequest{MinLevel: 99})
		if err == nil {
			_, err = st.Recv()
		}
		if status.Code(err) != codes.InvalidArgument || !hasFieldViolation(err, "min_level") {
			t.Fatalf("error %v, want INVALID_ARGUMENT on min_level", err)
		}
		if _, err := client.GetLatestPrediction(ctx, &greenwavev1.GetLatestPredictionRequest{}); status.Code(err) != codes.InvalidArgument || !hasFieldViolation(err, "intersection_id") {
			t.Fatalf("GetLatestPrediction without id: %v", err)
		}
	})
}

func hasFieldViolation(err error, field string) bool {
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				if v.GetField() == field {
					return true
				}
			}
		}
	}
	return false
}

// TestSlowSubscriberIsolation: one client stops reading; the publisher never blocks, every other client
// receives every update in order, and the stalled client is ended with RESOURCE_EXHAUSTED once its backlog
// exceeds the buffer.
func TestSlowSubscriberIsolation(t *testing.T) {
	t.Parallel()
	const buffer, keys, updates, fast = 8, 64, 2000, 3
	hub, client := apiServer(t, buffer)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stalled, err := client.Subscribe(ctx, &greenwavev1.SubscribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		seqs []int
		err  error
	}
	results := make([]result, fast)
	got := make(chan struct{}, fast*updates)
	var wg sync.WaitGroup
	for i := range fast {
		st, err := client.Subscribe(ctx, &greenwavev1.SubscribeRequest{})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for len(results[i].seqs) < updates {
				r, err := st.Recv()
				if err != nil {
					results[i].err = err
					return
				}
				results[i].seqs = append(results[i].seqs, seqOf(r.GetPrediction()))
				got <- struct{}{}
			}
		}()
	}
	// Wait until the hub has every subscriber, so each one's stream starts from an empty state.
	for hub.Subscribers() < fast+1 {
		select {
		case <-ctx.Done():
			t.Fatal("subscribers did not register")
		case <-time.After(time.Millisecond):
		}
	}
	for seq := range updates {
		// 1 KiB messages: the stalled client's HTTP/2 flow-control window fills after a few dozen.
		hub.Publish(fmt.Sprint("k", seq%keys), pred(fmt.Sprint("k", seq%keys), seq, 0, 1024))
		// Pace on the fast clients only (each update reaches all of them before the next), so none of them
		// is ever coalesced: the stalled one cannot hold anything up.
		for range fast {
			select {
			case <-got:
			case <-ctx.Done():
				t.Fatalf("fast subscribers stopped receiving at update %d", seq)
			}
		}
	}
	wg.Wait()
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("fast subscriber %d: %v", i, r.err)
		}
		for seq, s := range r.seqs {
			if s != seq {
				t.Fatalf("fast subscriber %d: update %d is %d: lost or out of order", i, seq, s)
			}
		}
	}
	var stalledGot int
	for {
		r, err := stalled.Recv()
		if err != nil {
			if status.Code(err) != codes.ResourceExhausted {
				t.Fatalf("stalled subscriber ended with %v, want RESOURCE_EXHAUSTED", err)
			}
			break
		}
		stalledGot++
		if r.GetPrediction() == nil {
			t.Fatal("empty message")
		}
	}
	if stalledGot >= updates {
		t.Fatalf("stalled subscriber received all %d updates: it never stalled", stalledGot)
	}
}

// TestListThenWatch subscribes while predictions are being published: every subscriber must see, per
// intersection, increasing sequence numbers ending with the last one published — nothing lost between the
// initial state and the stream, nothing reordered.
func TestListThenWatch(t *testing.T) {
	// endKey sorts after every other key, so a late subscriber's initial state (ordered by key) ends with it.
	const endKey = "~end"
	t.Parallel()
	const keys, updates, subscribers = 10, 3000, 8
	hub, client := apiServer(t, 4*keys)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	last := map[string]int{} // the last sequence number published per intersection
	for seq := 1; seq <= updates; seq++ {
		last[fmt.Sprint("k", seq%keys)] = seq
	}
	published := make(chan struct{})
	go func() {
		defer close(published)
		for seq := 1; seq <= updates; seq++ {
			k := fmt.Sprint("k", seq%keys)
			hub.Publish(k, pred(k, seq, 0, 0))
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, subscribers)
	for range subscribers {
		st, err := client.Subscribe(ctx, &greenwavev1.SubscribeRequest{}) // at some point during publishing
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			seen := map[string]int{}
			for {
				r, err := st.Recv()
				if err != nil {
					errs <- err
					return
				}
				p := r.GetPrediction()
				if p.GetIntersectionId() == endKey {
					break
				}
				s := seqOf(p)
				if s <= seen[p.GetIntersectionId()] {
					errs <- fmt.Errorf("%s: %d after %d", p.GetIntersectionId(), s, seen[p.GetIntersectionId()])
					return
				}
				seen[p.GetIntersectionId()] = s
			}
			for key, want := range last {
				if seen[key] != want {
					errs <- fmt.Errorf("%s: last seen %d, want %d", key, seen[key], want)
					return
				}
			}
		}()
	}
	<-published
	hub.Publish(endKey, pred(endKey, 0, 0, 0))
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil && !errors.Is(err, io.EOF) {
			t.Error(err)
		}
	}
}
