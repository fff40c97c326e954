package main

import (
	"fmt"
	"io"
	"sort"

	"github.com/greenwave-city/greenwave/pkg/evaluate"
)

// evalDelayJSON is one side of the --signals comparison.
type evalDelayJSON struct {
	AvgDelayS jnum `json:"avg_delay_s"`
}

// evalSignalsJSON is the --json output of greenwave eval --signals.
type evalSignalsJSON struct {
	Intersections int           `json:"intersections"`
	FixedTime     evalDelayJSON `json:"fixed_time"`
	Greenwave     evalDelayJSON `json:"greenwave"`
	Reduction     jnum          `json:"reduction"`
}

func signalsJSON(r *evaluate.SignalReport) evalSignalsJSON {
	return evalSignalsJSON{Intersections: r.Intersections, FixedTime: evalDelayJSON{AvgDelayS: jnum(r.FixedTimeDelayS)},
		Greenwave: evalDelayJSON{AvgDelayS: jnum(r.GreenwaveDelayS)}, Reduction: jnum(r.Reduction)}
}

// writeSignalsText prints the --signals comparison as a table.
func writeSignalsText(w io.Writer, r *evaluate.SignalReport) error {
	fmt.Fprintf(w, "Webster delay per vehicle on the observed flows, %d intersections, %d scored windows\n", r.Intersections, r.Windows)
	fmt.Fprintf(w, "  fixed time (weekday peak-hour Webster plan, all day): %8.2f s\n", r.FixedTimeDelayS)
	fmt.Fprintf(w, "  Greenwave (online forecasts, gate and fallbacks):     %8.2f s\n", r.GreenwaveDelayS)
	fmt.Fprintf(w, "  reduction:                                             %8.1f %%\n", 100*r.Reduction)
	reasons := make([]string, 0, len(r.PlanReasons))
	for k := range r.PlanReasons {
		reasons = append(reasons, k)
	}
	sort.Strings(reasons)
	fmt.Fprintf(w, "Greenwave plans scored, by reason:")
	for _, k := range reasons {
		fmt.Fprintf(w, " %s %d", k, r.PlanReasons[k])
	}
	fmt.Fprintf(w, "\n\n%-10s %9s %10s %8s %10s %10s\n", "site", "peak hour", "fixed C s", "windows", "fixed s", "greenwave s")
	for _, in := range r.PerIntersection {
		fmt.Fprintf(w, "%-10s %9d %10.0f %8d %10.2f %10.2f\n", in.ID, in.PeakHour, in.FixedCycleS, in.Windows, in.FixedDelayS, in.GreenDelayS)
	}
	return nil
}
