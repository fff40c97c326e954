package predictor

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/greenwave-city/greenwave/pkg/broadcast"
	"github.com/greenwave-city/greenwave/pkg/models"
	"github.com/greenwave-city/greenwave/pkg/server/limitstest"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// 200 unread Subscribe streams against PREDICTOR_MAX_SUBSCRIBERS 25: 25 are served (each received the current
// prediction), the others are refused with RESOURCE_EXHAUSTED; publishing never waits for the unread ones, and
// once the clients went away every subscriber and its queue is released and a new subscriber is served.
func TestSubscribeCap(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name          string
		cap, clients  int
		wantOK, wantX int
	}{
		{"under the cap", 25, 10, 10, 0},
		{"past the cap", 25, 200, 25, 175},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			hub := broadcast.New[*greenwavev1.IntersectionPrediction]()
			client := serveAPI(t, &API{hub: hub, buffer: 4, maxSubs: tt.cap, metrics: newMetrics(prometheus.NewRegistry(), models.NewStore(), hub)})
			hub.Publish("I-1", pred("I-1", 0, greenwavev1.CongestionLevel_CONGESTION_LEVEL_FREE, 0))
			subscribe := func(ctx context.Context) error {
				st, err := client.Subscribe(ctx, &greenwavev1.SubscribeRequest{})
				if err != nil {
					return err
				}
				_, err = st.Recv()
				if status.Code(err) == codes.ResourceExhausted && !strings.Contains(err.Error(), "too many subscribers") {
					t.Errorf("refusal %v does not say why", err)
				}
				return err
			}
			got, release := limitstest.Hold(t, tt.clients, subscribe)
			if got[codes.OK] != tt.wantOK || got[codes.ResourceExhausted] != tt.wantX {
				t.Fatalf("streams by status %v, want %d OK and %d RESOURCE_EXHAUSTED", got, tt.wantOK, tt.wantX)
			}
			for i := range 100 { // more distinct intersections than the unread subscribers' queues hold
				hub.Publish("I-"+strings.Repeat("x", i), pred("I-x", i, greenwavev1.CongestionLevel_CONGESTION_LEVEL_FREE, 0))
			}
			release()
			limitstest.WaitFor(t, "subscribers released", func() bool { return hub.Subscribers() == 0 })
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := subscribe(ctx); err != nil {
				t.Fatalf("subscribe after the others closed: %v", err)
			}
		})
	}
}

func TestHugeIDsClipped(t *testing.T) {
	t.Parallel()
	_, client := apiServer(t, 4)
	huge := strings.Repeat("I", 1<<20)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := client.GetLatestPrediction(ctx, &greenwavev1.GetLatestPredictionRequest{IntersectionId: huge})
	if msg := status.Convert(err).Message(); status.Code(err) != codes.NotFound || len(msg) > 300 || !strings.Contains(msg, "…") {
		t.Errorf("GetLatestPrediction: %s, %d bytes of message; want NOT_FOUND with the id cut short", status.Code(err), len(msg))
	}
}
