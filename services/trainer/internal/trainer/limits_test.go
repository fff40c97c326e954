package trainer

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/greenwave-city/greenwave/pkg/broadcast"
	"github.com/greenwave-city/greenwave/pkg/server/limitstest"
	"github.com/greenwave-city/greenwave/pkg/train"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// 200 unread WatchModels streams (the memory exhaustion) against TRAINER_MAX_SUBSCRIBERS 30: 30 are
// served, the others refused with RESOURCE_EXHAUSTED; once the clients went away every subscriber is released
// and a new watcher is served.
func TestWatchModelsSubscriberCap(t *testing.T) {
	t.Parallel()
	hub := broadcast.New[*train.Snapshot]()
	defer hub.Close()
	hub.Publish("I-1/N", wire.Snapshot(snap("I-1", "N", 900, greenwavev1.Target_TARGET_FLOW, 1)))
	client := serveModels(t, NewAPI(modelsStoreWith(), hub, 4, testRegistry()).WithMaxSubscribers(30))
	watch := func(ctx context.Context) error {
		st, err := client.WatchModels(ctx, &greenwavev1.WatchModelsRequest{})
		if err != nil {
			return err
		}
		_, err = st.Recv()
		if status.Code(err) == codes.ResourceExhausted && !strings.Contains(err.Error(), "at most 30") {
			t.Errorf("refusal %v does not name the cap", err)
		}
		return err
	}
	got, release := limitstest.Hold(t, 200, watch)
	if got[codes.OK] != 30 || got[codes.ResourceExhausted] != 170 {
		t.Fatalf("streams by status %v, want 30 OK and 170 RESOURCE_EXHAUSTED", got)
	}
	release()
	limitstest.WaitFor(t, "subscribers released", func() bool { return hub.Subscribers() == 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := watch(ctx); err != nil {
		t.Fatalf("watch after the others closed: %v", err)
	}
}

func TestHugeModelIDClipped(t *testing.T) {
	t.Parallel()
	client := serveModels(t, NewAPI(modelsStoreWith(), nil, 4, testRegistry()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := client.GetModel(ctx, &greenwavev1.GetModelRequest{ModelId: strings.Repeat("m", 1<<20)})
	if msg := status.Convert(err).Message(); status.Code(err) != codes.NotFound || len(msg) > 300 || !strings.Contains(msg, "…") {
		t.Errorf("GetModel: %s, %d bytes of message; want NOT_FOUND with the id cut short", status.Code(err), len(msg))
	}
}
