package predictor

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/greenwave-city/greenwave/pkg/kafkatest"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// TestSubscribeDeliversEveryPrediction is the Subscribe completeness test on the running predictor (Kafka loop
// on kfake, gRPC API). Frames of many windows of several intersections are written at once, so that one batch
// holds several windows of an intersection. A Subscribe client that keeps up receives every prediction the
// predictions topic carries, in window order per intersection, none coalesced; a subscriber that reads nothing
// until the end receives each intersection's latest prediction, and the coalesced counts of what it received
// account for every prediction it did not.
func TestSubscribeDeliversEveryPrediction(t *testing.T) {
	t.Parallel()
	const parts, windows = 3, 80
	ids := []string{"i1", "i2", "i3", "i4"}
	kafkaConn, names := kafkatest.Setup(t, parts)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	svc := newService(serviceConfig{kafkaConn: kafkaConn, names: names, group: "g-" + names.Features, modelPartitions: parts, buffer: 1024},
		newTestPredictor(trainedStore(t, 100), time.Hour), zaptest.NewLogger(t), prometheus.NewRegistry())
	// Registered before anything is predicted: it sees every prediction as an update. Its queue holds 5.
	stalled := svc.hub.Subscribe(5, nil)
	defer stalled.Close()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- svc.run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	greenwavev1.RegisterPredictionServiceServer(srv, svc.api)
	go srv.Serve(lis) //nolint:errcheck // ends with Stop
	defer srv.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sub, err := greenwavev1.NewPredictionServiceClient(conn).Subscribe(ctx, &greenwavev1.SubscribeRequest{})
	if err != nil {
		t.Fatal(err)
	}

	prod := stream.NewProducer(kafkaConn, stream.ProducerConfig{})
	defer prod.Close()
	frames := func(from, to int) []stream.Output {
		var outs []stream.Output
		for k := from; k < to; k++ {
			for _, id := range ids {
				f := testFrame(k)
				f.IntersectionID = id
				b, err := proto.Marshal(wire.FrameProto(f))
				if err != nil {
					t.Fatal(err)
				}
				outs = append(outs, stream.Output{Topic: names.Features, Key: []byte(id), Value: b})
			}
		}
		return outs
	}
	// Window 0 first: once the client received those predictions (initial or not), its subscription exists and
	// every later prediction reaches it as an update.
	if err := prod.Write(ctx, frames(0, 1)...); err != nil {
		t.Fatal(err)
	}
	for range ids {
		if r, err := sub.Recv(); err != nil || r.GetPrediction().GetWindowStart().AsTime() != testFrame(0).WindowStart {
			t.Fatalf("first predictions: %v, %v", r, err)
		}
	}
	rest := frames(1, windows)
	if err := prod.Write(ctx, rest...); err != nil {
		t.Fatal(err)
	}
	windowOf := func(p *greenwavev1.IntersectionPrediction) int {
		return int(p.GetWindowStart().AsTime().Sub(testFrame(0).WindowStart) / (5 * time.Minute))
	}

	// The client that keeps up: every prediction, in order, coalesced 0.
	next := map[string]int{}
	got := map[string]bool{}
	for _, id := range ids {
		next[id] = 1
		got[wire.FeaturesEventID(id, testFrame(0).WindowStart)] = true
	}
	for range rest {
		r, err := sub.Recv()
		if err != nil {
			t.Fatalf("subscription ended after %d predictions: %v", len(got), err)
		}
		p := r.GetPrediction()
		id, k := p.GetIntersectionId(), windowOf(p)
		if k != next[id] || r.GetCoalesced() != 0 || r.GetInitial() {
			t.Fatalf("prediction %s (initial %v, coalesced %d): want window %d of %s, not coalesced", p.GetEventId(), r.GetInitial(), r.GetCoalesced(), next[id], id)
		}
		next[id]++
		got[p.GetEventId()] = true
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
	if len(onTopic) != len(got) {
		t.Errorf("predictions topic holds %d predictions, the subscriber received %d", len(onTopic), len(got))
	}

	// The stalled subscriber: increasing windows per intersection ending with the last, each one's Coalesced
	// counting exactly the windows skipped.
	last := map[string]int{}
	for _, id := range ids {
		last[id] = -1
	}
	delivered, coalesced := 0, 0
	for finished := 0; finished < len(ids); {
		it, err := stalled.Next(ctx)
		if err != nil {
			t.Fatalf("stalled subscriber after %d predictions: %v", delivered, err)
		}
		id, k := it.Key, windowOf(it.Value)
		if k <= last[id] || it.Coalesced != k-last[id]-1 {
			t.Fatalf("stalled subscriber: %s window %d with coalesced %d after window %d", id, k, it.Coalesced, last[id])
		}
		last[id] = k
		delivered, coalesced = delivered+1, coalesced+it.Coalesced
		if k == windows-1 {
			finished++
		}
	}
	if want := windows * len(ids); delivered+coalesced != want || coalesced == 0 {
		t.Errorf("stalled subscriber: %d delivered + %d coalesced, want %d in all with some coalesced", delivered, coalesced, want)
	}
	cctx, cancelNext := context.WithCancel(ctx)
	cancelNext()
	if _, err := stalled.Next(cctx); !errors.Is(err, context.Canceled) {
		t.Errorf("stalled subscriber after the last predictions: %v, want nothing more queued", err)
	}
}
