package signalcontrol

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/greenwave-city/greenwave/pkg/server/limitstest"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// 200 unread WatchPlans streams against a cap of 20: 20 are served (each got the current plan), the others are
// refused with RESOURCE_EXHAUSTED naming the cap; plans keep being issued, and once the clients went away every
// subscriber is released and a new watcher is served.
func TestWatchPlansSubscriberCap(t *testing.T) {
	t.Parallel()
	h := newHarnessWith(t, testTopology, map[string]string{"SIGNAL_MAX_SUBSCRIBERS": "20"})
	h.sendPrediction(0)
	h.planFor(0)
	watch := func(ctx context.Context) error {
		st, err := h.client.WatchPlans(ctx, &greenwavev1.WatchPlansRequest{})
		if err != nil {
			return err
		}
		_, err = st.Recv()
		if status.Code(err) == codes.ResourceExhausted && !strings.Contains(err.Error(), "at most 20") {
			t.Errorf("refusal %v does not name the cap", err)
		}
		return err
	}
	got, release := limitstest.Hold(t, 200, watch)
	if got[codes.OK] != 20 || got[codes.ResourceExhausted] != 180 {
		t.Fatalf("streams by status %v, want 20 OK and 180 RESOURCE_EXHAUSTED", got)
	}
	// The test's own view of the plans, on the hub directly (outside the cap).
	own := h.hub.Subscribe(16, nil)
	defer own.Close()
	h.sendPrediction(1) // the Kafka loop does not wait for the 20 unread subscribers
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for want := wire.PlanID("A", windowStart(1)); ; {
		it, err := own.Next(ctx)
		if err != nil {
			t.Fatalf("plan of window 1 while 20 subscribers stall: %v", err)
		}
		if it.Value.GetPlanId() == want {
			break
		}
	}
	own.Close()
	release()
	limitstest.WaitFor(t, "subscribers released", func() bool { return h.hub.Subscribers() == 0 })
	if err := watch(ctx); err != nil {
		t.Fatalf("watch after the others closed: %v", err)
	}
}

// ListOverrides shows an operator only the overrides of the intersections it may override.
func TestListOverridesScope(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	if _, err := h.client.SetOverride(withToken(goodToken), &greenwavev1.SetOverrideRequest{IntersectionId: "A",
		Mode: greenwavev1.PlanMode_PLAN_MODE_FIXED_TIME, Ttl: durationpb.New(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	waitOverrides(t, h, 1) // alice, unrestricted, sees it
	for _, tt := range []struct {
		name, token string
		want        int
	}{
		{"unrestricted operator", goodToken, 1},
		{"operator limited to Z", scopedToken, 0},
	} {
		resp, err := h.client.ListOverrides(withToken(tt.token), &greenwavev1.ListOverridesRequest{})
		if err != nil || len(resp.GetOverrides()) != tt.want {
			t.Errorf("%s: ListOverrides = %v, %v; want %d overrides", tt.name, resp.GetOverrides(), err, tt.want)
		}
	}
}

// A huge client-supplied id is echoed cut short.
func TestHugeIDsClipped(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	huge := strings.Repeat("I", 1<<20)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, getErr := h.client.GetPlan(ctx, &greenwavev1.GetPlanRequest{IntersectionId: huge})
	_, setErr := h.client.SetOverride(withToken(scopedToken), &greenwavev1.SetOverrideRequest{IntersectionId: huge,
		Mode: greenwavev1.PlanMode_PLAN_MODE_FIXED_TIME, Ttl: durationpb.New(time.Hour)})
	for _, tt := range []struct {
		name string
		err  error
		want codes.Code
	}{
		{"GetPlan", getErr, codes.NotFound},
		{"SetOverride", setErr, codes.InvalidArgument},
	} {
		st := status.Convert(tt.err)
		msg := st.Message()
		for _, d := range st.Details() {
			msg += " " + fmt.Sprint(d)
		}
		if st.Code() != tt.want || len(msg) > 4096 || !strings.Contains(msg, "…") {
			t.Errorf("%s: %s, %d bytes of message (%.200s); want %s with the id cut short", tt.name, st.Code(), len(msg), msg, tt.want)
		}
	}
}
