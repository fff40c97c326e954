package main

import (
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/greenwave-city/greenwave/pkg/evaluate"
	"github.com/greenwave-city/greenwave/pkg/topology"
	"github.com/greenwave-city/greenwave/pkg/train"
)

// signalPlanHorizons returns the one horizon --signals needs trained when the horizons are auto: the auto
// horizon nearest the plan horizon, when every intersection's window gives the same; nil otherwise (train every
// auto horizon). The signal report reads only that horizon's forecasts, and each horizon's model learns on its
// own, so the report is the same bit for bit (evaluate's TestSignalsIgnoreOtherHorizons) — on the Boroondara
// file, auto horizons are 15 min, 30 min and 1 h, and training only the first saves two thirds of the RLS updates.
func signalPlanHorizons(topo topology.Topology, plan time.Duration) []time.Duration {
	var want time.Duration
	for _, in := range topo.Intersections {
		h, ok := evaluate.PlanHorizon(train.AutoHorizons(in.Window()), plan)
		if !ok || (want != 0 && h != want) {
			return nil
		}
		want = h
	}
	if want == 0 {
		return nil
	}
	return []time.Duration{want}
}

// evalDelayJSON is one side of the --signals comparison.
type evalDelayJSON struct {
	AvgDelayS jnum `json:"avg_delay_s"`
}

// evalSignalsJSON is the --json output of greenwave eval --signals.
type evalSignalsJSON struct {
	Intersections int           `json:"intersections"`
	FixedTime     evalDelayJSON `json:"fixed_time"`
	TimeOfDay     evalDelayJSON `json:"time_of_day"`
	Greenwave     evalDelayJSON `json:"greenwave"`
	Oracle        evalDelayJSON `json:"oracle"`
	Reduction     jnum          `json:"reduction"`
	Windows       int           `json:"windows"`
}

func signalsJSON(r *evaluate.SignalReport) evalSignalsJSON {
	return evalSignalsJSON{Intersections: r.Intersections, FixedTime: evalDelayJSON{AvgDelayS: jnum(r.FixedTimeDelayS)},
		TimeOfDay: evalDelayJSON{AvgDelayS: jnum(r.TimeOfDayDelayS)}, Greenwave: evalDelayJSON{AvgDelayS: jnum(r.GreenwaveDelayS)},
		Oracle: evalDelayJSON{AvgDelayS: jnum(r.OracleDelayS)}, Reduction: jnum(r.Reduction), Windows: r.Windows}
}

// writeSignalsText prints the --signals comparison as a table.
func writeSignalsText(w io.Writer, r *evaluate.SignalReport) error {
	fmt.Fprintf(w, "Webster delay per vehicle on the observed flows, %d intersections, %d scored windows\n", r.Intersections, r.Windows)
	fmt.Fprintf(w, "  fixed time (weekday peak-hour Webster plan, all day): %8.2f s\n", r.FixedTimeDelayS)
	fmt.Fprintf(w, "  time of day (Webster per hour of week, flows so far): %8.2f s\n", r.TimeOfDayDelayS)
	fmt.Fprintf(w, "  Greenwave (online forecasts, gate and fallbacks):     %8.2f s\n", r.GreenwaveDelayS)
	fmt.Fprintf(w, "  oracle (Webster on the flows that came):              %8.2f s\n", r.OracleDelayS)
	fmt.Fprintf(w, "  reduction vs fixed time:                              %8.1f %%\n", 100*r.Reduction)
	if gain := r.FixedTimeDelayS - r.OracleDelayS; gain > 0 {
		fmt.Fprintf(w, "  of the gain a perfect forecast gives over fixed time: retiming by the clock %.0f %%, Greenwave %.0f %%\n",
			100*(r.FixedTimeDelayS-r.TimeOfDayDelayS)/gain, 100*(r.FixedTimeDelayS-r.GreenwaveDelayS)/gain)
	}
	if r.MissingTimeOfDay > 0 {
		fmt.Fprintf(w, "  %d windows left out: their hour of week had no time-of-day plan yet\n", r.MissingTimeOfDay)
	}
	reasons := make([]string, 0, len(r.PlanReasons))
	for k := range r.PlanReasons {
		reasons = append(reasons, k)
	}
	sort.Strings(reasons)
	fmt.Fprintf(w, "Greenwave plans scored, by reason:")
	for _, k := range reasons {
		fmt.Fprintf(w, " %s %d", k, r.PlanReasons[k])
	}
	fmt.Fprintf(w, "\n\n%-10s %9s %10s %8s %10s %10s %11s %10s\n", "site", "peak hour", "fixed C s", "windows", "fixed s", "tod s", "greenwave s", "oracle s")
	for _, in := range r.PerIntersection {
		fmt.Fprintf(w, "%-10s %9d %10.0f %8d %10.2f %10.2f %11.2f %10.2f\n", in.ID, in.PeakHour, in.FixedCycleS, in.Windows, in.FixedDelayS, in.TimeOfDayS, in.GreenDelayS, in.OracleDelayS)
	}
	return nil
}
