package signalcontrol

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/greenwave-city/greenwave/pkg/clip"
	"github.com/greenwave-city/greenwave/pkg/server"
	"github.com/greenwave-city/greenwave/pkg/signal"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// MaxOverrideTTL is the longest an override may hold; a forgotten override must not run a city for days.
const MaxOverrideTTL = 24 * time.Hour

// Override audit actions.
const (
	actionSet    = "set"
	actionClear  = "clear"
	actionExpire = "expire"
)

// overrideTable is every instance's copy of the active overrides, built by following the whole overrides topic
// (a global table, like the cleaner's weather). The topic is the override's only durable store: a restarted
// instance rebuilds the table from it before it plans. Safe for concurrent use.
type overrideTable struct {
	mu sync.Mutex
	by map[string]*greenwavev1.Override // intersection → override (possibly past its expiry)
	// expired is, per intersection, the override of the newest expiry audit: a restored partition's
	// ExpiredOverride marker (the audit may be newer than the partition's last state checkpoint).
	expired map[string]string
}

func newOverrideTable() *overrideTable {
	return &overrideTable{by: map[string]*greenwavev1.Override{}, expired: map[string]string{}}
}

// expiredOf returns the override of the intersection's newest expiry audit, or "".
func (t *overrideTable) expiredOf(intersection string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.expired[intersection]
}

// apply applies one audit record: set replaces the intersection's override, clear and expire remove it if it
// is the override they name (a late expire of an override already replaced changes nothing).
func (t *overrideTable) apply(a *greenwavev1.OverrideAudit) {
	ov := a.GetOverride()
	id := ov.GetIntersectionId()
	t.mu.Lock()
	defer t.mu.Unlock()
	switch a.GetAction() {
	case actionSet:
		t.by[id] = ov
	case actionClear, actionExpire:
		if a.GetAction() == actionExpire {
			t.expired[id] = ov.GetOverrideId()
		}
		if cur := t.by[id]; cur != nil && cur.GetOverrideId() == ov.GetOverrideId() {
			delete(t.by, id)
		}
	}
}

// active returns the intersection's override unless it has expired at now.
func (t *overrideTable) active(intersection string, now time.Time) *greenwavev1.Override {
	t.mu.Lock()
	defer t.mu.Unlock()
	ov := t.by[intersection]
	if ov == nil || !now.Before(ov.GetExpiresAt().AsTime()) {
		return nil
	}
	return ov
}

// all returns every override, expired ones included, sorted by intersection.
func (t *overrideTable) all() []*greenwavev1.Override {
	t.mu.Lock()
	out := make([]*greenwavev1.Override, 0, len(t.by))
	for _, ov := range t.by {
		out = append(out, ov)
	}
	t.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].GetIntersectionId() < out[j].GetIntersectionId() })
	return out
}

// countActive counts the overrides in force at now.
func (t *overrideTable) countActive(now time.Time) int {
	n := 0
	for _, ov := range t.all() {
		if now.Before(ov.GetExpiresAt().AsTime()) {
			n++
		}
	}
	return n
}

// auditOutput builds the overrides-topic record for an action. Its event id is deterministic per override and
// action, so a duplicate (an expiry written again after a rebalance) can be dropped by consumers.
func auditOutput(topic string, ov *greenwavev1.Override, action, actor string, at time.Time) stream.Output {
	a := &greenwavev1.OverrideAudit{SchemaVersion: wire.SchemaVersion, EventId: ov.GetOverrideId() + "/" + action,
		Override: ov, Action: action, Actor: actor, At: timestamppb.New(at)}
	out, _ := wire.TopicOverrides.EncodeTo(topic, a) // an audit of a valid override always marshals
	return out
}

func logAudit(log *zap.Logger, ov *greenwavev1.Override, action, actor string) {
	log.Info("override audit", zap.String("action", action), zap.String("actor", actor), zap.String("override_id", ov.GetOverrideId()),
		zap.String("intersection", ov.GetIntersectionId()), zap.String("mode", ov.GetMode().String()),
		zap.Time("expires_at", ov.GetExpiresAt().AsTime()), zap.String("reason", ov.GetReason()))
}

// authenticate identifies the operator calling method; a refusal is logged (rate-limited) with the caller's
// address and the status code, never the token.
func (a *API) authenticate(ctx context.Context, method string) (Operator, error) {
	op, err := a.svc.operators.Authenticate(ctx)
	if err != nil {
		a.svc.authLog.Denied(server.PeerAddr(ctx), method, status.Code(err).String(), "")
	}
	return op, err
}

// badRequest is INVALID_ARGUMENT with one field violation per problem.
func badRequest(msg string, violations []*errdetails.BadRequest_FieldViolation) error {
	st := status.New(codes.InvalidArgument, msg)
	if d, err := st.WithDetails(&errdetails.BadRequest{FieldViolations: violations}); err == nil {
		return d.Err()
	}
	return st.Err()
}

// SetOverride pins a mode or a plan for an intersection (see docs/signal-control.md).
func (a *API) SetOverride(ctx context.Context, req *greenwavev1.SetOverrideRequest) (resp *greenwavev1.SetOverrideResponse, err error) {
	defer func() { a.svc.metrics.countRPC("SetOverride", err) }()
	op, err := a.authenticate(ctx, "SetOverride")
	if err != nil {
		return nil, err
	}
	var vs []*errdetails.BadRequest_FieldViolation
	bad := func(field, format string, args ...any) {
		vs = append(vs, &errdetails.BadRequest_FieldViolation{Field: field, Description: fmt.Sprintf(format, args...)})
	}
	id := req.GetIntersectionId()
	in, known := a.svc.planner.topo.Intersection(id)
	switch {
	case id == "":
		bad("intersection_id", "is required")
	case !known:
		bad("intersection_id", "intersection %q is not in the topology", clip.ID(id))
	case in.ForecastOnly:
		bad("intersection_id", "intersection %q is forecast_only: it has no signals to override", clip.ID(id))
	case !op.Allows(id):
		return nil, status.Errorf(codes.PermissionDenied, "operator %q may not override intersection %q", op.Name, clip.ID(id))
	}
	mode := req.GetMode()
	switch mode {
	case greenwavev1.PlanMode_PLAN_MODE_ADAPTIVE, greenwavev1.PlanMode_PLAN_MODE_TIME_OF_DAY, greenwavev1.PlanMode_PLAN_MODE_FIXED_TIME:
		if req.GetPlan() != nil {
			bad("plan", "is only allowed with PLAN_MODE_PINNED_PLAN")
		}
	case greenwavev1.PlanMode_PLAN_MODE_PINNED_PLAN:
		if req.GetPlan() == nil {
			bad("plan", "is required with PLAN_MODE_PINNED_PLAN")
		}
	default:
		bad("mode", "must be ADAPTIVE, TIME_OF_DAY, FIXED_TIME or PINNED_PLAN, got %s", mode)
	}
	ttl := req.GetTtl()
	switch {
	case ttl == nil:
		bad("ttl", "is required (at most %s)", MaxOverrideTTL)
	case ttl.CheckValid() != nil || ttl.AsDuration() <= 0 || ttl.AsDuration() > MaxOverrideTTL:
		bad("ttl", "must be positive and at most %s, got %s", MaxOverrideTTL, ttl.AsDuration())
	}
	if len(req.GetReason()) > 1000 {
		bad("reason", "is longer than 1000 bytes")
	}
	var pinned *greenwavev1.SignalPlan
	if mode == greenwavev1.PlanMode_PLAN_MODE_PINNED_PLAN && req.GetPlan() != nil && known {
		p := wire.Plan(req.GetPlan())
		if p.IntersectionID == "" {
			p.IntersectionID = id
		}
		if err := signal.Validate(in, p); err != nil {
			if pe, ok := err.(*signal.PlanError); ok {
				for _, v := range pe.Violations {
					field := "plan"
					if v.Phase != "" {
						field = "plan.phases[" + v.Phase + "]"
					}
					bad(field, "%s", v.String())
				}
			} else {
				bad("plan", "%v", err)
			}
		} else {
			pinned = proto.Clone(req.GetPlan()).(*greenwavev1.SignalPlan)
			pinned.IntersectionId = id
		}
	}
	if len(vs) > 0 {
		return nil, badRequest("invalid override", vs)
	}
	now := a.svc.now()
	ov := &greenwavev1.Override{
		OverrideId: fmt.Sprintf("%s/override/%d", id, now.UnixNano()), IntersectionId: id, Mode: mode, Plan: pinned,
		ExpiresAt: timestamppb.New(now.Add(ttl.AsDuration())), Operator: op.Name, Reason: req.GetReason(), CreatedAt: timestamppb.New(now),
	}
	if err := a.svc.producer.Write(ctx, auditOutput(a.svc.names.Overrides, ov, actionSet, op.Name, now)); err != nil {
		return nil, status.Errorf(codes.Unavailable, "store override: %v", err)
	}
	logAudit(a.svc.log, ov, actionSet, op.Name)
	a.svc.metrics.overrideEvents.WithLabelValues(actionSet).Inc()
	return &greenwavev1.SetOverrideResponse{Override: ov}, nil
}

// ClearOverride removes an intersection's active override.
func (a *API) ClearOverride(ctx context.Context, req *greenwavev1.ClearOverrideRequest) (resp *greenwavev1.ClearOverrideResponse, err error) {
	defer func() { a.svc.metrics.countRPC("ClearOverride", err) }()
	op, err := a.authenticate(ctx, "ClearOverride")
	if err != nil {
		return nil, err
	}
	id := req.GetIntersectionId()
	if id == "" {
		return nil, badRequest("invalid request", []*errdetails.BadRequest_FieldViolation{{Field: "intersection_id", Description: "is required"}})
	}
	if !op.Allows(id) {
		return nil, status.Errorf(codes.PermissionDenied, "operator %q may not override intersection %q", op.Name, clip.ID(id))
	}
	now := a.svc.now()
	ov := a.svc.overrides.active(id, now)
	if ov == nil {
		return &greenwavev1.ClearOverrideResponse{Cleared: false}, nil
	}
	if err := a.svc.producer.Write(ctx, auditOutput(a.svc.names.Overrides, ov, actionClear, op.Name, now)); err != nil {
		return nil, status.Errorf(codes.Unavailable, "store override clearance: %v", err)
	}
	logAudit(a.svc.log, ov, actionClear, op.Name)
	a.svc.metrics.overrideEvents.WithLabelValues(actionClear).Inc()
	return &greenwavev1.ClearOverrideResponse{Cleared: true}, nil
}

// ListOverrides lists the overrides in force, sorted by intersection: only those of the intersections the
// operator may override (an operator limited to some intersections sees nothing of the others).
func (a *API) ListOverrides(ctx context.Context, _ *greenwavev1.ListOverridesRequest) (resp *greenwavev1.ListOverridesResponse, err error) {
	defer func() { a.svc.metrics.countRPC("ListOverrides", err) }()
	op, err := a.authenticate(ctx, "ListOverrides")
	if err != nil {
		return nil, err
	}
	now := a.svc.now()
	out := &greenwavev1.ListOverridesResponse{}
	for _, ov := range a.svc.overrides.all() {
		if now.Before(ov.GetExpiresAt().AsTime()) && op.Allows(ov.GetIntersectionId()) {
			out.Overrides = append(out.Overrides, ov)
		}
	}
	return out, nil
}
