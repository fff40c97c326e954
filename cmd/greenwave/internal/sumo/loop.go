package sumo

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/dev"
	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/gateway"
	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/traci"
	"github.com/greenwave-city/greenwave/pkg/server"
	"github.com/greenwave-city/greenwave/pkg/signal"
	"github.com/greenwave-city/greenwave/pkg/topology"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// DefaultPlanTimeout bounds the wait (wall clock) for a window's acks and plans.
const DefaultPlanTimeout = 30 * time.Second

// detectorSetbackM is how far upstream of the stop line the bridge places each lane's induction loop (at mid-lane
// on shorter lanes): far enough that the queue of a normal red does not sit on it all the time, close enough to
// count what reaches the junction.
const detectorSetbackM = 40.0

// LoopStats counts what went through the closed loop.
type LoopStats struct {
	// Windows are the windows sent; Readings the readings in them; Accepted the readings the collector accepted.
	Windows, Readings, Accepted int
	// Rejected counts rejected readings by reason.
	Rejected map[string]int
	// Plans counts the plans received for a window (not the initial ones); PlansByReason the plans signal-control
	// published, by reason, read from its topic (greenwave dev's final summary).
	Plans         int
	PlansByReason map[string]int
	// Received counts the plans received by reason (predictive, time_of_day, fixed_time, override).
	Received map[string]int
	// Applied plans became a SUMO program; Unchanged equalled the running (or queued) one; Invalid failed signal.Validate or
	// did not fit the program; Timeouts are windows whose plans did not all arrive in time.
	Applied, Unchanged, Invalid, Timeouts int
	// Expired plans reached their valid_until before a cycle boundary and were not installed.
	Expired int
	// Superseded plans were replaced by a newer plan for their intersection before they were installed (or
	// arrived after a newer one); Pending were still queued when the run ended. Every received plan is counted
	// once: Plans = Applied + Unchanged + Invalid + Expired + Superseded + Pending.
	Superseded, Pending int
	// Lapsed counts running plans whose valid_until passed with no newer plan: their traffic lights went back to
	// the field controller's own fallback plan (installLocal's).
	Lapsed int
	// Inherited counts the traffic lights that started this run on the plan the stack had made for its start,
	// in the learning period (the others start on the fallback plan).
	Inherited int
	// Aligned counts installs whose first green was lengthened or shortened to reach the plan's offset.
	Aligned int
	// Actuated counts the applied plans run as SUMO actuated programs within their actuation bounds.
	Actuated int
	// FirstPredictive is the simulated time from which the first plan computed from a prediction was valid: the
	// stack's warm-up (-1: none came).
	FirstPredictive time.Duration
	// Learning counts the learning period before the scored run (--learn); the other counts are the scored run's.
	Learning LearnStats
}

// loop is greenwave in the loop: the stack, the detectors it reads, the plans it applies.
type loop struct {
	*sensors
	topoFile   string
	logFile    string
	timeout    time.Duration
	actuated   bool // install plans with actuation bounds as SUMO actuated programs (Greenwave, not GreenwaveFixed)
	intersects map[string]topology.Intersection

	client   *traci.Client
	progress func(string, ...any)
	programs map[string]traci.Logic // SUMO's program per traffic light: the phases a plan retimes
	running  map[string]*greenwavev1.SignalPlan
	pending  map[string]pendingPlan
	lastPh   map[string]int
	stream   *gateway.Stream
	plans    chan *greenwavev1.SignalPlan
	latest   map[string]*greenwavev1.SignalPlan // newest plan per intersection
	stats    LoopStats
	summary  chan map[string]int
	warm     warmup
	sent     int             // windows sent to the stack, learning included
	fresh    map[string]bool // intersections whose latest plan has not been queued yet
	readDone chan struct{}   // closed when readDev has read dev's last line
}

// detector is one induction loop and what it measures, with its window's sums.
type detector struct {
	id, intersection, approach, lane         string
	count, occSteps, speedSum, speedN, steps float64
}

type pendingPlan struct {
	plan  *greenwavev1.SignalPlan
	logic traci.Logic
	// received is false for the fallback plan the loop queues itself when a running plan lapses: it is no
	// received plan and is not counted as one.
	received bool
}

// prepareLoop writes the topology the detectors were derived with (prepareSensors) for the services.
func (r *runner) prepareLoop() error {
	l := &loop{sensors: r.sensors, topoFile: filepath.Join(r.tmp, "topology.yaml"),
		logFile: r.o.LogFile, timeout: r.o.PlanTimeout, intersects: map[string]topology.Intersection{},
		running: map[string]*greenwavev1.SignalPlan{}, pending: map[string]pendingPlan{}, lastPh: map[string]int{},
		latest: map[string]*greenwavev1.SignalPlan{}, plans: make(chan *greenwavev1.SignalPlan, 1024), fresh: map[string]bool{},
		summary: make(chan map[string]int, 1), stats: LoopStats{Rejected: map[string]int{}, Received: map[string]int{}}}
	if l.timeout <= 0 {
		l.timeout = DefaultPlanTimeout
	}
	for _, in := range l.topo.Intersections {
		l.intersects[in.ID] = in
	}
	if err := writeTopology(l.topoFile, l.topo); err != nil {
		return err
	}
	l.actuated = r.o.Controller == Greenwave
	l.warm.epoch = l.epoch // the scored run's, before the plan watch starts reading it
	r.loop = l
	return nil
}

// endPlay counts the received plans still queued when a SUMO run ends (Pending) and drops them: the next run
// starts on installLocal's plan.
func (l *loop) endPlay() {
	for _, pp := range l.pending {
		if pp.received {
			l.stats.Pending++
		}
	}
	clear(l.pending)
}

// attach makes a freshly started SUMO (a learning play or the scored run) the one the loop reads and controls:
// its client and programs, simulated time 0 at l.epoch, no window open, no plan queued or running.
func (l *loop) attach(c *traci.Client, programs map[string]traci.Logic) {
	l.client, l.programs = c, programs // programs is filled by the caller, installLocal after attach
	l.winStart = 0
	l.endPlay()
	clear(l.running)
	clear(l.lastPh)
	for i := range l.dets {
		d := &l.dets[i]
		*d = detector{id: d.id, intersection: d.intersection, approach: d.approach, lane: d.lane}
	}
}

// start runs the stack as `greenwave dev --sample=false` does and connects to it: the gateway stream to the
// collector and a WatchPlans stream from signal-control. stop stops both and the stack.
func (l *loop) start(ctx context.Context, progress func(string, ...any)) (stop func(), err error) {
	l.progress = progress
	devCtx, cancelDev := context.WithCancel(context.WithoutCancel(ctx))
	out, outW := io.Pipe()
	ready := make(chan map[string]server.Addrs, 1)
	devDone := make(chan error, 1)
	l.readDone = make(chan struct{})
	go l.readDev(out, ready)
	go func() {
		err := dev.Run(devCtx, dev.Options{Topology: l.topoFile, Sample: false, JSON: true, LogFile: l.logFile,
			LogLevel: "info", ReadyTimeout: 2 * time.Minute, Env: stackEnv(l.window, os.Getenv)}, outW, &prefixed{progress: progress})
		outW.Close()
		devDone <- err
	}()
	var conns []*grpc.ClientConn
	stopAll := func() {
		if l.stream != nil {
			l.stream.CloseSend()
			l.stream.Close(func(*greenwavev1.BatchAck) error { return nil })
		}
		for _, cc := range conns {
			cc.Close()
		}
		cancelDev()
		if err := <-devDone; err != nil {
			progress("stack: %v", err)
		}
		<-l.readDone // dev closed its output: its last line, the final summary, has been read
		select {
		case l.stats.PlansByReason = <-l.summary:
		default:
		}
		l.stats.FirstPredictive = -1
		if at, ok := l.warm.firstPredictive(); ok && at < 0 {
			l.stats.FirstPredictive = at
			progress("warm-up: the first predictive plan is valid from %s before the run (in the learning period)", fmtSim(-at))
		} else if ok {
			l.stats.FirstPredictive = at
			progress("warm-up: the first predictive plan is valid from %s (simulated)", fmtSim(at))
		} else {
			progress("warm-up: no predictive plan in this run (see docs/sumo.md, Short windows)")
		}
	}
	var addrs map[string]server.Addrs
	select {
	case addrs = <-ready:
	case err := <-devDone:
		cancelDev()
		return nil, fmt.Errorf("start the stack: %v", orDone(err))
	case <-ctx.Done():
		cancelDev()
		<-devDone
		return nil, ctx.Err()
	}
	dial := func(name string) (*grpc.ClientConn, error) {
		cc, err := grpc.NewClient(addrs[name].GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", name, err)
		}
		conns = append(conns, cc)
		return cc, nil
	}
	collector, err := dial("collector")
	if err != nil {
		stopAll()
		return nil, err
	}
	control, err := dial("signalcontrol")
	if err != nil {
		stopAll()
		return nil, err
	}
	watch, err := greenwavev1.NewSignalControlServiceClient(control).WatchPlans(devCtx, &greenwavev1.WatchPlansRequest{})
	if err != nil {
		stopAll()
		return nil, fmt.Errorf("watch plans: %w", err)
	}
	go func() {
		for {
			resp, err := watch.Recv()
			if err != nil {
				close(l.plans)
				return
			}
			if resp.GetInitial() {
				continue
			}
			l.warm.see(resp.GetPlan())
			select {
			case l.plans <- resp.GetPlan():
			case <-devCtx.Done():
			}
		}
	}()
	if l.stream, err = gateway.Open(ctx, greenwavev1.NewCollectorServiceClient(collector), "", 1); err != nil {
		stopAll()
		return nil, fmt.Errorf("open StreamReadings: %w", err)
	}
	progress("stack ready; simulated time 0 is %s, windows of %v", l.epoch.Format(time.RFC3339), l.window)
	return stopAll, nil
}

func orDone(err error) error {
	if err == nil {
		return fmt.Errorf("it stopped before it was ready")
	}
	return err
}

// readDev reads greenwave dev's JSON lines: the addresses from the ready line, the plan counts from the final
// summary. The plan lines are not used: the loop watches plans itself.
func (l *loop) readDev(r io.Reader, ready chan<- map[string]server.Addrs) {
	defer close(l.readDone)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var ev struct {
			Event    string                  `json:"event"`
			Final    bool                    `json:"final"`
			Services map[string]server.Addrs `json:"services"`
			Plans    map[string]int          `json:"plans"`
		}
		if json.Unmarshal(sc.Bytes(), &ev) != nil {
			continue
		}
		switch {
		case ev.Event == "ready":
			ready <- ev.Services
		case ev.Event == "summary" && ev.Final:
			l.summary <- ev.Plans
		}
	}
	_, _ = io.Copy(io.Discard, r)
}

// prefixed passes greenwave dev's progress lines on, marked as the stack's.
type prefixed struct {
	progress func(string, ...any)
	mu       sync.Mutex
	buf      []byte
}

func (p *prefixed) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		p.progress("stack: %s", strings.TrimPrefix(string(p.buf[:i]), "greenwave dev: "))
		p.buf = p.buf[i+1:]
	}
}

// step takes one simulation step's detector readings and, at a window's end, runs the lock-step exchange;
// then it installs the plans whose traffic lights reached a cycle boundary.
func (l *loop) step(ctx context.Context, now time.Duration) error {
	if err := l.sample(ctx, l.client); err != nil {
		return err
	}
	if now-l.winStart >= l.window {
		if err := l.exchange(ctx, now); err != nil {
			return err
		}
		l.winStart = now
	}
	return l.install(ctx, now)
}

// add sums one step's reading. What SUMO 1.15 gives per step (MSInductLoop): the vehicle number counts the
// vehicles that entered the loop during the step plus any still over it, so a vehicle that takes several steps to
// pass (or stands on the loop) is in each of them; the mean speed is over the vehicles that entered during the
// step, -1 when none did. A point loop is under one vehicle at a time (vehicles keep a gap), so a vehicle still
// over the loop from an earlier step leaves no room for a new one: a step with a speed counts all its vehicles
// as arrivals, a step without counts none. The speed is the arrivals' (count-weighted).
func (d *detector) add(rd traci.DetectorReading) {
	d.steps++
	d.occSteps += rd.OccupancyPct / 100
	if rd.Vehicles == 0 || rd.MeanSpeedMPS < 0 {
		return
	}
	d.count += float64(rd.Vehicles)
	d.speedSum += rd.MeanSpeedMPS * float64(rd.Vehicles)
	d.speedN += float64(rd.Vehicles)
}

// reading is the detector's window as a canonical reading, and resets the sums: count, flow in veh/h, occupancy
// as the share of the window, speed in km/h when a vehicle was seen moving.
func (d *detector) reading(at time.Time, window time.Duration) *greenwavev1.TrafficReading {
	count := math.Round(d.count)
	occ := 0.0
	if d.steps > 0 {
		occ = math.Min(1, d.occSteps/d.steps)
	}
	rd := &greenwavev1.TrafficReading{SchemaVersion: wire.SchemaVersion, IntersectionId: d.intersection, ApproachId: d.approach,
		DetectorId: d.id, LaneId: d.lane, ObservedAt: timestamppb.New(at), IntervalS: uint32(window.Seconds()),
		Count: count, FlowVph: count * 3600 / window.Seconds(), OccupancyRatio: &occ}
	if d.speedN > 0 {
		kmh := d.speedSum / d.speedN * 3.6
		rd.SpeedKmh = &kmh
	}
	*d = detector{id: d.id, intersection: d.intersection, approach: d.approach, lane: d.lane}
	return rd
}

// exchange is the lock-step at the end of a window: send its readings, wait for the ack, then wait until every
// intersection has the plan of the window before (which these readings closed), at most l.timeout in all.
func (l *loop) exchange(ctx context.Context, now time.Duration) error {
	winStart := l.epoch.Add(l.winStart)
	batch := &greenwavev1.ReadingBatch{BatchId: fmt.Sprintf("sumo-%s", winStart.UTC().Format("20060102T150405Z"))}
	var err error
	if batch.Readings, err = l.readings(); err != nil {
		return err
	}
	if err := l.stream.Send(batch); err != nil {
		return fmt.Errorf("send window %s: %w", winStart.Format(time.RFC3339), err)
	}
	l.stats.Windows++
	l.sent++
	l.stats.Readings += len(batch.Readings)
	deadline := time.Now().Add(l.timeout)
	switch ev, ack := l.stream.Await(ctx, l.timeout); ev {
	case gateway.Acked:
		l.stats.Accepted += int(ack.GetAcceptedReadings())
		for _, rj := range ack.GetRejected() {
			l.stats.Rejected[gateway.RejectName(rj.GetReason())]++
		}
	case gateway.Cancelled:
		return ctx.Err()
	case gateway.Ended:
		return fmt.Errorf("the collector ended the stream: %v", l.stream.Ended(func(*greenwavev1.BatchAck) error { return nil }))
	case gateway.TimedOut:
		return fmt.Errorf("no ack for window %s within %v", winStart.Format(time.RFC3339), l.timeout)
	}
	if l.sent < 2 {
		return l.takePlans(ctx, now, time.Time{}, deadline) // no window closed yet: take what is there
	}
	return l.takePlans(ctx, now, winStart, deadline)
}

// takePlans receives plans until every intersection has one valid from closed (zero: none awaited) or the
// deadline passes, and queues each intersection's newest for its next cycle boundary.
func (l *loop) takePlans(ctx context.Context, now time.Duration, closed, deadline time.Time) error {
	missing := func() int {
		n := 0
		for id := range l.intersects {
			if p := l.latest[id]; p == nil || p.GetValidFrom().AsTime().Before(closed) {
				n++
			}
		}
		return n
	}
	take := func(p *greenwavev1.SignalPlan) {
		l.stats.Plans++
		l.stats.Received[strings.ToLower(strings.TrimPrefix(p.GetReason().String(), "PLAN_REASON_"))]++
		id := p.GetIntersectionId()
		old := l.latest[id]
		if old != nil && p.GetValidFrom().AsTime().Before(old.GetValidFrom().AsTime()) {
			l.stats.Superseded++ // arrived after a newer one
			return
		}
		if l.fresh[id] {
			l.stats.Superseded++ // the one it replaces was never queued
		}
		l.latest[id], l.fresh[id] = p, true
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
wait:
	for !closed.IsZero() && missing() > 0 {
		select {
		case p, ok := <-l.plans:
			if !ok {
				return fmt.Errorf("the plan watch ended")
			}
			take(p)
		case <-timer.C:
			l.stats.Timeouts++
			l.progress("%s: plans of the window to %s missing for %d intersections after %v; they keep their programs",
				fmtSim(now), closed.Format("15:04:05"), missing(), l.timeout)
			break wait
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for more := true; more; { // plans already here
		select {
		case p, ok := <-l.plans:
			if ok {
				take(p)
			}
			more = ok
		default:
			more = false
		}
	}
	for _, id := range sortedKeys(l.fresh) {
		if l.fresh[id] {
			l.fresh[id] = false
			l.queue(l.latest[id])
		}
	}
	return l.lapse(now)
}

// lapse sends every traffic light whose running plan's validity has ended, with no plan queued, back to the
// field controller's fallback plan: a controller never runs a plan past its valid_until.
func (l *loop) lapse(now time.Duration) error {
	at := l.epoch.Add(now)
	for _, id := range sortedKeys(l.running) {
		cur := l.running[id]
		until := cur.GetValidUntil()
		if _, queued := l.pending[id]; queued || until == nil || at.Before(until.AsTime()) {
			continue
		}
		fb, logic, err := l.fallback(id)
		if err != nil {
			return err
		}
		l.pending[id] = pendingPlan{plan: fb, logic: logic}
		l.stats.Lapsed++
		l.progress("%s: plan %s of %s lapsed at %s with no newer plan; back to its fallback plan", fmtSim(now), cur.GetPlanId(), id,
			until.AsTime().Format("15:04:05"))
	}
	return nil
}

// sortedKeys returns m's keys in order, so the loop talks to SUMO in the same order in every run.
func sortedKeys[V any](m map[string]V) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// queue validates a received plan and turns it into a program for its traffic light, to be installed at the next
// cycle boundary; a plan equal to the queued or running one is not queued again (Unchanged), and a queued plan
// it replaces is Superseded.
func (l *loop) queue(p *greenwavev1.SignalPlan) {
	id := p.GetIntersectionId()
	pp, queued := l.pending[id]
	// An equal plan changes no program, but it is the newer plan: its validity is the one that counts.
	if queued && samePlan(pp.plan, p) {
		l.stats.Unchanged++
		pp.plan = p
		l.pending[id] = pp
		return
	}
	if cur := l.running[id]; !queued && cur != nil && samePlan(cur, p) {
		l.stats.Unchanged++
		l.running[id] = p
		return
	}
	in, ok := l.intersects[id]
	base, known := l.programs[id]
	if !ok || !known {
		l.stats.Invalid++
		return
	}
	if err := signal.Validate(in, wire.Plan(p)); err != nil {
		l.stats.Invalid++
		l.progress("plan %s refused: %v", p.GetPlanId(), err)
		return
	}
	logic, err := planLogic(base, p, l.actuated)
	if err != nil {
		l.stats.Invalid++
		l.progress("plan %s refused: %v", p.GetPlanId(), err)
		return
	}
	if queued && pp.received {
		l.stats.Superseded++
	}
	l.pending[id] = pendingPlan{plan: p, logic: logic, received: true}
}

func samePlan(a, b *greenwavev1.SignalPlan) bool {
	if a.GetCycleS() != b.GetCycleS() || a.GetOffsetS() != b.GetOffsetS() || a.GetGapOutS() != b.GetGapOutS() ||
		len(a.GetPhases()) != len(b.GetPhases()) {
		return false
	}
	for i, ph := range a.GetPhases() {
		o := b.GetPhases()[i]
		if ph.GetPhaseId() != o.GetPhaseId() || ph.GetGreenS() != o.GetGreenS() || ph.GetMinGreenS() != o.GetMinGreenS() ||
			ph.GetMaxGreenS() != o.GetMaxGreenS() {
			return false
		}
	}
	return true
}

// planLogic is SUMO's program with the plan's greens: green phase k of the program (topology.SUMOPhaseID(k))
// lasts the plan's green of that phase; the yellow and all-red phases keep the program's durations, which are
// the topology's yellow_s and all_red_s (topology.ImportSUMO derives them from these phases), so the program's
// cycle is the plan's. With actuated and a plan that has actuation bounds, the program is SUMO's actuated
// controller instead: each green starts at the plan's green and runs between the plan's min_green_s and
// max_green_s (rounded inwards to whole seconds), gapping out after the plan's gap_out_s (SUMO's max-gap).
func planLogic(base traci.Logic, p *greenwavev1.SignalPlan, actuated bool) (traci.Logic, error) {
	var ids []string
	var greens []float64
	for _, ph := range p.GetPhases() {
		ids = append(ids, ph.GetPhaseId())
		greens = append(greens, ph.GetGreenS())
	}
	actuated = actuated && p.GetGapOutS() > 0
	whole := wholeSeconds(greens)
	l := base
	l.ProgramID, l.Type, l.CurrentPhase, l.Params = "greenwave", traci.LogicStatic, 0, map[string]string{}
	if actuated {
		l.ProgramID, l.Type = "greenwave-actuated", traci.LogicActuated
		l.Params["max-gap"] = strconv.FormatFloat(p.GetGapOutS(), 'f', 2, 64)
	}
	l.Phases = make([]traci.Phase, len(base.Phases))
	var cycle time.Duration
	used := 0
	for k, ph := range base.Phases {
		ph.Next = nil
		i := slices.Index(ids, topology.SUMOPhaseID(k))
		green := i >= 0 && isGreen(ph.State)
		if green {
			ph.Duration = time.Duration(whole[i]) * time.Second
			used++
		}
		ph.MinDur, ph.MaxDur = ph.Duration, ph.Duration
		if green && actuated {
			bounds := p.GetPhases()[i]
			ph.MinDur = min(ph.Duration, time.Duration(math.Ceil(bounds.GetMinGreenS()))*time.Second)
			ph.MaxDur = max(ph.Duration, time.Duration(math.Floor(bounds.GetMaxGreenS()))*time.Second)
		}
		cycle += ph.Duration
		l.Phases[k] = ph
	}
	if used != len(ids) {
		return traci.Logic{}, fmt.Errorf("%d of its %d phases are no green phase of SUMO program %q", len(ids)-used, len(ids), base.ProgramID)
	}
	if d := math.Abs(cycle.Seconds() - p.GetCycleS()); d > 1 {
		return traci.Logic{}, fmt.Errorf("cycle %.1fs, SUMO's program with its greens %.1fs", p.GetCycleS(), cycle.Seconds())
	}
	return l, nil
}

// wholeSeconds rounds greens to whole seconds keeping their rounded sum (largest remainders first): SUMO switches
// phases on step boundaries, so a green of 44.1 s would run 45 s at the usual 1-s step and the cycle would drift
// away from the plan's, and from its offset, by a second or two a cycle.
func wholeSeconds(greens []float64) []float64 {
	out := make([]float64, len(greens))
	total := 0.0
	for i, g := range greens {
		out[i] = math.Floor(g)
		total += g
	}
	left := int(math.Round(total - floatSum(out)))
	order := make([]int, len(greens))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		return greens[order[a]]-out[order[a]] > greens[order[b]]-out[order[b]]
	})
	for i := 0; i < left && i < len(order); i++ {
		out[order[i]]++
	}
	return out
}

func floatSum(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s
}

// installLocal gives a traffic light the plan it starts a SUMO run on: the stack's plan for that moment when the
// learning period left one (valid at l.epoch; counted as Inherited), otherwise the plan a field controller holds
// itself until the first plan arrives, signal-control's own fallback (fallback). A traffic light the topology
// left out keeps its SUMO program.
func (l *loop) installLocal(ctx context.Context, c *traci.Client, tl string, base traci.Logic) error {
	if _, ok := l.intersects[tl]; !ok {
		return nil
	}
	plan, logic, err := l.fallback(tl)
	if p := l.latest[tl]; p != nil && validAt(p, l.epoch) {
		if lg, perr := planLogic(base, p, l.actuated); perr == nil && signal.Validate(l.intersects[tl], wire.Plan(p)) == nil {
			plan, logic, err = p, lg, nil
			l.fresh[tl] = false
			l.stats.Inherited++
		}
	}
	if err != nil {
		return err
	}
	if err := c.SetTrafficLightLogic(ctx, tl, logic); err != nil {
		return err
	}
	l.running[tl] = plan
	return nil
}

// fallback is the plan a field controller holds itself for a traffic light: signal-control's own fallback
// (signal.Decide without forecasts or history: the topology's fixed-time plan with its actuation bounds), with no
// end of validity, and its program.
func (l *loop) fallback(tl string) (*greenwavev1.SignalPlan, traci.Logic, error) {
	p, err := signal.Decide(l.intersects[tl], signal.DecideInput{})
	if err != nil {
		return nil, traci.Logic{}, fmt.Errorf("fallback plan of %s: %w", tl, err)
	}
	plan := wire.PlanProto(p, "local-"+tl, l.epoch, time.Time{}, nil, "", l.topo.Revision)
	logic, err := planLogic(l.programs[tl], plan, l.actuated)
	if err != nil {
		return nil, traci.Logic{}, fmt.Errorf("fallback plan of %s: %w", tl, err)
	}
	return plan, logic, nil
}

// validAt reports whether at lies in the plan's validity [valid_from, valid_until).
func validAt(p *greenwavev1.SignalPlan, at time.Time) bool {
	from, until := p.GetValidFrom(), p.GetValidUntil()
	return (from == nil || !at.Before(from.AsTime())) && (until == nil || at.Before(until.AsTime()))
}

// minGreen is the effective minimum green of the intersection's first phase, the one an offset alignment cuts.
func (l *loop) minGreen(id string) time.Duration {
	in := l.intersects[id]
	if len(in.Phases) == 0 {
		return 0
	}
	return time.Duration(in.Phases[0].EffectiveMinGreenS() * float64(time.Second))
}

// install switches every traffic light with a queued plan whose program has just started a cycle (entered
// phase 0) to the plan's program. With an offset, the first green is stretched once so that green starts at
// the offset from the cycle reference (event time's Unix epoch, the same for every intersection).
func (l *loop) install(ctx context.Context, now time.Duration) error {
	ids := make([]string, 0, len(l.pending))
	for id := range l.pending {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		ph, err := l.client.TrafficLightPhase(ctx, id)
		if err != nil {
			return err
		}
		prev, seen := l.lastPh[id]
		l.lastPh[id] = ph
		if !seen || ph != 0 || prev == 0 {
			continue
		}
		pp := l.pending[id]
		delete(l.pending, id)
		if until := pp.plan.GetValidUntil(); until != nil && !l.epoch.Add(now).Before(until.AsTime()) {
			l.stats.Expired++ // its validity ended before its traffic light reached a cycle boundary
			continue          // (a fallback plan has no valid_until)
		}
		if err := l.client.SetTrafficLightLogic(ctx, id, pp.logic); err != nil {
			return err
		}
		if d := alignment(pp.plan, pp.logic.Phases[0], l.minGreen(id), l.epoch.Add(now)); d != 0 && pp.logic.Type == traci.LogicStatic {
			if err := l.client.SetTrafficLightPhaseDuration(ctx, id, pp.logic.Phases[0].Duration+d); err != nil {
				return err
			}
			l.stats.Aligned++
		}
		switch cur := l.running[id]; {
		case !pp.received:
		case cur != nil && samePlan(cur, pp.plan):
			l.stats.Unchanged++
		default:
			l.stats.Applied++
			if pp.logic.Type == traci.LogicActuated {
				l.stats.Actuated++
			}
		}
		l.running[id] = pp.plan
		delete(l.lastPh, id)
	}
	return nil
}

// alignTolerance is the offset error left alone: an install restarts the first phase at the step it is seen,
// and greens are rounded to whole seconds, so a few seconds of error come and go; correcting each of them costs
// a stretched or cut green, and a few seconds matter little against travel times of 15 s and more.
const alignTolerance = 5 * time.Second

// alignment is how much to lengthen (positive) or shorten (negative) the first green of a plan installed at event
// time at so that its cycles start at the plan's offset from the cycle reference (the Unix epoch of event time,
// common to every intersection): the shorter way, unless shortening would cut the green below
// topology.SUMODefaultMinGreenS.
func alignment(p *greenwavev1.SignalPlan, first traci.Phase, minGreen time.Duration, at time.Time) time.Duration {
	cycle := time.Duration(math.Round(p.GetCycleS()*1000)) * time.Millisecond
	if cycle <= 0 {
		return 0
	}
	offset := time.Duration(math.Round(p.GetOffsetS()*1000)) * time.Millisecond
	// e in [-cycle/2, cycle/2): how far the cycle would start after its due time.
	e := (time.Duration(at.UnixMilli())*time.Millisecond - offset) % cycle
	if e < 0 {
		e += cycle
	}
	if e >= cycle/2 {
		e -= cycle
	}
	switch {
	case e.Abs() < alignTolerance:
		return 0
	case e < 0: // early: wait
		return -e
	case first.Duration-e >= minGreen: // late: catch up
		return -e
	default:
		return cycle - e
	}
}

// report prints the loop's counts.
func (l *loop) report(w io.Writer) {
	s := l.stats
	learned := "" // signal-control's count covers the whole stack run
	if s.Learning.Plays > 0 {
		learned = fmt.Sprintf(" (published, the learning period's %d plans included)", s.Learning.Plans)
	}
	fmt.Fprintf(w, "greenwave sumo: loop: %d windows, %d readings sent, %d accepted, rejected %v; %d plans received %v: %d applied (%d as actuated programs), %d unchanged, %d superseded, %d refused, %d expired, %d still queued at the end; %d traffic lights started on the learning period's plan, %d plans lapsed to the fallback, %d aligned to their offset, %d windows timed out; plans by reason %v%s\n",
		s.Windows, s.Readings, s.Accepted, s.Rejected, s.Plans, s.Received, s.Applied, s.Actuated, s.Unchanged, s.Superseded, s.Invalid,
		s.Expired, s.Pending, s.Inherited, s.Lapsed, s.Aligned, s.Timeouts, s.PlansByReason, learned)
}
