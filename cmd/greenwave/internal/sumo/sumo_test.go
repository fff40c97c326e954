package sumo

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/traci"
	"github.com/greenwave-city/greenwave/pkg/kafkatest"
	"github.com/greenwave-city/greenwave/pkg/topology"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// TestMain fails the package's tests when any goroutine outlives them (the loop's streams and the stack's).
func TestMain(m *testing.M) {
	kafkatest.VerifyTestMain(m)
}

// wantError checks err against want (a part of its message; "" for none) and reports whether the test goes on.
func wantError(t *testing.T, err error, want string) bool {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatal(err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Fatalf("err = %v, want one mentioning %q", err, want)
	}
	return want == ""
}

func TestScoreTrips(t *testing.T) {
	trip := func(loss, wait, dur, stops, fuel, co2 string) string {
		return `<tripinfo id="v" duration="` + dur + `" waitingTime="` + wait + `" waitingCount="` + stops + `" timeLoss="` + loss +
			`"><emissions CO2_abs="` + co2 + `" fuel_abs="` + fuel + `"/></tripinfo>`
	}
	tests := []struct {
		name    string
		xml     string
		want    Result
		wantErr string
	}{
		{name: "two trips", xml: "<tripinfos>" + trip("10", "4", "100", "1", "742000", "2000000") + trip("30", "8", "200", "3", "0", "0") + "</tripinfos>",
			want: Result{TimeLossS: 20, WaitingTimeS: 6, DurationS: 150, Stops: 2, FuelML: 500, CO2G: 1000, Completed: 2}},
		{name: "none", xml: "<tripinfos></tripinfos>", want: Result{}},
		{name: "no emissions", xml: `<tripinfos><tripinfo duration="1" waitingTime="0" waitingCount="0" timeLoss="0"/></tripinfos>`,
			wantErr: "emissions"},
		{name: "cut short", xml: "<tripinfos>" + trip("1", "1", "1", "1", "1", "1") + "<tripinfo duration=", wantErr: "XML"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got Result
			err := scoreTrips(strings.NewReader(tt.xml), &got)
			if !wantError(t, err, tt.wantErr) {
				return
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	root := t.TempDir()
	mk := func(dir string, files ...string) string {
		d := filepath.Join(root, dir)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if err := os.WriteFile(filepath.Join(d, f), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	named := mk("deploy/sumo/town", "town.net.xml", "town.rou.xml", "town.sumocfg")
	plain := mk("plain", "a.net.xml", "b.rou.xml")
	mk("twonets", "a.net.xml", "b.net.xml", "c.rou.xml")
	mk("noroutes", "a.net.xml")
	tests := []struct {
		arg, wantName, wantCfg, wantErr string
	}{
		{arg: "town", wantName: "town", wantCfg: filepath.Join(named, "town.sumocfg")},
		{arg: plain, wantName: "plain"},
		{arg: filepath.Join(root, "twonets"), wantErr: "2 *.net.xml files"},
		{arg: filepath.Join(root, "noroutes"), wantErr: "no *.rou.xml"},
		{arg: "nowhere", wantErr: "neither a directory nor a scenario"},
		{arg: filepath.Join(root, "missing"), wantErr: "no such directory"},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.arg), func(t *testing.T) {
			sc, err := Resolve(tt.arg, root)
			if !wantError(t, err, tt.wantErr) {
				return
			}
			if sc.Name != tt.wantName || sc.Config != tt.wantCfg || sc.Net == "" || sc.Routes == "" {
				t.Errorf("got %+v", sc)
			}
		})
	}
}

// sumoProgram is SUMO's default two-phase program with yellow and all-red, as netgenerate writes it.
func sumoProgram() traci.Logic {
	s := time.Second
	return traci.Logic{ProgramID: "0", Type: traci.LogicStatic, Phases: []traci.Phase{
		{Duration: 40 * s, State: "GGrr"}, {Duration: 3 * s, State: "yyrr"}, {Duration: 2 * s, State: "rrrr"},
		{Duration: 40 * s, State: "rrGG"}, {Duration: 3 * s, State: "rryy"}, {Duration: 2 * s, State: "rrrr"},
	}}
}

func TestControllerLogic(t *testing.T) {
	s := time.Second
	tests := []struct {
		controller string
		maxGap     time.Duration
		wantType   traci.LogicType
		wantGreen  [2]time.Duration // min and max of phase 0
		wantGap    string
	}{
		{Static, 0, traci.LogicStatic, [2]time.Duration{40 * s, 40 * s}, ""},
		{Actuated, 0, traci.LogicActuated, [2]time.Duration{5 * s, 60 * s}, ""},
		{Actuated, 2 * s, traci.LogicActuated, [2]time.Duration{5 * s, 60 * s}, "2.00"},
		{DelayBased, 0, traci.LogicDelayBased, [2]time.Duration{5 * s, 60 * s}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.controller+"/"+tt.wantGap, func(t *testing.T) {
			l := controllerLogic(sumoProgram(), tt.controller, tt.maxGap)
			if l.Params["max-gap"] != tt.wantGap {
				t.Errorf("max-gap %q, want %q", l.Params["max-gap"], tt.wantGap)
			}
			if l.Type != tt.wantType || l.ProgramID != "greenwave-"+tt.controller {
				t.Errorf("type %v program %q", l.Type, l.ProgramID)
			}
			if got := [2]time.Duration{l.Phases[0].MinDur, l.Phases[0].MaxDur}; got != tt.wantGreen {
				t.Errorf("green bounds %v, want %v", got, tt.wantGreen)
			}
			if y := l.Phases[1]; y.MinDur != 3*s || y.MaxDur != 3*s {
				t.Errorf("yellow bounds %v..%v, want fixed 3s", y.MinDur, y.MaxDur)
			}
		})
	}
}

func plan(cycle, offset float64, greens ...float64) *greenwavev1.SignalPlan {
	p := &greenwavev1.SignalPlan{IntersectionId: "A0", CycleS: cycle, OffsetS: offset}
	for i, g := range greens {
		p.Phases = append(p.Phases, &greenwavev1.PhaseTiming{PhaseId: "p" + strconv.Itoa(3*i), GreenS: g, YellowS: 3, AllRedS: 2})
	}
	return p
}

func TestPlanLogic(t *testing.T) {
	bounded := plan(70, 0, 35, 25)
	bounded.GapOutS = 2
	bounded.Phases[0].MinGreenS, bounded.Phases[0].MaxGreenS = 5.5, 48.7
	bounded.Phases[1].MinGreenS, bounded.Phases[1].MaxGreenS = 5, 25
	const s = time.Second
	tests := []struct {
		name       string
		plan       *greenwavev1.SignalPlan
		actuated   bool
		wantType   traci.LogicType
		wantGreens [2]time.Duration
		wantBounds [2][2]time.Duration // min and max of both greens
		wantErr    string
	}{
		{name: "whole", plan: plan(70, 0, 35, 25), wantGreens: [2]time.Duration{35 * s, 25 * s},
			wantBounds: [2][2]time.Duration{{35 * s, 35 * s}, {25 * s, 25 * s}}},
		{name: "rounded keeping the cycle", plan: plan(90, 0, 44.6, 35.4), wantGreens: [2]time.Duration{45 * s, 35 * s},
			wantBounds: [2][2]time.Duration{{45 * s, 45 * s}, {35 * s, 35 * s}}},
		{name: "bounds run at fixed time", plan: bounded, wantGreens: [2]time.Duration{35 * s, 25 * s},
			wantBounds: [2][2]time.Duration{{35 * s, 35 * s}, {25 * s, 25 * s}}},
		{name: "actuated within the bounds, rounded inwards", plan: bounded, actuated: true, wantType: traci.LogicActuated,
			wantGreens: [2]time.Duration{35 * s, 25 * s}, wantBounds: [2][2]time.Duration{{6 * s, 48 * s}, {5 * s, 25 * s}}},
		{name: "actuated without bounds is fixed time", plan: plan(70, 0, 35, 25), actuated: true,
			wantGreens: [2]time.Duration{35 * s, 25 * s}, wantBounds: [2][2]time.Duration{{35 * s, 35 * s}, {25 * s, 25 * s}}},
		{name: "unknown phase", plan: &greenwavev1.SignalPlan{CycleS: 50, Phases: []*greenwavev1.PhaseTiming{{PhaseId: "p1", GreenS: 40}}}, wantErr: "no green phase"},
		{name: "cycle mismatch", plan: plan(100, 0, 35, 25), wantErr: "cycle"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := planLogic(sumoProgram(), tt.plan, tt.actuated)
			if !wantError(t, err, tt.wantErr) {
				return
			}
			if got := [2]time.Duration{l.Phases[0].Duration, l.Phases[3].Duration}; got != tt.wantGreens || l.Type != tt.wantType {
				t.Errorf("greens %v type %v, want %v %v", got, l.Type, tt.wantGreens, tt.wantType)
			}
			got := [2][2]time.Duration{{l.Phases[0].MinDur, l.Phases[0].MaxDur}, {l.Phases[3].MinDur, l.Phases[3].MaxDur}}
			if got != tt.wantBounds {
				t.Errorf("bounds %v, want %v", got, tt.wantBounds)
			}
			if gap := l.Params["max-gap"]; (tt.wantType == traci.LogicActuated) != (gap == "2.00") {
				t.Errorf("max-gap %q with type %v", gap, l.Type)
			}
			if l.Phases[1].Duration != 3*s || l.Phases[5].Duration != 2*s || l.Phases[1].MaxDur != 3*s {
				t.Errorf("yellow and all-red changed: %+v", l.Phases)
			}
		})
	}
}

func TestAlignment(t *testing.T) {
	base := time.Unix(1_800_000_000, 0) // a multiple of 90 s and 100 s
	first := traci.Phase{Duration: 40 * time.Second}
	tests := []struct {
		name string
		at   time.Time
		p    *greenwavev1.SignalPlan
		want time.Duration
	}{
		{"on time", base, plan(90, 0, 40, 40), 0},
		{"within tolerance", base.Add(3 * time.Second), plan(90, 0, 40, 40), 0},
		{"early: wait", base.Add(80 * time.Second), plan(90, 0, 40, 40), 10 * time.Second},
		{"late: cut the green", base.Add(20 * time.Second), plan(90, 0, 40, 40), -20 * time.Second},
		{"late beyond the minimum green: wait a cycle", base.Add(40 * time.Second), plan(90, 0, 40, 40), 50 * time.Second},
		{"offset", base, plan(90, 30, 40, 40), 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := alignment(tt.p, first, 5*time.Second, tt.at); got != tt.want {
				t.Errorf("alignment = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDetectorWindow(t *testing.T) {
	d := detector{id: "e1_x_0", intersection: "A0", approach: "x", lane: "x_0"}
	for _, rd := range []traci.DetectorReading{
		{Vehicles: 1, MeanSpeedMPS: 10, OccupancyPct: 40},  // entered (and maybe left): an arrival
		{Vehicles: 1, MeanSpeedMPS: -1, OccupancyPct: 60},  // still over the loop, nobody entered: nothing
		{Vehicles: 2, MeanSpeedMPS: 5, OccupancyPct: 80},   // two entered during the step
		{Vehicles: 1, MeanSpeedMPS: -1, OccupancyPct: 100}, // standing on the loop: nothing
		{Vehicles: 1, MeanSpeedMPS: -1, OccupancyPct: 20},
	} {
		d.add(rd)
	}
	at := time.Date(2026, 1, 5, 7, 0, 0, 0, time.UTC)
	rd := d.reading(at, 2*time.Minute)
	want := &greenwavev1.TrafficReading{Count: 3, FlowVph: 90, IntervalS: 120}
	if rd.GetCount() != want.Count || rd.GetFlowVph() != want.FlowVph || rd.GetIntervalS() != want.IntervalS ||
		rd.GetOccupancyRatio() != 0.6 || rd.GetSpeedKmh() != 20.0/3*3.6 || !rd.GetObservedAt().AsTime().Equal(at) ||
		rd.GetDetectorId() != "e1_x_0" || rd.GetApproachId() != "x" || rd.GetIntersectionId() != "A0" {
		t.Errorf("reading %v", rd)
	}
	if d.steps != 0 || d.count != 0 || d.id != "e1_x_0" {
		t.Errorf("window not reset: %+v", d)
	}
}

// requireSumo skips a test when sumo is not installed, unless GREENWAVE_REQUIRE_SUMO=1 (CI) makes it a failure.
func requireSumo(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("sumo"); err != nil {
		if os.Getenv("GREENWAVE_REQUIRE_SUMO") == "1" {
			t.Fatalf("GREENWAVE_REQUIRE_SUMO=1 but sumo is not on PATH: %v", err)
		}
		t.Skip("sumo is not on PATH (Debian packages sumo and sumo-tools); GREENWAVE_REQUIRE_SUMO=1 makes this a failure")
	}
}

// children lists this process's child processes by pid and name.
func children(t *testing.T) []string {
	t.Helper()
	var out []string
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(os.Getpid()) {
			out = append(out, s[:i+1])
		}
	}
	return out
}

// runScenario runs grid3x3 to end under controller and checks what every run must hold.
func runScenario(t *testing.T, controller string, end time.Duration) (Result, Stats) {
	t.Helper()
	requireSumo(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	var st Stats
	o := Options{Scenario: "grid3x3", Controller: controller, JSON: true, End: end, Seed: -1, Stats: &st,
		LogFile: filepath.Join(t.TempDir(), "services.log")}
	err := Run(ctx, o, &stdout, &stderr)
	t.Logf("stderr:\n%s", stderr.String())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var res Result
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("last line %q: %v", lines[len(lines)-1], err)
	}
	if res.Scenario != "grid3x3" || res.Controller != controller || res.Completed == 0 || res.TimeLossS <= 0 || res.FuelML <= 0 || res.CO2G <= 0 {
		t.Errorf("result %+v", res)
	}
	// Every vehicle is accounted for: the trip-info file has a trip for every arrival SUMO reported, and the
	// others inserted were still driving when --end cut the run.
	if res.Completed != st.Arrived || res.Inserted <= res.Completed {
		t.Errorf("completed %d, arrived %d (TraCI), inserted %d: want completed = arrived < inserted", res.Completed, st.Arrived, res.Inserted)
	}
	if left := children(t); len(left) > 0 {
		t.Errorf("processes left behind: %v", left)
	}
	return res, st
}

func TestRunStatic(t *testing.T) {
	res, st := runScenario(t, Static, 5*time.Minute)
	if st.Loop.Windows != 0 {
		t.Errorf("SUMO's controller ran the loop: %+v", st.Loop)
	}
	t.Logf("%+v", res)
}

// TestRunGreenwave runs the closed loop for ten simulated minutes: five windows of readings go to the collector,
// the plans of the four windows they close come back, and plans are applied.
func TestRunGreenwave(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the five services")
	}
	_, st := runScenario(t, Greenwave, 10*time.Minute)
	l := st.Loop
	if l.Windows != 5 || l.Readings == 0 || l.Accepted != l.Readings || len(l.Rejected) != 0 {
		t.Errorf("readings: %+v", l)
	}
	if l.Plans < 4*9 || l.Applied == 0 || l.Invalid != 0 || l.Expired != 0 || l.Timeouts != 0 {
		t.Errorf("plans: %+v (want the 9 intersections' plans for 4 windows, applied, none refused or late)", l)
	}
	if l.Actuated != l.Applied {
		t.Errorf("plans: %+v (want every install an actuated program within the plan's bounds)", l)
	}
	checkPlanFates(t, l)
	total := 0
	for _, n := range l.PlansByReason {
		total += n
	}
	if total < 4*9 {
		t.Errorf("plans by reason %v: want at least %d", l.PlansByReason, 4*9)
	}
}

// cancelOn cancels a context when a line containing mark is written to it.
type cancelOn struct {
	mark   string
	cancel context.CancelFunc
	buf    bytes.Buffer
}

func (c *cancelOn) Write(b []byte) (int, error) {
	c.buf.Write(b)
	if strings.Contains(c.buf.String(), c.mark) {
		c.cancel()
	}
	return len(b), nil
}

// TestRunInterrupted is Ctrl-C: the run stops at once, says so, prints no result and leaves no process.
func TestRunInterrupted(t *testing.T) {
	requireSumo(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	stderr := &cancelOn{mark: "00:10:00", cancel: cancel} // the first progress line, ten simulated minutes in
	var stdout bytes.Buffer
	err := Run(ctx, Options{Scenario: "grid3x3", Controller: Static, JSON: true, Seed: -1}, &stdout, stderr)
	if err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Errorf("err = %v, want interrupted", err)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout %q, want no result", stdout.String())
	}
	if left := children(t); len(left) > 0 {
		t.Errorf("processes left behind: %v", left)
	}
}

// TestRunUnseenNetwork builds a network no scenario has, a 2x4 grid with one lane per direction, and random demand
// with SUMO's own tools, and runs the closed loop on the directory, after a learning period: the topology comes
// from the network itself.
func TestRunUnseenNetwork(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the five services")
	}
	requireSumo(t)
	tools := filepath.Join(os.Getenv("SUMO_HOME"), "tools", "randomTrips.py")
	if _, err := os.Stat(tools); err != nil {
		if os.Getenv("GREENWAVE_REQUIRE_SUMO") == "1" {
			t.Fatalf("GREENWAVE_REQUIRE_SUMO=1 but %v (set SUMO_HOME; Debian package sumo-tools)", err)
		}
		t.Skipf("no SUMO tools: %v", err)
	}
	dir := t.TempDir()
	net := filepath.Join(dir, "g24.net.xml")
	for _, cmd := range [][]string{
		{"netgenerate", "--grid", "--grid.x-number", "2", "--grid.y-number", "4", "--grid.length", "180",
			"--default.lanenumber", "1", "--default-junction-type", "traffic_light", "--no-turnarounds", "true", "-o", net},
		{"python3", tools, "-n", net, "-r", filepath.Join(dir, "g24.rou.xml"), "-o", filepath.Join(dir, "trips.xml"),
			"-e", "600", "-p", "2", "--seed", "3", "--fringe-factor", "10"},
	} {
		if out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(cmd, " "), err, out)
		}
	}
	os.Remove(filepath.Join(dir, "trips.xml"))
	os.Remove(filepath.Join(dir, "g24.rou.alt.xml"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	var st Stats
	// The learning period is longer than the demand (10 min): it takes two plays, which must fill it exactly.
	err := Run(ctx, Options{Scenario: dir, Controller: Greenwave, JSON: true, End: 10 * time.Minute, Seed: -1, Stats: &st, Learn: 25 * time.Minute,
		LogFile: filepath.Join(t.TempDir(), "services.log")}, &stdout, &stderr)
	t.Logf("stderr:\n%s", stderr.String())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	l := st.Loop
	if l.Windows != 5 || l.Readings == 0 || l.Accepted != l.Readings || l.Plans < 4*8 || l.Applied == 0 || l.Invalid != 0 || l.Timeouts != 0 {
		t.Errorf("loop %+v: want 5 windows of readings accepted and the 8 intersections' plans of 4 windows, applied", l)
	}
	if lr := l.Learning; lr.Plays < 2 || lr.Windows != 12 || lr.Timeouts != 0 || lr.Plans < 11*8 {
		t.Errorf("learning %+v: want 12 windows (24 min, the period cut to whole windows) in at least 2 plays, the plans of 11", lr)
	}
	if l.Received["fixed_time"] == l.Plans {
		t.Errorf("plans received %v: want time-of-day plans learnt in the learning period", l.Received)
	}
	if l.Inherited != 8 {
		t.Errorf("%d traffic lights started on the learning period's plan, want all 8", l.Inherited)
	}
	checkPlanFates(t, l)
	if !strings.Contains(stdout.String(), `"scenario":"`+filepath.Base(dir)+`"`) {
		t.Errorf("result %q does not name the directory", stdout.String())
	}
	if left := children(t); len(left) > 0 {
		t.Errorf("processes left behind: %v", left)
	}
}

// checkPlanFates checks that every received plan was counted exactly once.
func checkPlanFates(t *testing.T, l LoopStats) {
	t.Helper()
	if fates := l.Applied + l.Unchanged + l.Invalid + l.Expired + l.Superseded + l.Pending; fates != l.Plans {
		t.Errorf("plans: %+v: %d received, %d accounted for (applied, unchanged, refused, expired, superseded, still queued)", l, l.Plans, fates)
	}
}

// TestLapse checks that a running plan past its valid_until, with none queued, sends its traffic light back to
// the fallback plan, which is not counted as a received plan, and that a valid or superseded one does not.
func TestLapse(t *testing.T) {
	f, err := os.Open("../../../../deploy/sumo/grid3x3/grid3x3.net.xml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	topo, err := topology.ImportSUMO(f, topology.SUMOOptions{})
	if err != nil {
		t.Fatal(err)
	}
	epoch := time.Date(2026, time.January, 5, 7, 0, 0, 0, time.UTC)
	ended := &greenwavev1.SignalPlan{PlanId: "old", ValidUntil: timestamppb.New(epoch.Add(10 * time.Minute))}
	tests := []struct {
		name       string
		now        time.Duration
		queued     bool
		wantLapsed int
	}{
		{name: "still valid", now: 9 * time.Minute},
		{name: "lapsed", now: 10 * time.Minute, wantLapsed: 1},
		{name: "lapsed but a newer plan is queued", now: 11 * time.Minute, queued: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &loop{sensors: &sensors{topo: topo, epoch: epoch}, intersects: map[string]topology.Intersection{},
				programs: map[string]traci.Logic{"A0": sumoProgram()}, running: map[string]*greenwavev1.SignalPlan{"A0": ended},
				pending: map[string]pendingPlan{}, actuated: true, progress: func(string, ...any) {}}
			for _, in := range topo.Intersections {
				l.intersects[in.ID] = in
			}
			if tt.queued {
				l.pending["A0"] = pendingPlan{plan: &greenwavev1.SignalPlan{PlanId: "new"}, received: true}
			}
			if err := l.lapse(tt.now); err != nil {
				t.Fatal(err)
			}
			pp := l.pending["A0"]
			if l.stats.Lapsed != tt.wantLapsed || (tt.wantLapsed == 1) != (pp.plan != nil && !pp.received) {
				t.Fatalf("lapsed %d, queued %+v", l.stats.Lapsed, pp)
			}
			if tt.wantLapsed == 1 && (pp.plan.GetValidUntil() != nil || pp.logic.Type != traci.LogicActuated || pp.plan.GetGapOutS() == 0) {
				t.Errorf("fallback %v as %v: want no end of validity, an actuated program within its bounds", pp.plan, pp.logic.Type)
			}
		})
	}
}

// TestEqualPlanRenewsValidity checks that a plan equal to the running one, which changes no program, still
// carries its newer validity, so the running program does not lapse while equal plans keep coming.
func TestEqualPlanRenewsValidity(t *testing.T) {
	epoch := time.Date(2026, time.January, 5, 7, 0, 0, 0, time.UTC)
	mk := func(until time.Duration) *greenwavev1.SignalPlan {
		p := plan(90, 0, 40, 40)
		p.ValidUntil = timestamppb.New(epoch.Add(until))
		return p
	}
	l := &loop{sensors: &sensors{epoch: epoch}, running: map[string]*greenwavev1.SignalPlan{"A0": mk(15 * time.Minute)},
		pending: map[string]pendingPlan{}, progress: func(string, ...any) {}}
	newer := mk(17 * time.Minute)
	l.queue(newer)
	if l.running["A0"] != newer || l.stats.Unchanged != 1 || len(l.pending) != 0 {
		t.Fatalf("running %v, stats %+v, pending %v: want the newer equal plan running, counted unchanged", l.running["A0"], l.stats, l.pending)
	}
	if err := l.lapse(16 * time.Minute); err != nil || l.stats.Lapsed != 0 {
		t.Errorf("lapse at 16 min: %v, %d lapsed; want none", err, l.stats.Lapsed)
	}
}
