package predictor

import (
	"context"
	"errors"
	"slices"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/greenwave-city/greenwave/pkg/broadcast"
	"github.com/greenwave-city/greenwave/pkg/clip"
	"github.com/greenwave-city/greenwave/pkg/server"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// API implements PredictionService over the hub of acknowledged predictions.
type API struct {
	greenwavev1.UnimplementedPredictionServiceServer
	hub     *broadcast.Hub[*greenwavev1.IntersectionPrediction]
	buffer  int
	maxSubs int // PREDICTOR_MAX_SUBSCRIBERS; 0: no cap
	metrics *metrics
}

func invalidField(field, desc string) error {
	st := status.New(codes.InvalidArgument, field+": "+desc)
	if d, err := st.WithDetails(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: field, Description: desc}}}); err == nil {
		st = d
	}
	return st.Err()
}

// GetLatestPrediction returns the newest prediction of an intersection, optionally one approach only.
func (a *API) GetLatestPrediction(_ context.Context, req *greenwavev1.GetLatestPredictionRequest) (*greenwavev1.GetLatestPredictionResponse, error) {
	if req.GetIntersectionId() == "" {
		return nil, invalidField("intersection_id", "is required")
	}
	p, ok := a.hub.Latest(req.GetIntersectionId())
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no prediction for intersection %q yet", clip.ID(req.GetIntersectionId()))
	}
	if req.GetApproachId() != "" {
		p = proto.CloneOf(p)
		p.Approaches = slices.DeleteFunc(p.Approaches, func(a *greenwavev1.ApproachPrediction) bool { return a.GetApproachId() != req.GetApproachId() })
		if len(p.Approaches) == 0 {
			return nil, status.Errorf(codes.NotFound, "intersection %q has no approach %q", clip.ID(req.GetIntersectionId()), clip.ID(req.GetApproachId()))
		}
	}
	return &greenwavev1.GetLatestPredictionResponse{Prediction: p}, nil
}

// Subscribe sends the current predictions matching the filter (initial), then every update in the order Kafka
// acknowledged them. Filters: intersection ids (none: all), minimum intersection level, horizons (the others are
// removed from each prediction). A subscriber that keeps up receives every prediction; one whose queue of
// PREDICTOR_SUBSCRIBER_BUFFER predictions is full is coalesced to the newest prediction per intersection
// (SubscribeResponse.coalesced counts what it missed), and one that lags by more intersections than that is
// ended with RESOURCE_EXHAUSTED and resumes by subscribing again (it then receives the current state first).
// Past PREDICTOR_MAX_SUBSCRIBERS streams a new one is refused with RESOURCE_EXHAUSTED.
func (a *API) Subscribe(req *greenwavev1.SubscribeRequest, st greenwavev1.PredictionService_SubscribeServer) error {
	ids, minLevel, horizons := req.GetIntersectionIds(), req.GetMinLevel(), req.GetHorizonsS()
	if _, ok := greenwavev1.CongestionLevel_name[int32(minLevel)]; !ok {
		return invalidField("min_level", "unknown congestion level")
	}
	for _, h := range horizons {
		if h == 0 {
			return invalidField("horizons_s", "horizons must be positive")
		}
	}
	filter := func(k string, p *greenwavev1.IntersectionPrediction) bool {
		return (len(ids) == 0 || slices.Contains(ids, k)) && p.GetLevel() >= minLevel
	}
	sub, err := a.hub.SubscribeCapped(a.buffer, a.maxSubs, filter)
	if err != nil {
		return server.SubscriptionStatus(err, "the current state")
	}
	defer sub.Close()
	for {
		it, err := sub.Next(st.Context())
		if err != nil {
			if errors.Is(err, broadcast.ErrOverflow) {
				a.metrics.overflows.Inc()
			}
			return server.SubscriptionStatus(err, "the current state")
		}
		p := it.Value
		if len(horizons) > 0 {
			p = proto.CloneOf(p)
			for _, ap := range p.Approaches {
				ap.Horizons = slices.DeleteFunc(ap.Horizons, func(h *greenwavev1.Prediction) bool { return !slices.Contains(horizons, h.GetHorizonS()) })
			}
		}
		if err := st.Send(&greenwavev1.SubscribeResponse{Prediction: p, Initial: it.Initial, Coalesced: uint32(it.Coalesced)}); err != nil {
			return err
		}
		a.metrics.sends.Inc()
		a.metrics.coalesced.Add(float64(it.Coalesced))
	}
}
