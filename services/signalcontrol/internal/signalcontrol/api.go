package signalcontrol

import (
	"context"
	"errors"
	"slices"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/greenwave-city/greenwave/pkg/broadcast"
	"github.com/greenwave-city/greenwave/pkg/clip"
	"github.com/greenwave-city/greenwave/pkg/server"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// API implements SignalControlService.
type API struct {
	greenwavev1.UnimplementedSignalControlServiceServer
	svc    *service
	hub    *broadcast.Hub[*greenwavev1.SignalPlan]
	buffer int
	// maxSubs caps the WatchPlans streams served at once (SIGNAL_MAX_SUBSCRIBERS); 0: no cap.
	maxSubs int
}

// GetPlan returns an intersection's current plan.
func (a *API) GetPlan(_ context.Context, req *greenwavev1.GetPlanRequest) (*greenwavev1.GetPlanResponse, error) {
	if req.GetIntersectionId() == "" {
		return nil, status.Error(codes.InvalidArgument, "intersection_id is required")
	}
	p, ok := a.hub.Latest(req.GetIntersectionId())
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no plan for intersection %q yet", clip.ID(req.GetIntersectionId()))
	}
	return &greenwavev1.GetPlanResponse{Plan: p}, nil
}

// WatchPlans sends the current plans (initial), then every new plan in the order it was issued per
// intersection. A subscriber that keeps up receives every plan the plans topic carries, with coalesced 0. Only
// when its queue of SIGNAL_SUBSCRIBER_BUFFER plans is full are an intersection's queued plans merged into its
// newest one, whose coalesced field counts the plans merged (delivered plus coalesced always accounts for every
// plan); a subscriber lagging by more intersections than the buffer is ended with RESOURCE_EXHAUSTED and resumes
// by watching again (current plans first). The Kafka loop never waits for a subscriber. Past
// SIGNAL_MAX_SUBSCRIBERS streams a new one is refused with RESOURCE_EXHAUSTED.
func (a *API) WatchPlans(req *greenwavev1.WatchPlansRequest, st greenwavev1.SignalControlService_WatchPlansServer) error {
	var filter func(string, *greenwavev1.SignalPlan) bool
	if ids := req.GetIntersectionIds(); len(ids) > 0 {
		filter = func(k string, _ *greenwavev1.SignalPlan) bool { return slices.Contains(ids, k) }
	}
	sub, err := a.hub.SubscribeCapped(a.buffer, a.maxSubs, filter)
	if err != nil {
		return server.SubscriptionStatus(err, "the current plans")
	}
	defer sub.Close()
	for {
		it, err := sub.Next(st.Context())
		if err != nil {
			if errors.Is(err, broadcast.ErrOverflow) {
				a.svc.metrics.watchOverflows.Inc()
			}
			return server.SubscriptionStatus(err, "the current plans")
		}
		if err := st.Send(&greenwavev1.WatchPlansResponse{Plan: it.Value, Initial: it.Initial, Coalesced: uint32(it.Coalesced)}); err != nil {
			return err
		}
		a.svc.metrics.watchSends.Inc()
		a.svc.metrics.watchCoalesced.Add(float64(it.Coalesced))
	}
}
