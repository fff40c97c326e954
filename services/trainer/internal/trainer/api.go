package trainer

import (
	"context"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/greenwave-city/greenwave/pkg/broadcast"
	"github.com/greenwave-city/greenwave/pkg/clip"
	"github.com/greenwave-city/greenwave/pkg/models"
	"github.com/greenwave-city/greenwave/pkg/server"
	"github.com/greenwave-city/greenwave/pkg/train"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// Page sizes of ListModels.
const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

// API implements ModelService over the whole models topic (every partition, not only those this instance
// trains), read into a models.Store; hub carries every stored update to WatchModels subscribers.
type API struct {
	greenwavev1.UnimplementedModelServiceServer
	store    *models.Store
	hub      *broadcast.Hub[*train.Snapshot]
	buffer   int
	maxSubs  int // 0: no cap
	requests *prometheus.CounterVec
	status   *statusBoard // nil: no training status in ListModels
}

// WithStatus makes ListModels report the training status this instance keeps (see IntersectionTrainingStatus).
func (a *API) WithStatus(b *statusBoard) *API {
	a.status = b
	return a
}

// WithMaxSubscribers caps the WatchModels streams served at once (TRAINER_MAX_SUBSCRIBERS): unread streams
// each hold a queue, so without a cap anonymous clients could grow the trainer's memory without bound.
func (a *API) WithMaxSubscribers(n int) *API {
	a.maxSubs = n
	return a
}

// NewAPI returns ModelService over store and hub. buffer is how many distinct models a WatchModels subscriber
// may lag behind before its stream is ended; calls are counted in reg by method and status code.
func NewAPI(store *models.Store, hub *broadcast.Hub[*train.Snapshot], buffer int, reg prometheus.Registerer) *API {
	a := &API{store: store, hub: hub, buffer: buffer,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "greenwave", Subsystem: "trainer", Name: "model_service_requests_total",
			Help: "ModelService calls, by method and gRPC status code (INVALID_ARGUMENT counts bad requests)."}, []string{"method", "code"})}
	reg.MustRegister(a.requests)
	if hub != nil {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "greenwave", Subsystem: "trainer", Name: "watchers",
			Help: "Live WatchModels streams."}, func() float64 { return float64(hub.Subscribers()) }))
	}
	return a
}

func (a *API) count(method string, err error) {
	a.requests.WithLabelValues(method, status.Code(err).String()).Inc()
}

// invalidField is INVALID_ARGUMENT with the offending field named in a BadRequest detail.
func invalidField(field, desc string) error {
	st := status.New(codes.InvalidArgument, field+": "+desc)
	if d, err := st.WithDetails(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: field, Description: desc}}}); err == nil {
		return d.Err()
	}
	return st.Err()
}

// summary is the message of s without what only a restore needs (P, pending inputs, seasonal history, recent
// windows) unless withP: those are most of a snapshot's size.
func summary(s *train.Snapshot, withP bool) *greenwavev1.ModelSnapshot {
	c := wire.SnapshotProto(s) // fresh messages: clearing their fields leaves s alone
	if withP {
		return c
	}
	for _, cand := range c.GetCandidates() {
		if cand.GetState() != nil {
			cand.State.Covariance, cand.State.CovarianceUpper = nil, nil
		}
	}
	c.Pending, c.BaselineState, c.History, c.Recent = nil, nil, nil, nil
	return c
}

// modelID is the id a GetModel request names: model_id, or the parts (target defaults to flow).
func modelID(req *greenwavev1.GetModelRequest) (string, error) {
	if id := req.GetModelId(); id != "" {
		return id, nil
	}
	switch {
	case req.GetIntersectionId() == "":
		return "", invalidField("intersection_id", "give model_id, or intersection_id, approach_id and horizon_s")
	case req.GetApproachId() == "":
		return "", invalidField("approach_id", "required with intersection_id (or give model_id)")
	case req.GetHorizonS() == 0:
		return "", invalidField("horizon_s", "required with intersection_id (or give model_id): the horizon in seconds, e.g. 900")
	}
	target := train.TargetFlow
	if t := req.GetTarget(); t != greenwavev1.Target_TARGET_UNSPECIFIED {
		name, known := wire.Target(t)
		if !known {
			return "", invalidField("target", fmt.Sprintf("unknown target %d", t))
		}
		target = name
	}
	return train.ModelID(req.GetIntersectionId(), req.GetApproachId(), time.Duration(req.GetHorizonS())*time.Second, target), nil
}

// GetModel returns one model, by model_id or by its parts; the covariance only when asked for.
func (a *API) GetModel(_ context.Context, req *greenwavev1.GetModelRequest) (resp *greenwavev1.GetModelResponse, err error) {
	defer func() { a.count("GetModel", err) }()
	id, err := modelID(req)
	if err != nil {
		return nil, err
	}
	s, ok := a.store.Get(id)
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no model %q", clip.ID(id))
	}
	return &greenwavev1.GetModelResponse{Model: summary(s, req.GetIncludeCovariance())}, nil
}

// pageToken encodes the last model id of a page. Tokens are opaque to clients; they stay valid across restarts
// because the listing is ordered by id.
func pageToken(lastID string) string { return base64.RawURLEncoding.EncodeToString([]byte(lastID)) }

// parsePageToken returns the model id a page token continues after.
func parsePageToken(t string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(t)
	if err != nil || len(b) == 0 {
		return "", invalidField("page_token", "not a token this service issued: pass next_page_token unchanged")
	}
	return string(b), nil
}

// ListModels pages through the models matching the filter in id order, without covariance, pending inputs or
// baseline history.
func (a *API) ListModels(_ context.Context, req *greenwavev1.ListModelsRequest) (resp *greenwavev1.ListModelsResponse, err error) {
	defer func() { a.count("ListModels", err) }()
	size := int(req.GetPageSize())
	switch {
	case size < 0:
		return nil, invalidField("page_size", "must not be negative")
	case size == 0:
		size = defaultPageSize
	case size > maxPageSize:
		size = maxPageSize
	}
	after := ""
	if t := req.GetPageToken(); t != "" {
		if after, err = parsePageToken(t); err != nil {
			return nil, err
		}
	}
	list, more := a.store.List(wire.ModelFilter(req.GetFilter()), after, size)
	resp = &greenwavev1.ListModelsResponse{}
	for _, s := range list {
		resp.Models = append(resp.Models, summary(s, false))
	}
	if more && len(list) > 0 {
		resp.NextPageToken = pageToken(list[len(list)-1].ModelID)
	}
	if req.GetPageToken() == "" {
		resp.Training = a.status.list(req.GetFilter().GetIntersectionIds())
	}
	return resp, nil
}

// WatchModels sends the current models matching the filter (Initial set), then every update of a matching
// model. A subscriber that falls behind by more than the buffer is ended with RESOURCE_EXHAUSTED; it reconnects
// and gets the current state again. Past TRAINER_MAX_SUBSCRIBERS streams a new one is refused with
// RESOURCE_EXHAUSTED.
func (a *API) WatchModels(req *greenwavev1.WatchModelsRequest, st greenwavev1.ModelService_WatchModelsServer) (err error) {
	defer func() { a.count("WatchModels", err) }()
	filter := wire.ModelFilter(req.GetFilter())
	sub, err := a.hub.SubscribeCapped(a.buffer, a.maxSubs, func(_ string, s *train.Snapshot) bool { return models.Match(filter, s) })
	if err != nil {
		return server.SubscriptionStatus(err, "the current state")
	}
	defer sub.Close()
	for {
		it, err := sub.Next(st.Context())
		if err != nil {
			return server.SubscriptionStatus(err, "the current state")
		}
		if err := st.Send(&greenwavev1.WatchModelsResponse{Model: summary(it.Value, false), Initial: it.Initial}); err != nil {
			return err
		}
	}
}
