package sumo

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/stack"
	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/traci"
	"github.com/greenwave-city/greenwave/pkg/topology"
)

// The controllers of `greenwave sumo --controller`.
const (
	Static     = "static"
	Actuated   = "actuated"
	DelayBased = "delay_based"
	Greenwave  = "greenwave"
	// GreenwaveFixed is Greenwave's plans run at fixed time (green_s, with offsets), without their actuation
	// bounds: the variant that shows what local actuation adds.
	GreenwaveFixed = "greenwave_fixed"
)

// Controllers lists the controllers in the order the help text gives them.
var Controllers = []string{Static, Actuated, DelayBased, Greenwave, GreenwaveFixed}

// Options are the flags of `greenwave sumo`.
type Options struct {
	// Scenario is a scenario name (deploy/sumo/NAME in the repository) or a directory.
	Scenario string
	// Controller is one of Controllers.
	Controller string
	// JSON prints the result as one JSON line.
	JSON bool
	// End stops the run at this simulated time (0: when every vehicle has arrived).
	End time.Duration
	// Seed is SUMO's random seed; negative keeps the scenario's.
	Seed int
	// MaxGap, when positive, is the gap-out (SUMO's max-gap) of the actuated controller instead of SUMO's default
	// (3 s): to compare Greenwave's gap-out with SUMO's actuated controller at the same gap.
	MaxGap time.Duration
	// Learn is the learning period of greenwave in the loop: simulated time the scenario is played on the stack,
	// stamped before the scored run, so that its models can forecast from the scored run's start (see learn).
	Learn time.Duration
	// Binary is the sumo program ("sumo" when empty; "sumo-gui" to watch).
	Binary string
	// PlanTimeout bounds the wait for a window's plans (greenwave only).
	PlanTimeout time.Duration
	// LogFile receives the services' logs (greenwave only).
	LogFile string
	// Record, when not empty, is a directory the run's detector readings, topology and detector links are
	// written to (record.go), for any controller.
	Record string
	// Stats, when not nil, receives the run's counts (for tests).
	Stats *Stats
}

// Stats counts what a run did beyond its Result.
type Stats struct {
	// Arrived is the vehicles SUMO reported arrived, step by step (TraCI), which the trip-info file's Completed
	// must equal.
	Arrived int
	// Loop is greenwave's closed loop (zero for SUMO's controllers).
	Loop LoopStats
}

// Run runs the scenario under the chosen controller to its end and prints the result on stdout; progress goes
// to stderr. A cancelled ctx (Ctrl-C) stops SUMO and the stack and returns ctx's error.
func Run(ctx context.Context, o Options, stdout, stderr io.Writer) error {
	root, _ := stack.FindRepoRoot(".") // only names need it; Resolve says so
	sc, err := Resolve(o.Scenario, root)
	if err != nil {
		return fmt.Errorf("sumo: %w", err)
	}
	tmp, err := os.MkdirTemp("", "greenwave-sumo-")
	if err != nil {
		return fmt.Errorf("sumo: %w", err)
	}
	defer os.RemoveAll(tmp)
	progress := func(format string, args ...any) { fmt.Fprintf(stderr, "greenwave sumo: "+format+"\n", args...) }

	r := &runner{o: o, sc: sc, tmp: tmp, progress: progress, res: Result{Scenario: sc.Name, Controller: o.Controller},
		tripinfo: filepath.Join(tmp, "tripinfo.xml"), stderr: stderr}
	if inLoop(o.Controller) || o.Record != "" {
		if err := r.prepareSensors(); err != nil {
			return fmt.Errorf("sumo: %w", err)
		}
	}
	if inLoop(o.Controller) {
		if err := r.prepareLoop(); err != nil {
			r.closeRecording()
			return fmt.Errorf("sumo: %w", err)
		}
	}
	stopStack := func() {}
	if r.loop != nil {
		stop, err := r.loop.start(ctx, progress)
		if err != nil {
			r.closeRecording()
			return fmt.Errorf("sumo: %w", err)
		}
		stopStack = sync.OnceFunc(stop)
		defer stopStack()
		if err := r.learn(ctx); err != nil {
			r.closeRecording()
			return err
		}
	}
	if err := r.start(ctx); err != nil {
		r.closeRecording()
		return fmt.Errorf("sumo: %w", err)
	}
	runErr := r.run(ctx)
	stopStack()
	if r.loop != nil {
		r.loop.endPlay()
	}
	if err := r.closeRecording(); err != nil && runErr == nil {
		runErr = fmt.Errorf("sumo: %w", err)
	}
	if runErr != nil && ctx.Err() != nil {
		runErr = fmt.Errorf("sumo: interrupted, no result: %w", ctx.Err())
	}
	if err := r.client.Close(); err != nil && runErr == nil {
		runErr = fmt.Errorf("sumo: close: %w", err)
	}
	if runErr != nil {
		return runErr
	}
	if err := tripinfoScore(r.tripinfo, &r.res); err != nil {
		return fmt.Errorf("sumo: %w", err)
	}
	if r.loop != nil {
		r.loop.report(stderr)
		r.stats.Loop = r.loop.stats
	}
	if o.Stats != nil {
		*o.Stats = r.stats
	}
	return printResult(stdout, r.res, o.JSON)
}

// runner is one run: the scenario, SUMO and, for greenwave, the loop.
type runner struct {
	o        Options
	sc       Scenario
	tmp      string
	progress func(string, ...any)
	client   *traci.Client
	res      Result
	stats    Stats
	loop     *loop         // nil unless greenwave
	sensors  *sensors      // nil unless greenwave or --record
	stderr   io.Writer     // progress, and the progress bar on a terminal
	tripinfo string        // SUMO's trip-info file
	elapsed  time.Duration // simulated time when run returned
}

// start runs sumo on the scenario, writing trip info with emissions to the temporary directory.
func (r *runner) start(ctx context.Context) error {
	var args []string
	cfg := r.sc.Config
	if cfg == "" {
		args = append(args, "--net-file", r.sc.Net, "--route-files", r.sc.Routes)
	}
	args = append(args, "--no-step-log", "--no-warnings", "--duration-log.disable",
		"--tripinfo-output", r.tripinfo, "--device.emissions.probability", "1")
	if os.Getenv("SUMO_HOME") == "" {
		// Without SUMO_HOME sumo fetches the XML schemas from the web and, offline, refuses the files.
		args = append(args, "--xml-validation", "never")
	}
	if r.o.Seed >= 0 {
		args = append(args, "--seed", strconv.Itoa(r.o.Seed))
	}
	if r.sensors != nil {
		args = append(args, "--additional-files", r.sensors.additional)
	}
	c, err := traci.Start(ctx, traci.Options{Binary: r.o.Binary, ConfigFile: cfg, Args: args})
	if err != nil {
		return err
	}
	r.client = c
	return nil
}

// run sets the controller up and steps SUMO to the end.
func (r *runner) run(ctx context.Context) error {
	tls, err := r.client.TrafficLightIDs(ctx)
	if err != nil {
		return fmt.Errorf("sumo: %w", err)
	}
	programs := map[string]traci.Logic{}
	if r.loop != nil {
		r.loop.attach(r.client, programs)
	}
	for _, tl := range tls {
		base, err := runningLogic(ctx, r.client, tl)
		if err != nil {
			return fmt.Errorf("sumo: %w", err)
		}
		programs[tl] = base
		if r.loop != nil {
			if err := r.loop.installLocal(ctx, r.client, tl, base); err != nil {
				return fmt.Errorf("sumo: %w", err)
			}
			continue
		}
		if err := r.client.SetTrafficLightLogic(ctx, tl, controllerLogic(base, r.o.Controller, r.o.MaxGap)); err != nil {
			return fmt.Errorf("sumo: %w", err)
		}
	}
	stepLen, err := r.client.StepLength(ctx)
	if err != nil {
		return fmt.Errorf("sumo: %w", err)
	}
	now, err := r.client.Time(ctx)
	if err != nil {
		return fmt.Errorf("sumo: %w", err)
	}
	nextReport := now + 10*time.Minute
	bar := newProgressBar(r.stderr, "greenwave sumo: "+r.sc.Name+" "+r.o.Controller, r.o.JSON, routeVehicles(r.sc.Routes), r.o.End)
	defer bar.done()
	nextDraw := now
	defer func() { r.elapsed = now }()
	for {
		if ctx.Err() != nil {
			return fmt.Errorf("sumo: %w", ctx.Err())
		}
		if r.o.End > 0 && now >= r.o.End {
			break
		}
		left, err := r.client.MinExpectedNumber(ctx)
		if err != nil {
			return fmt.Errorf("sumo: %w", err)
		}
		// The loop ends a run on a window boundary, so that a learning play's last window reaches the stack and
		// the next play starts the next window.
		if left == 0 && (r.loop == nil || now%r.loop.window == 0) {
			break
		}
		now += stepLen
		if err := r.client.Step(ctx, now); err != nil {
			return fmt.Errorf("sumo: step to %v: %w", now, err)
		}
		departed, err := r.client.DepartedNumber(ctx)
		if err != nil {
			return fmt.Errorf("sumo: %w", err)
		}
		r.res.Inserted += departed
		arrived, err := r.client.ArrivedNumber(ctx)
		if err != nil {
			return fmt.Errorf("sumo: %w", err)
		}
		r.stats.Arrived += arrived
		if r.loop != nil {
			if err := r.loop.step(ctx, now); err != nil {
				return fmt.Errorf("sumo: %w", err)
			}
		} else if r.sensors != nil {
			if err := r.sensors.record(ctx, r.client, now); err != nil {
				return fmt.Errorf("sumo: %w", err)
			}
		}
		if now >= nextDraw {
			bar.draw(now, r.stats.Arrived, left)
			nextDraw += time.Minute
		}
		if now >= nextReport {
			bar.done()
			r.progress("%s: %d vehicles inserted, %d still expected", fmtSim(now), r.res.Inserted, left)
			nextReport += 10 * time.Minute
		}
	}
	return nil
}

func fmtSim(d time.Duration) string {
	s := int(d.Seconds())
	return fmt.Sprintf("%02d:%02d:%02d", s/3600, s/60%60, s%60)
}

// runningLogic returns the program the traffic light runs.
func runningLogic(ctx context.Context, c *traci.Client, tl string) (traci.Logic, error) {
	id, err := c.TrafficLightProgram(ctx, tl)
	if err != nil {
		return traci.Logic{}, err
	}
	logics, err := c.TrafficLightLogics(ctx, tl)
	if err != nil {
		return traci.Logic{}, err
	}
	for _, l := range logics {
		if l.ProgramID == id {
			return l, nil
		}
	}
	return traci.Logic{}, fmt.Errorf("traffic light %s: running program %q not among its %d programs", tl, id, len(logics))
}

// inLoop reports whether the controller runs Greenwave in the loop.
func inLoop(controller string) bool { return controller == Greenwave || controller == GreenwaveFixed }

// isGreen reports whether a phase state gives some stream green and none yellow, the rule topology.ImportSUMO
// uses to find the phases Greenwave times.
func isGreen(state string) bool {
	return strings.ContainsAny(state, "Gg") && !strings.ContainsAny(state, "yYu")
}

// controllerLogic is base turned into the controller's program, with the same phases: static keeps the
// durations fixed; actuated and delay_based let every green phase run between its minimum and maximum (the
// program's own bounds, else topology.SUMODefaultMinGreenS and the larger of topology.SUMODefaultMaxGreenS and
// its duration, as the topology import takes them) and keep yellow and all-red fixed; maxGap, when positive, is
// the actuated controller's gap-out. SUMO creates the
// detectors an actuated program needs itself.
func controllerLogic(base traci.Logic, controller string, maxGap time.Duration) traci.Logic {
	l := base
	l.ProgramID = "greenwave-" + controller
	l.CurrentPhase = 0
	l.Params = map[string]string{}
	l.Type = traci.LogicStatic
	switch controller {
	case Actuated:
		l.Type = traci.LogicActuated
		if maxGap > 0 {
			l.Params["max-gap"] = strconv.FormatFloat(maxGap.Seconds(), 'f', 2, 64)
		}
	case DelayBased:
		l.Type = traci.LogicDelayBased
	}
	l.Phases = make([]traci.Phase, len(base.Phases))
	for i, p := range base.Phases {
		p.Next = nil
		p.MinDur, p.MaxDur = p.Duration, p.Duration
		if l.Type != traci.LogicStatic && isGreen(p.State) {
			own := base.Phases[i]
			if base.Type == traci.LogicStatic || own.MinDur <= 0 || own.MinDur >= own.MaxDur {
				// a static program's bounds are its duration: take the topology import's
				own.MinDur = min(time.Duration(topology.SUMODefaultMinGreenS)*time.Second, p.Duration)
				own.MaxDur = max(time.Duration(topology.SUMODefaultMaxGreenS)*time.Second, p.Duration)
			}
			p.MinDur, p.MaxDur = own.MinDur, own.MaxDur
		}
		l.Phases[i] = p
	}
	return l
}
