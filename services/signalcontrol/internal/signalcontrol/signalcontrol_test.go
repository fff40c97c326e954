package signalcontrol

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/greenwave-city/greenwave/pkg/broadcast"
	"github.com/greenwave-city/greenwave/pkg/kafkaconn"
	"github.com/greenwave-city/greenwave/pkg/kafkatest"
	"github.com/greenwave-city/greenwave/pkg/server"
	"github.com/greenwave-city/greenwave/pkg/signal"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/topics"
	"github.com/greenwave-city/greenwave/pkg/topology"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

const testTopology = `version: 1
revision: test-1
intersections:
  - id: A
    approaches:
      - {id: N, lanes: 2, saturation_flow_vph_per_lane: 1800, detectors: [A-N]}
      - {id: E, lanes: 1, saturation_flow_vph_per_lane: 1800, detectors: [A-E]}
    phases:
      - {id: NS, approaches: [N], min_green_s: 10, max_green_s: 60, yellow_s: 4, all_red_s: 2, lost_time_s: 4}
      - {id: EW, approaches: [E], min_green_s: 8, max_green_s: 50, yellow_s: 4, all_red_s: 2, lost_time_s: 4}
    timing: {min_cycle_s: 40, max_cycle_s: 150}
    fixed_time: {NS: 34, EW: 24}
`

// testClock is the injected processing-time clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// harness is one running signal-control against the test's Kafka.
type harness struct {
	t         *testing.T
	kafkaConn kafkaconn.Conn
	names     topics.Names
	env       map[string]string
	clock     *testClock
	// hub is the running service's plans hub.
	hub    *broadcast.Hub[*greenwavev1.SignalPlan]
	cancel context.CancelFunc
	done   chan error
	conn   *grpc.ClientConn
	client greenwavev1.SignalControlServiceClient
}

const goodToken, scopedToken = "s3cret-token", "scoped-token"

func sha(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

func newHarness(t *testing.T) *harness { t.Helper(); return newHarnessWith(t, testTopology) }

// newHarnessWith runs signal-control with the given topology.
func newHarnessWith(t *testing.T, topology string, extraEnv ...map[string]string) *harness {
	t.Helper()
	kafkaConn, names := kafkatest.Setup(t, 2)
	dir := t.TempDir()
	topo := filepath.Join(dir, "topology.yaml")
	tokens := filepath.Join(dir, "tokens.yaml")
	if err := os.WriteFile(topo, []byte(topology), 0o600); err != nil {
		t.Fatal(err)
	}
	tok := fmt.Sprintf("operators:\n  - {name: alice, token_sha256: %s}\n  - {name: bob, token_sha256: %s, intersections: [Z]}\n", sha(goodToken), sha(scopedToken))
	if err := os.WriteFile(tokens, []byte(tok), 0o600); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, kafkaConn: kafkaConn, names: names, clock: &testClock{t: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}, env: map[string]string{
		"KAFKA_BROKERS": strings.Join(kafkaConn.Brokers, ","), "TOPIC_PREFIX": strings.TrimSuffix(names.Predictions, "greenwave.predictions"),
		"TOPOLOGY_FILE": topo, "SIGNAL_OPERATOR_TOKENS_FILE": tokens, "GRPC_ADDR": "127.0.0.1:0", "HTTP_ADDR": "127.0.0.1:0",
		"LOG_LEVEL": "error", "SIGNAL_PROFILE_MIN_SAMPLES": "2", "SIGNAL_OVERRIDE_TICK": "50ms",
	}}
	maps.Copy(h.env, kafkatest.SecurityEnv())
	for _, e := range extraEnv {
		for k, v := range e {
			h.env[k] = v
		}
	}
	h.start()
	return h
}

func (h *harness) start() {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan server.Addrs, 1)
	hubs := make(chan *broadcast.Hub[*greenwavev1.SignalPlan], 1)
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() {
		h.done <- run(ctx, func(k string) (string, bool) { v, ok := h.env[k]; return v, ok },
			deps{now: h.clock.now, listening: func(a server.Addrs) { addrs <- a }, hub: func(hb *broadcast.Hub[*greenwavev1.SignalPlan]) { hubs <- hb }})
	}()
	select {
	case h.hub = <-hubs:
	case err := <-h.done:
		h.t.Fatalf("signal-control stopped: %v", err)
	}
	select {
	case a := <-addrs:
		conn, err := grpc.NewClient(a.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			h.t.Fatal(err)
		}
		h.conn, h.client = conn, greenwavev1.NewSignalControlServiceClient(conn)
	case err := <-h.done:
		h.t.Fatalf("signal-control stopped: %v", err)
	case <-time.After(30 * time.Second):
		h.t.Fatal("signal-control did not start listening")
	}
	h.t.Cleanup(h.stop)
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.conn.Close()
	h.cancel()
	if err := <-h.done; err != nil && !errors.Is(err, context.Canceled) {
		h.t.Errorf("signal-control: %v", err)
	}
	h.cancel = nil
}

type predOpt func(*greenwavev1.Prediction, *greenwavev1.ApproachPrediction)

var (
	stale    predOpt = func(p *greenwavev1.Prediction, _ *greenwavev1.ApproachPrediction) { p.Stale = true }
	drifting predOpt = func(p *greenwavev1.Prediction, _ *greenwavev1.ApproachPrediction) { p.Drifting = true }
	baseline predOpt = func(p *greenwavev1.Prediction, _ *greenwavev1.ApproachPrediction) { p.Fallback = true }
	wide     predOpt = func(p *greenwavev1.Prediction, _ *greenwavev1.ApproachPrediction) { p.Lower, p.Upper = 0, 1e5 }
	imputed  predOpt = func(_ *greenwavev1.Prediction, a *greenwavev1.ApproachPrediction) { a.Observed.Imputed = true }
)

// windowStart is the start of the test's k-th five-minute window (all in one hour of the week).
func windowStart(k int) time.Time {
	return time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC).Add(time.Duration(k) * 5 * time.Minute)
}

// sendPrediction publishes the prediction for window k of intersection A: 400 veh/h forecast, 300 observed.
func (h *harness) sendPrediction(k int, opts ...predOpt) {
	h.t.Helper()
	prod := stream.NewProducer(h.kafkaConn, stream.ProducerConfig{})
	defer prod.Close()
	if err := prod.Write(context.Background(), h.prediction("A", k, opts...)); err != nil {
		h.t.Fatal(err)
	}
}

// prediction returns the record of the prediction for window k of an intersection with approaches N and E.
func (h *harness) prediction(id string, k int, opts ...predOpt) stream.Output {
	h.t.Helper()
	start := windowStart(k)
	pred := &greenwavev1.IntersectionPrediction{SchemaVersion: wire.SchemaVersion, EventId: fmt.Sprintf("%s/%d", id, start.Unix()), IntersectionId: id,
		WindowStart: timestamppb.New(start), WindowEnd: timestamppb.New(start.Add(5 * time.Minute)), Weather: &greenwavev1.WeatherContext{Missing: true}}
	for _, ap := range []string{"N", "E"} {
		p := &greenwavev1.Prediction{HorizonS: 900, Value: 400, Lower: 350, Upper: 450, ModelId: id + "/" + ap + "/900/flow", ModelVersion: 3}
		a := &greenwavev1.ApproachPrediction{ApproachId: ap, Horizons: []*greenwavev1.Prediction{p}, Observed: &greenwavev1.ObservedTargets{FlowVph: 300}}
		for _, o := range opts {
			o(p, a)
		}
		pred.Approaches = append(pred.Approaches, a)
	}
	b, err := proto.Marshal(pred)
	if err != nil {
		h.t.Fatal(err)
	}
	return stream.Output{Topic: h.names.Predictions, Key: []byte(id), Value: b, EventID: pred.EventId, Payload: wire.TopicPredictions.Payload()}
}

// planWhere watches intersection A's plans until one satisfies ok. WatchPlans sends the current plan first, so a
// plan published before the call is seen too.
func (h *harness) planWhere(what string, ok func(*greenwavev1.SignalPlan) bool) *greenwavev1.SignalPlan {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	watch, err := h.client.WatchPlans(ctx, &greenwavev1.WatchPlansRequest{IntersectionIds: []string{"A"}})
	if err != nil {
		h.t.Fatalf("watch plans: %v", err)
	}
	var last *greenwavev1.SignalPlan
	for {
		resp, err := watch.Recv()
		if err != nil {
			h.t.Fatalf("no plan %s (%v); last %v", what, err, last)
		}
		if last = resp.GetPlan(); ok(last) {
			return last
		}
	}
}

func (h *harness) planFor(k int) *greenwavev1.SignalPlan {
	h.t.Helper()
	want := wire.PlanID("A", windowStart(k))
	return h.planWhere("for window "+want, func(p *greenwavev1.SignalPlan) bool { return p.GetPlanId() == want })
}

func TestFallbackPaths(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	steps := []struct {
		name       string
		opts       []predOpt
		wantReason greenwavev1.PlanReason
		wantDetail string
	}{
		// No history yet: straight to fixed-time. The imputed observation must not count as history.
		{"no model, no history", []predOpt{baseline, imputed}, greenwavev1.PlanReason_PLAN_REASON_FIXED_TIME, "no trained model yet"},
		{"stale, one sample", []predOpt{stale}, greenwavev1.PlanReason_PLAN_REASON_FIXED_TIME, "model stale"},
		// Two measured samples in this hour of the week: the time-of-day plan takes over.
		{"stale with history", []predOpt{stale}, greenwavev1.PlanReason_PLAN_REASON_TIME_OF_DAY, "model stale"},
		{"drift", []predOpt{drifting}, greenwavev1.PlanReason_PLAN_REASON_TIME_OF_DAY, "model in drift"},
		{"wide interval", []predOpt{wide}, greenwavev1.PlanReason_PLAN_REASON_TIME_OF_DAY, "too wide"},
		{"no model", []predOpt{baseline}, greenwavev1.PlanReason_PLAN_REASON_TIME_OF_DAY, "no trained model yet"},
		{"trusted", nil, greenwavev1.PlanReason_PLAN_REASON_PREDICTIVE, "predictive Webster plan"},
	}
	for k, s := range steps {
		h.sendPrediction(k, s.opts...)
		p := h.planFor(k)
		if p.GetReason() != s.wantReason || !strings.Contains(p.GetReasonDetail(), s.wantDetail) {
			t.Errorf("%s: reason %s detail %q, want %s containing %q", s.name, p.GetReason(), p.GetReasonDetail(), s.wantReason, s.wantDetail)
		}
		if err := signal.Validate(mustIntersection(t, h), wire.Plan(p)); err != nil {
			t.Errorf("%s: published plan invalid: %v", s.name, err)
		}
		if len(p.GetInputs()) != 2 {
			t.Errorf("%s: plan carries %d inputs, want 2", s.name, len(p.GetInputs()))
		}
	}
	// A replayed window changes nothing.
	h.sendPrediction(2, stale)
	h.sendPrediction(len(steps))
	h.planFor(len(steps))
}

// deadDetector is what the predictor sends for an approach whose detectors report nothing: a persistence
// baseline of nothing, the observation imputed (a gap), no_data set.
var deadDetector predOpt = func(p *greenwavev1.Prediction, a *greenwavev1.ApproachPrediction) {
	p.Fallback, p.Value, p.Lower, p.Upper = true, 0, 0, 1800
	a.Observed = &greenwavev1.ObservedTargets{Imputed: true}
	a.NoData = true
}

// only applies opt to one approach.
func only(approach string, opt predOpt) predOpt {
	return func(p *greenwavev1.Prediction, a *greenwavev1.ApproachPrediction) {
		if a.GetApproachId() == approach {
			opt(p, a)
		}
	}
}

// TestDetectorRecall: an approach whose detectors report nothing (no_data) is held at recall and the others are
// planned on their forecasts; with no approach reporting the plan is not predictive.
func TestDetectorRecall(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	steps := []struct {
		name       string
		opts       []predOpt
		wantReason greenwavev1.PlanReason
		wantDetail string
	}{
		{"E failed, N trusted", []predOpt{only("E", deadDetector)}, greenwavev1.PlanReason_PLAN_REASON_PREDICTIVE,
			"E: detector reports nothing, held at minimum green (recall)"},
		{"every detector failed", []predOpt{deadDetector}, greenwavev1.PlanReason_PLAN_REASON_FIXED_TIME, "no approach has detector data"},
		// N has two measured samples now (steps 1 and 3), E none: the time-of-day plan holds E at recall.
		{"E failed, N stale", []predOpt{only("E", deadDetector), only("N", stale)}, greenwavev1.PlanReason_PLAN_REASON_TIME_OF_DAY,
			"E: detector reports nothing, held at minimum green (recall)"},
	}
	in := mustIntersection(t, h)
	for k, s := range steps {
		h.sendPrediction(k, s.opts...)
		p := h.planFor(k)
		if p.GetReason() != s.wantReason || !strings.Contains(p.GetReasonDetail(), s.wantDetail) {
			t.Errorf("%s: reason %s detail %q, want %s containing %q", s.name, p.GetReason(), p.GetReasonDetail(), s.wantReason, s.wantDetail)
		}
		if err := signal.Validate(in, wire.Plan(p)); err != nil {
			t.Errorf("%s: published plan invalid: %v", s.name, err)
		}
		if s.wantReason != greenwavev1.PlanReason_PLAN_REASON_FIXED_TIME {
			for i, ph := range p.GetPhases() {
				if ph.GetPhaseId() == "EW" && ph.GetGreenS() != in.Phases[i].EffectiveMinGreenS() {
					t.Errorf("%s: phase EW green %g, want its minimum %g", s.name, ph.GetGreenS(), in.Phases[i].EffectiveMinGreenS())
				}
			}
		}
	}
}

func mustIntersection(t *testing.T, h *harness) topologyIntersection {
	t.Helper()
	topo, err := loadTopology(h.env["TOPOLOGY_FILE"])
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func withToken(tok string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tok)
}

func TestOverrideAuth(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	req := &greenwavev1.SetOverrideRequest{IntersectionId: "A", Mode: greenwavev1.PlanMode_PLAN_MODE_FIXED_TIME, Ttl: durationpb.New(time.Hour)}
	tests := []struct {
		name string
		ctx  context.Context
		want codes.Code
	}{
		{"no token", context.Background(), codes.Unauthenticated},
		{"not bearer", metadata.AppendToOutgoingContext(context.Background(), "authorization", "Basic abc"), codes.Unauthenticated},
		{"bad token", withToken("wrong"), codes.Unauthenticated},
		{"operator not allowed here", withToken(scopedToken), codes.PermissionDenied},
		{"good token", withToken(goodToken), codes.OK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.client.SetOverride(tc.ctx, req)
			if status.Code(err) != tc.want {
				t.Errorf("SetOverride = %v, want %s", err, tc.want)
			}
			if _, err := h.client.ListOverrides(tc.ctx, &greenwavev1.ListOverridesRequest{}); tc.want == codes.Unauthenticated && status.Code(err) != tc.want {
				t.Errorf("ListOverrides = %v, want %s", err, tc.want)
			}
		})
	}
}

func TestOverrideValidation(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := withToken(goodToken)
	invalid := &greenwavev1.SignalPlan{CycleS: 30, Phases: []*greenwavev1.PhaseTiming{
		{PhaseId: "NS", GreenS: 5, YellowS: 4, AllRedS: 2}, {PhaseId: "EW", GreenS: 8, YellowS: 3, AllRedS: 2}}}
	tests := []struct {
		name   string
		req    *greenwavev1.SetOverrideRequest
		fields []string
	}{
		{"no ttl", &greenwavev1.SetOverrideRequest{IntersectionId: "A", Mode: greenwavev1.PlanMode_PLAN_MODE_FIXED_TIME}, []string{"ttl"}},
		{"ttl too long", &greenwavev1.SetOverrideRequest{IntersectionId: "A", Mode: greenwavev1.PlanMode_PLAN_MODE_FIXED_TIME, Ttl: durationpb.New(25 * time.Hour)}, []string{"ttl"}},
		{"unknown intersection and mode", &greenwavev1.SetOverrideRequest{IntersectionId: "Q", Ttl: durationpb.New(time.Hour)}, []string{"intersection_id", "mode"}},
		{"pinned without plan", &greenwavev1.SetOverrideRequest{IntersectionId: "A", Mode: greenwavev1.PlanMode_PLAN_MODE_PINNED_PLAN, Ttl: durationpb.New(time.Hour)}, []string{"plan"}},
		{"invalid pinned plan", &greenwavev1.SetOverrideRequest{IntersectionId: "A", Mode: greenwavev1.PlanMode_PLAN_MODE_PINNED_PLAN, Plan: invalid, Ttl: durationpb.New(time.Hour)},
			// min green of NS, yellow of EW, the cycle sum and the cycle bounds: every violation listed.
			[]string{"plan.phases[NS]", "plan.phases[EW]", "plan", "plan"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.client.SetOverride(ctx, tc.req)
			st := status.Convert(err)
			if st.Code() != codes.InvalidArgument {
				t.Fatalf("SetOverride = %v, want INVALID_ARGUMENT", err)
			}
			var got []string
			for _, d := range st.Details() {
				if br, ok := d.(*errdetails.BadRequest); ok {
					for _, v := range br.GetFieldViolations() {
						got = append(got, v.GetField())
					}
				}
			}
			if strings.Join(got, ",") != strings.Join(tc.fields, ",") {
				t.Errorf("field violations %v, want %v (%v)", got, tc.fields, err)
			}
		})
	}
}

func TestOverrideLifecycle(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := withToken(goodToken)
	h.sendPrediction(0)
	h.planFor(0)

	pinned := &greenwavev1.SignalPlan{CycleS: 70, Phases: []*greenwavev1.PhaseTiming{
		{PhaseId: "NS", GreenS: 40, YellowS: 4, AllRedS: 2}, {PhaseId: "EW", GreenS: 18, YellowS: 4, AllRedS: 2}}}
	resp, err := h.client.SetOverride(ctx, &greenwavev1.SetOverrideRequest{IntersectionId: "A", Mode: greenwavev1.PlanMode_PLAN_MODE_PINNED_PLAN,
		Plan: pinned, Ttl: durationpb.New(time.Hour), Reason: "roadworks"})
	if err != nil {
		t.Fatal(err)
	}
	id := resp.GetOverride().GetOverrideId()
	// The pinned plan is issued at once, without waiting for a prediction.
	p := h.planWhere("pinned by the override", func(p *greenwavev1.SignalPlan) bool { return p.GetOverrideId() == id })
	if p.GetReason() != greenwavev1.PlanReason_PLAN_REASON_OVERRIDE || p.GetCycleS() != 70 {
		t.Errorf("override plan %v", p)
	}

	// Restart: the override is restored from the overrides topic, the state from the changelog.
	h.stop()
	h.start()
	waitOverrides(t, h, 1)
	h.sendPrediction(1)
	if p := h.planFor(1); p.GetReason() != greenwavev1.PlanReason_PLAN_REASON_OVERRIDE || p.GetOverrideId() != id || p.GetCycleS() != 70 {
		t.Errorf("after restart: plan %v", p)
	}

	// Expiry on the injected processing-time clock: an expire audit is written and plans are adaptive again.
	h.clock.add(time.Hour)
	waitOverrides(t, h, 0)
	waitAudit(t, h, id+"/expire")
	h.sendPrediction(2)
	if p := h.planFor(2); p.GetReason() != greenwavev1.PlanReason_PLAN_REASON_PREDICTIVE || p.GetOverrideId() != "" {
		t.Errorf("after expiry: plan %v", p)
	}

	// A mode override applies to the next prediction; clearing it ends it.
	if _, err := h.client.SetOverride(ctx, &greenwavev1.SetOverrideRequest{IntersectionId: "A", Mode: greenwavev1.PlanMode_PLAN_MODE_TIME_OF_DAY, Ttl: durationpb.New(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	waitOverrides(t, h, 1)
	h.sendPrediction(3)
	if p := h.planFor(3); p.GetReason() == greenwavev1.PlanReason_PLAN_REASON_PREDICTIVE || !strings.Contains(p.GetReasonDetail(), "pins time_of_day") {
		t.Errorf("time-of-day override: plan %v", p)
	}
	cl, err := h.client.ClearOverride(ctx, &greenwavev1.ClearOverrideRequest{IntersectionId: "A"})
	if err != nil || !cl.GetCleared() {
		t.Fatalf("ClearOverride = %v, %v", cl, err)
	}
	waitOverrides(t, h, 0)
}

func waitOverrides(t *testing.T, h *harness, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := h.client.ListOverrides(withToken(goodToken), &greenwavev1.ListOverridesRequest{})
		if err == nil && len(resp.GetOverrides()) == n {
			return
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
	t.Fatalf("ListOverrides never returned %d overrides", n)
}

// waitAudit reads the overrides topic until the audit with the event id appears.
func waitAudit(t *testing.T, h *harness, eventID string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	found := errors.New("found")
	err := stream.Follow(ctx, h.kafkaConn, h.names.Overrides, 2, func(m kafka.Message) error {
		var a greenwavev1.OverrideAudit
		if proto.Unmarshal(m.Value, &a) == nil && a.GetEventId() == eventID {
			return found
		}
		return nil
	}, nil)
	if !errors.Is(err, found) {
		t.Fatalf("audit %s not found: %v", eventID, err)
	}
}

func FuzzParseOperators(f *testing.F) {
	f.Add([]byte("operators:\n  - {name: a, token_sha256: " + sha("x") + "}\n"))
	f.Add([]byte("operators: [{name: a, token_sha256: zz, intersections: [A]}]"))
	f.Add([]byte("operators:\n  - {name: a, token_sha256: " + sha("x") + ", next_token_sha256: " + sha("y") + "}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ops, err := ParseOperators(b)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, op := range ops.list {
			if op.Name == "" || len(op.digests) < 1 || len(op.digests) > 2 {
				t.Fatalf("accepted operator %+v", op)
			}
			for _, d := range op.digests {
				if len(d) != sha256.Size || seen[string(d)] {
					t.Fatalf("operator %s: digest %x malformed or accepted twice", op.Name, d)
				}
				seen[string(d)] = true
			}
		}
	})
}

type topologyIntersection = topology.Intersection

func loadTopology(path string) (topology.Intersection, error) {
	t, err := topology.Load(path)
	if err != nil {
		return topology.Intersection{}, err
	}
	return t.Intersections[0], nil
}
