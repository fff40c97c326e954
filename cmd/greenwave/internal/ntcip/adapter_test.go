package ntcip

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"

	"github.com/greenwave-city/greenwave/pkg/ntcip"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// loadFor loads testdata/ntcip.yaml with the controller at addr, after edit (nil: none) changes the YAML.
func loadFor(t *testing.T, addr string, edit func(string) string) *Loaded {
	t.Helper()
	dir := t.TempDir()
	cfg, err := os.ReadFile("testdata/ntcip.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(cfg), "127.0.0.1:161", addr, 1)
	if edit != nil {
		s = edit(s)
	}
	topo, _ := os.ReadFile("testdata/topology.yaml")
	if err := os.WriteFile(filepath.Join(dir, "topology.yaml"), topo, 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "ntcip.yaml")
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"NTCIP_TEST_AUTH": testAuthPass, "NTCIP_TEST_PRIV": testPrivPass, "NTCIP_TEST_COMMUNITY": testCommunity}
	l, err := Load(path, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, os.ReadFile)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return l
}

// testController is the controller goroutine's state for I-100, without its goroutine: tests call attempt.
func testController(t *testing.T, l *Loaded) (*controller, *Metrics) {
	t.Helper()
	m := NewMetrics(prometheus.NewRegistry())
	ct := l.Config.Controllers[0]
	return &controller{cfg: ct, in: l.Intersections[ct.Intersection], creds: l.creds[ct.Intersection], retry: l.Config.Retry,
		log: zaptest.NewLogger(t), m: m, after: time.After, plans: make(chan *greenwavev1.SignalPlan, 1)}, m
}

// plan is a plan for I-100 with NS and EW greens (yellow 4 s, all-red 2 s).
func plan(id string, offset float64, ns, ew float64) *greenwavev1.SignalPlan {
	return &greenwavev1.SignalPlan{PlanId: id, IntersectionId: "I-100", CycleS: ns + ew + 12, OffsetS: offset,
		Phases: []*greenwavev1.PhaseTiming{
			{PhaseId: "NS", GreenS: ns, YellowS: 4, AllRedS: 2},
			{PhaseId: "EW", GreenS: ew, YellowS: 4, AllRedS: 2},
		}}
}

// attempt runs one attempt and returns its outcome.
func attempt(t *testing.T, c *controller, p *greenwavev1.SignalPlan) Outcome {
	t.Helper()
	var out Outcome
	c.onOutcome = func(o Outcome) { out = o }
	c.attempt(context.Background(), p)
	return out
}

const (
	coordPatternStatus = "1.3.6.1.4.1.1206.4.2.1.4.10.0"
	systemPattern      = "1.3.6.1.4.1.1206.4.2.1.4.14.0"
)

func TestActivateDoubleBuffered(t *testing.T) {
	t.Parallel()
	a := startAgent(t)
	c, m := testController(t, loadFor(t, a.addr, nil))

	out := attempt(t, c, plan("p1", 30, 48, 30))
	if out.Kind != "activated" || out.Timing.Pattern != 200 {
		t.Fatalf("first plan: %+v", out)
	}
	want := map[string]int{
		"1.3.6.1.4.1.1206.4.2.1.4.7.1.2.200": 90, "1.3.6.1.4.1.1206.4.2.1.4.7.1.3.200": 30, "1.3.6.1.4.1.1206.4.2.1.4.7.1.4.200": 200,
		"1.3.6.1.4.1.1206.4.2.1.4.9.1.3.200.2": 54, "1.3.6.1.4.1.1206.4.2.1.4.9.1.5.200.2": 1, "1.3.6.1.4.1.1206.4.2.1.4.9.1.4.200.2": 2,
		"1.3.6.1.4.1.1206.4.2.1.4.9.1.3.200.6": 54, "1.3.6.1.4.1.1206.4.2.1.4.9.1.5.200.6": 1,
		"1.3.6.1.4.1.1206.4.2.1.4.9.1.3.200.4": 36, "1.3.6.1.4.1.1206.4.2.1.4.9.1.5.200.4": 0,
		"1.3.6.1.4.1.1206.4.2.1.4.9.1.3.200.8": 36, "1.3.6.1.4.1.1206.4.2.1.4.9.1.4.200.1": 7,
		systemPattern: 200, coordPatternStatus: 200,
	}
	got := a.values(t)
	for oid, v := range want {
		if got[oid] != v {
			t.Errorf("%s = %d, want %d", oid, got[oid], v)
		}
	}
	// Read through SNMP as well, as a central system would.
	if v, err := a.getV2("1.3.6.1.4.1.1206.4.2.1.4.7.1.2.200"); err != nil || v != 90 {
		t.Errorf("snmp get patternCycleTime.200 = %d, %v", v, err)
	}

	// The next plan goes to the other slot while pattern 200 keeps running.
	out = attempt(t, c, plan("p2", 12.4, 40.4, 37.6))
	if out.Kind != "activated" || out.Timing.Pattern != 201 || out.Timing.CycleS != 90 || out.Timing.OffsetS != 12 {
		t.Fatalf("second plan: %+v", out)
	}
	got = a.values(t)
	if got[systemPattern] != 201 || got["1.3.6.1.4.1.1206.4.2.1.4.7.1.4.201"] != 201 || got["1.3.6.1.4.1.1206.4.2.1.4.9.1.3.200.2"] != 54 {
		t.Errorf("after the second plan: systemPatternControl %d, patternSplitNumber.201 %d, slot 200 split %d",
			got[systemPattern], got["1.3.6.1.4.1.1206.4.2.1.4.7.1.4.201"], got["1.3.6.1.4.1.1206.4.2.1.4.9.1.3.200.2"])
	}
	// The same timing again is not written.
	if out := attempt(t, c, plan("p3", 12.4, 40.4, 37.6)); out.Kind != "unchanged" {
		t.Errorf("equal plan: %+v", out)
	}
	if n := testutil.ToFloat64(m.activated.WithLabelValues("I-100")); n != 2 {
		t.Errorf("activated %g, want 2", n)
	}
}

func TestSingleSlotReleasesBeforeRewriting(t *testing.T) {
	t.Parallel()
	a := startAgent(t)
	l := loadFor(t, a.addr, func(s string) string {
		return strings.Replace(s, "      - {pattern: 201, split: 201}\n", "", 1)
	})
	c, _ := testController(t, l)
	if out := attempt(t, c, plan("p1", 0, 48, 30)); out.Kind != "activated" {
		t.Fatalf("first plan: %+v", out)
	}
	// Rewriting the running slot: the controller is released to its own plan first, so a failure leaves it there.
	a.setControl(t, map[string][]string{"refuse": {"1.3.6.1.4.1.1206.4.2.1.4.7.1.2.200"}})
	out := attempt(t, c, plan("p2", 0, 40, 38))
	var we *WriteError
	if out.Kind != "failed" || !errors.As(out.Err, &we) || we.Stage != "pattern" {
		t.Fatalf("refused rewrite: %+v", out)
	}
	if v := a.value(t, systemPattern); v != ntcip.SystemPatternStandby {
		t.Errorf("systemPatternControl %d after a failed rewrite, want standby", v)
	}
	a.setControl(t, nil)
	if out := attempt(t, c, plan("p2", 0, 40, 38)); out.Kind != "activated" || a.value(t, systemPattern) != 200 {
		t.Fatalf("retry: %+v", out)
	}
}

// TestFailuresLeaveTheControllerOnItsPlan: whatever step fails, the controller keeps running its own pattern;
// the failure is reported with its stage and reason and counted.
func TestFailuresLeaveTheControllerOnItsPlan(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		control       map[string][]string
		stage, reason string
	}{
		{name: "split refused", control: map[string][]string{"refuse": {"1.3.6.1.4.1.1206.4.2.1.4.9.1.3.200.4"}}, stage: "split", reason: ReasonRefused},
		{name: "pattern refused", control: map[string][]string{"refuse": {"1.3.6.1.4.1.1206.4.2.1.4.7.1.3"}}, stage: "pattern", reason: ReasonRefused},
		{name: "activation refused", control: map[string][]string{"refuse": {systemPattern}}, stage: "activate", reason: ReasonRefused},
		{name: "timeout writing the split", control: map[string][]string{"hang": {"1.3.6.1.4.1.1206.4.2.1.4.9.1.3.200"}}, stage: "split", reason: ReasonUnreachable},
		{name: "read-back differs", control: map[string][]string{"drift": {"1.3.6.1.4.1.1206.4.2.1.4.7.1.2.200"}}, stage: "verify", reason: ReasonReadBack},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := startAgent(t)
			l := loadFor(t, a.addr, func(s string) string {
				return strings.Replace(strings.Replace(s, "timeout: 2s", "timeout: 300ms", 1), "retries: 1", "retries: 0", 1)
			})
			c, m := testController(t, l)
			a.setControl(t, tc.control)
			out := attempt(t, c, plan("p1", 30, 48, 30))
			var we *WriteError
			if out.Kind != "failed" || out.Reason != tc.reason || !errors.As(out.Err, &we) || we.Stage != tc.stage {
				t.Fatalf("outcome %+v (%v), want failed at %s: %s", out, out.Err, tc.stage, tc.reason)
			}
			a.setControl(t, nil)
			if v := a.value(t, systemPattern); v != 0 {
				t.Errorf("systemPatternControl %d, want 0 (the controller's own schedule)", v)
			}
			if v := a.value(t, coordPatternStatus); v != 1 {
				t.Errorf("coordPatternStatus %d, want the controller's own pattern 1", v)
			}
			if n := testutil.ToFloat64(m.failures.WithLabelValues("I-100", tc.reason, tc.stage)); n != 1 {
				t.Errorf("failures{%s,%s} = %g", tc.reason, tc.stage, n)
			}
		})
	}
}

// TestClearanceMismatch: a controller whose yellow differs from the topology's is not written to.
func TestClearanceMismatch(t *testing.T) {
	t.Parallel()
	a := startAgent(t)
	if err := a.setV2("1.3.6.1.4.1.1206.4.2.1.1.2.1.8.4", 35); err != nil { // phase 4 (EW): 3.5 s, the topology says 4 s
		t.Fatal(err)
	}
	c, m := testController(t, loadFor(t, a.addr, nil))
	out := attempt(t, c, plan("p1", 0, 48, 30))
	if out.Kind != "failed" || out.Reason != ReasonClearance || !strings.Contains(out.Err.Error(), "1.3.6.1.4.1.1206.4.2.1.1.2.1.8.4 = 35, want 40") {
		t.Fatalf("outcome %+v (%v)", out, out.Err)
	}
	if v := a.value(t, systemPattern); v != 0 || a.value(t, "1.3.6.1.4.1.1206.4.2.1.4.7.1.2.200") != 0 {
		t.Errorf("written to a controller with other clearances: systemPatternControl %d", v)
	}
	if n := testutil.ToFloat64(m.failures.WithLabelValues("I-100", ReasonClearance, "clearance")); n != 1 {
		t.Errorf("failures %g", n)
	}
}

// TestControllerMinimumGreenTooLong: a controller that would hold a phase longer than the plan's green is not
// written to.
func TestControllerMinimumGreenTooLong(t *testing.T) {
	t.Parallel()
	a := startAgent(t)
	if err := a.setV2("1.3.6.1.4.1.1206.4.2.1.1.2.1.4.8", 31); err != nil { // phase 8 (EW): 31 s, the plan gives EW 30 s
		t.Fatal(err)
	}
	c, _ := testController(t, loadFor(t, a.addr, nil))
	out := attempt(t, c, plan("p1", 0, 48, 30))
	if out.Kind != "failed" || out.Reason != ReasonMinGreen || !strings.Contains(out.Err.Error(), "1.3.6.1.4.1.1206.4.2.1.1.2.1.4.8 = 31, the plan's green is 30") {
		t.Fatalf("outcome %+v (%v)", out, out.Err)
	}
	if v := a.value(t, systemPattern); v != 0 {
		t.Errorf("systemPatternControl %d", v)
	}
	// A plan whose EW green is long enough is written.
	if out := attempt(t, c, plan("p2", 0, 40, 38)); out.Kind != "activated" {
		t.Fatalf("outcome %+v (%v)", out, out.Err)
	}
}

func TestUnreachableController(t *testing.T) {
	t.Parallel()
	requireSnmpd(t) // not needed, but the config asks for nothing else: keep the SNMP tests together
	l := loadFor(t, freeUDP(t), func(s string) string {
		return strings.Replace(strings.Replace(s, "timeout: 2s", "timeout: 200ms", 1), "retries: 1", "retries: 0", 1)
	})
	c, m := testController(t, l)
	out := attempt(t, c, plan("p1", 0, 48, 30))
	if out.Kind != "failed" || out.Reason != ReasonUnreachable {
		t.Fatalf("outcome %+v", out)
	}
	if n := testutil.ToFloat64(m.failures.WithLabelValues("I-100", ReasonUnreachable, "clearance")); n != 1 {
		t.Errorf("failures %g", n)
	}
}

// TestRefusedPlans: plans that do not match the mapping or break the constraints are never written (the
// controller address is unreachable: any write attempt would show as a failure).
func TestRefusedPlans(t *testing.T) {
	t.Parallel()
	l := loadFor(t, freeUDP(t), nil)
	wrongPhase := plan("p", 0, 48, 30)
	wrongPhase.Phases[1].PhaseId = "WE"
	extraPhase := plan("p", 0, 48, 30)
	extraPhase.Phases = append(extraPhase.Phases, &greenwavev1.PhaseTiming{PhaseId: "LT", GreenS: 5, YellowS: 3})
	extraPhase.CycleS += 8
	tests := []struct {
		name   string
		plan   *greenwavev1.SignalPlan
		reason string
	}{
		{"unknown phase", wrongPhase, RefusedPhaseMapping},
		{"phase not in the mapping", extraPhase, RefusedPhaseMapping},
		{"green below the minimum", plan("p", 0, 8, 40), RefusedInvalid},
		{"cycle longer than the MIB's 255 s", func() *greenwavev1.SignalPlan { p := plan("p", 0, 48, 30); p.CycleS = 300; return p }(), RefusedInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, m := testController(t, l)
			out := attempt(t, c, tc.plan)
			if out.Kind != "refused" || out.Reason != tc.reason {
				t.Fatalf("outcome %+v (%v), want refused: %s", out, out.Err, tc.reason)
			}
			if n := testutil.ToFloat64(m.refused.WithLabelValues("I-100", tc.reason)); n != 1 {
				t.Errorf("refused{%s} = %g", tc.reason, n)
			}
		})
	}
}

// fakeControl is a signal-control that streams the plans sent on its channel.
type fakeControl struct {
	greenwavev1.UnimplementedSignalControlServiceServer
	plans chan *greenwavev1.SignalPlan
}

func (f *fakeControl) WatchPlans(req *greenwavev1.WatchPlansRequest, st grpc.ServerStreamingServer[greenwavev1.WatchPlansResponse]) error {
	for {
		select {
		case <-st.Context().Done():
			return nil
		case p := <-f.plans:
			if err := st.Send(&greenwavev1.WatchPlansResponse{Plan: p}); err != nil {
				return err
			}
		}
	}
}

// TestRunRetriesWithBackoff: Run watches plans, a refused write is retried when the back-off ends, and the
// retry activates the plan.
func TestRunRetriesWithBackoff(t *testing.T) {
	t.Parallel()
	a := startAgent(t)
	l := loadFor(t, a.addr, nil)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fake := &fakeControl{plans: make(chan *greenwavev1.SignalPlan, 4)}
	srv := grpc.NewServer()
	greenwavev1.RegisterSignalControlServiceServer(srv, fake)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)

	outcomes := make(chan Outcome, 8)
	backoffs := make(chan time.Duration, 8)
	fire := make(chan time.Time)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, l, Options{SignalControl: lis.Addr().String(), Logger: zaptest.NewLogger(t), Metrics: NewMetrics(prometheus.NewRegistry()),
			OnOutcome: func(o Outcome) { outcomes <- o },
			After:     func(d time.Duration) <-chan time.Time { backoffs <- d; return fire }})
	}()
	a.setControl(t, map[string][]string{"refuse": {systemPattern}})
	fake.plans <- plan("p1", 0, 48, 30)
	if o := <-outcomes; o.Kind != "failed" || o.Reason != ReasonRefused {
		t.Fatalf("first attempt %+v", o)
	}
	if d := <-backoffs; d != time.Second {
		t.Errorf("first back-off %v, want retry.initial 1s", d)
	}
	if v := a.value(t, systemPattern); v != 0 {
		t.Errorf("systemPatternControl %d after a refused activation", v)
	}
	a.setControl(t, nil)
	fire <- time.Now()
	if o := <-outcomes; o.Kind != "activated" || o.PlanID != "p1" {
		t.Fatalf("retry %+v", o)
	}
	if v := a.value(t, systemPattern); v != 201 && v != 200 {
		t.Errorf("systemPatternControl %d after the retry", v)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// TestHold: while the controller commands Greenwave's pattern, a hold sends systemPatternControl again; once it
// commands something else, Greenwave lets go, and its next plan is written even if equal to the last one.
func TestHold(t *testing.T) {
	t.Parallel()
	a := startAgent(t)
	c, m := testController(t, loadFor(t, a.addr, nil))
	if out := attempt(t, c, plan("p1", 0, 48, 30)); out.Kind != "activated" {
		t.Fatalf("plan: %+v", out)
	}
	c.refresh(context.Background())
	if n := testutil.ToFloat64(m.holds.WithLabelValues("I-100")); n != 1 || a.value(t, systemPattern) != 200 {
		t.Fatalf("holds %g, systemPatternControl %d", n, a.value(t, systemPattern))
	}
	// The controller's backup timer ran out: it is back on its own schedule.
	if err := a.setV2(systemPattern, 0); err != nil {
		t.Fatal(err)
	}
	c.refresh(context.Background())
	if n := testutil.ToFloat64(m.released.WithLabelValues("I-100")); n != 1 || a.value(t, systemPattern) != 0 {
		t.Fatalf("control lost %g, systemPatternControl %d", n, a.value(t, systemPattern))
	}
	if out := attempt(t, c, plan("p2", 0, 48, 30)); out.Kind != "activated" || a.value(t, systemPattern) != out.Timing.Pattern {
		t.Fatalf("the same plan after control was lost: %+v, systemPatternControl %d", out, a.value(t, systemPattern))
	}
}

// TestSNMPv2cOptIn: with allow_insecure, a v2c controller is written with its community.
func TestSNMPv2cOptIn(t *testing.T) {
	t.Parallel()
	a := startAgent(t)
	l := loadFor(t, a.addr, func(s string) string {
		i, j := strings.Index(s, "      version: v3"), strings.Index(s, "      timeout:")
		return s[:i] + "      version: v2c\n      allow_insecure: true\n      community: {env: NTCIP_TEST_COMMUNITY}\n" + s[j:]
	})
	c, _ := testController(t, l)
	if out := attempt(t, c, plan("p1", 0, 48, 30)); out.Kind != "activated" || a.value(t, systemPattern) != 200 {
		t.Fatalf("outcome %+v (%v)", out, out.Err)
	}
}

// TestSNMPv3WrongPassPhrase: an authentication failure is a failed write (reported, counted, retried), never a
// write.
func TestSNMPv3WrongPassPhrase(t *testing.T) {
	t.Parallel()
	a := startAgent(t)
	l := loadFor(t, a.addr, func(s string) string {
		return strings.Replace(strings.Replace(s, "timeout: 2s", "timeout: 300ms", 1), "retries: 1", "retries: 0", 1)
	})
	c, _ := testController(t, l)
	c.creds.authPass = "not-the-pass-phrase"
	out := attempt(t, c, plan("p1", 0, 48, 30))
	if out.Kind != "failed" || a.value(t, systemPattern) != 0 {
		t.Fatalf("outcome %+v (%v)", out, out.Err)
	}
	t.Logf("reported as %s: %v", out.Reason, out.Err)
}
