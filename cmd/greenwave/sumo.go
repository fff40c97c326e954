package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/cli"
	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/sumo"
)

const sumoSynopsis = "--scenario NAME|DIR --controller static|actuated|delay_based|greenwave|greenwave_fixed [flags]"

const sumoDescription = `
Runs a SUMO scenario under TraCI with one controller for every traffic light and prints SUMO's trip statistics,
means per completed vehicle (docs/sumo.md). NAME is a scenario of deploy/sumo in this checkout (grid3x3,
grid3x3-peak, arterial); DIR any directory holding one .net.xml and one .rou.xml (and optionally a .sumocfg).

Controllers: static runs SUMO's own fixed programs; actuated and delay_based run SUMO's actuated and delay-based
controllers on the same phases (greens between 5 s and max(60 s, the program's green)); greenwave runs the whole
stack on the embedded broker as greenwave dev does, with the topology derived from the network, and plays the
field: each window (120 s) it sends the readings of an induction loop on every approach lane to the collector,
waits (at most --plan-timeout) for the plans of the window these readings closed, and applies each valid plan
at its traffic light's next cycle boundary as a SUMO actuated program within the plan's actuation bounds (min and
max green, gap-out); greenwave_fixed runs the same plans at fixed time (their greens and offsets). Before the
scored run, greenwave plays the scenario on the stack for --learn of simulated time (other seeds, stamped just
before the run), as a deployment has history before the day it is judged on, so that the models forecast from
the first window; the learning plays are not scored.

--record DIR (any controller) puts the same induction loops on every approach lane and writes
DIR/readings.csv (each window's readings, the canonical readings CSV of greenwave replay and eval),
DIR/topology.yaml (the derived topology) and DIR/edges.csv (from,to,weight,travel_time_s: the links between
detectors), so a run can be evaluated offline: greenwave eval --topology DIR/topology.yaml DIR/readings.csv.

The run ends when every vehicle has arrived, or at --end. The last line of stdout is the result; with --json:
  {"scenario":…,"controller":…,"time_loss_s":…,"waiting_time_s":…,"duration_s":…,"stops":…,"fuel_ml":…,
   "co2_g":…,"completed":N,"inserted":N}
Ctrl-C stops SUMO and the stack. Exit status: 0 on success, 1 on failure, 2 for a usage error.`

// runSumo is `greenwave sumo`: its flags, run by internal/sumo.
func runSumo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o := sumo.Options{}
	fs := cli.NewFlagSet("sumo", sumoSynopsis, sumoDescription, stderr)
	fs.StringVar(&o.Scenario, "scenario", "", "scenario name (deploy/sumo/NAME) or directory")
	fs.StringVar(&o.Controller, "controller", "", "static, actuated, delay_based, greenwave or greenwave_fixed")
	fs.BoolVar(&o.JSON, "json", false, "print the result as one JSON line")
	fs.DurationVar(&o.End, "end", 0, "stop at this simulated time (0: when every vehicle has arrived)")
	fs.IntVar(&o.Seed, "seed", -1, "SUMO's random seed (negative: the scenario's)")
	fs.DurationVar(&o.MaxGap, "max-gap", 0, "actuated: gap-out instead of SUMO's default 3s (e.g. 2s, Greenwave's at 1800 veh/h)")
	gui := fs.Bool("gui", false, "run sumo-gui to watch")
	fs.DurationVar(&o.Learn, "learn", sumo.DefaultLearn, "greenwave: simulated time the scenario is played on the stack before the scored run, so its models can forecast (0: none)")
	fs.DurationVar(&o.PlanTimeout, "plan-timeout", sumo.DefaultPlanTimeout, "greenwave: longest wait (wall clock) for a window's ack and plans")
	fs.StringVar(&o.Record, "record", "", "also write the detectors' readings, topology and detector links to `DIR`")
	fs.StringVar(&o.LogFile, "log-file", filepath.Join(os.TempDir(), "greenwave-sumo.log"), "greenwave: file the service logs are written to")
	if err := cli.ParseFlags(fs, args); err != nil {
		return err
	}
	if o.Scenario == "" {
		return usagef("sumo: --scenario is required")
	}
	if !slices.Contains(sumo.Controllers, o.Controller) {
		return usagef("sumo: --controller %q: want %s", o.Controller, strings.Join(sumo.Controllers, ", "))
	}
	if o.End < 0 || o.PlanTimeout <= 0 || o.End%time.Second != 0 || o.MaxGap < 0 || o.Learn < 0 {
		return usagef("sumo: --end must be whole non-negative seconds, --plan-timeout positive, --max-gap and --learn not negative")
	}
	if *gui {
		o.Binary = "sumo-gui"
	}
	return sumo.Run(ctx, o, stdout, stderr)
}
