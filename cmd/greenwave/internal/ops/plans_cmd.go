package ops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

const plansDescription = `
Watches and fetches signal timing plans over signal-control's gRPC SignalControlService (--addr, default
signal-control's port in docker-compose.yml).`

// Plans runs `greenwave plans watch|get`.
func Plans(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return plansCmd(ctx, args, stdout, stderr, os.LookupEnv)
}

func plansCmd(ctx context.Context, args []string, stdout, stderr io.Writer, lookup lookupFunc) error {
	return dispatch(ctx, "plans", plansDescription, []subcommand{
		{name: "watch", summary: "print every plan as signal-control issues it", run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			return plansWatch(ctx, args, stdout, stderr, lookup)
		}},
		{name: "get", summary: "print an intersection's current plan", run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			return plansGet(ctx, args, stdout, stderr, lookup)
		}},
	}, args, stdout, stderr)
}

const watchDescription = `
Prints the current plan of every watched intersection (marked [initial]), then every new plan, one line each:

  plan I-100 @2026-11-26T07:35Z cycle 86s  NS 42s EW 26s  predictive: <reason_detail>

(the phases' green times; the reason is predictive, time_of_day, fixed_time or override). --json prints each
WatchPlansResponse as one line of protojson with proto field names: {"plan":{…},"initial":true,"coalesced":0}
("coalesced" counts older plans replaced by this one because the watcher fell behind). It runs until --max
plans have been printed or Ctrl-C; signal-control ending the stream is an error (exit status 1).`

func plansWatch(ctx context.Context, args []string, stdout, stderr io.Writer, lookup lookupFunc) error {
	fs := newFlagSet("plans watch", "[flags]", watchDescription, stderr)
	gf := addGRPCFlags(fs, "signal-control", defaultSignalControlAddr, lookup)
	var inters repeated
	fs.Var(&inters, "intersection", "only this intersection (repeatable; default every intersection)")
	maxPlans := fs.Int("max", 0, "stop after this many plans (0: until Ctrl-C)")
	asJSON := fs.Bool("json", false, "print protojson lines instead of text")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(fs, pos); err != nil {
		return err
	}
	if *maxPlans < 0 {
		return usagef("plans watch: --max must not be negative, got %d", *maxPlans)
	}
	conn, err := gf.dial(fs.Name())
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := greenwavev1.NewSignalControlServiceClient(conn).WatchPlans(ctx, &greenwavev1.WatchPlansRequest{IntersectionIds: inters})
	if err != nil {
		return rpcError("plans watch", "signal-control", gf.addr, err)
	}
	for n := 0; *maxPlans == 0 || n < *maxPlans; n++ {
		resp, err := st.Recv()
		switch {
		case ctx.Err() != nil:
			return nil // Ctrl-C
		case errors.Is(err, io.EOF):
			return errors.New("plans watch: signal-control ended the stream")
		case err != nil:
			return rpcError("plans watch", "signal-control", gf.addr, err)
		}
		if *asJSON {
			err = writeProtoLine(stdout, resp)
		} else {
			_, err = fmt.Fprintln(stdout, FormatPlanLine(resp.GetPlan(), resp.GetInitial()))
		}
		if err != nil {
			return fmt.Errorf("plans watch: write output: %w", err)
		}
	}
	return nil
}

// FormatPlanLine renders a plan on one line, as `greenwave dev` and `greenwave plans watch` print it:
//
//	plan I-100 @2026-11-26T07:35Z cycle 86s  NS 42s EW 26s  predictive: <reason_detail>
func FormatPlanLine(pl *greenwavev1.SignalPlan, initial bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "plan %s @%s cycle %.0fs ", pl.GetIntersectionId(), formatTime(pl.GetValidFrom().AsTime(), pl.GetValidFrom() != nil), pl.GetCycleS())
	for _, ph := range pl.GetPhases() {
		fmt.Fprintf(&b, " %s %.0fs", ph.GetPhaseId(), ph.GetGreenS())
	}
	fmt.Fprintf(&b, "  %s", ReasonName(pl.GetReason()))
	if pl.GetOversaturated() {
		b.WriteString(" (oversaturated)")
	}
	if d := pl.GetReasonDetail(); d != "" {
		fmt.Fprintf(&b, ": %s", d)
	}
	if initial {
		b.WriteString("  [initial]")
	}
	return b.String()
}

// ReasonName turns PLAN_REASON_FIXED_TIME into fixed_time.
func ReasonName(r greenwavev1.PlanReason) string {
	return strings.ToLower(strings.TrimPrefix(r.String(), "PLAN_REASON_"))
}

const getDescription = `
Prints INTERSECTION's current plan: validity window, cycle, offset, reason, each phase's green, yellow and
all-red with the approaches it serves, and the predictions it used. --json prints it as one line of protojson.
An intersection without a plan yet is an error (exit status 1).`

func plansGet(ctx context.Context, args []string, stdout, stderr io.Writer, lookup lookupFunc) error {
	fs := newFlagSet("plans get", "INTERSECTION [flags]", getDescription, stderr)
	gf := addGRPCFlags(fs, "signal-control", defaultSignalControlAddr, lookup)
	asJSON := fs.Bool("json", false, "print protojson instead of text")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(fs, pos, "INTERSECTION"); err != nil {
		return err
	}
	conn, err := gf.dial(fs.Name())
	if err != nil {
		return err
	}
	defer conn.Close()
	client := greenwavev1.NewSignalControlServiceClient(conn)
	resp, err := callWithTimeout(ctx, gf.timeout, func(ctx context.Context) (*greenwavev1.GetPlanResponse, error) {
		return client.GetPlan(ctx, &greenwavev1.GetPlanRequest{IntersectionId: pos[0]})
	})
	if err != nil {
		return rpcError("plans get "+pos[0], "signal-control", gf.addr, err)
	}
	if *asJSON {
		err = writeProtoLine(stdout, resp.GetPlan())
	} else {
		err = printPlan(stdout, resp.GetPlan())
	}
	if err != nil {
		return fmt.Errorf("plans get: write output: %w", err)
	}
	return nil
}

// printPlan renders one plan for a person.
func printPlan(w io.Writer, pl *greenwavev1.SignalPlan) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "plan\t%s\n", pl.GetPlanId())
	fmt.Fprintf(tw, "intersection\t%s  (topology %s)\n", pl.GetIntersectionId(), orDash(pl.GetTopologyRevision()))
	fmt.Fprintf(tw, "valid\t%s .. %s\n", formatTime(pl.GetValidFrom().AsTime(), pl.GetValidFrom() != nil), formatTime(pl.GetValidUntil().AsTime(), pl.GetValidUntil() != nil))
	fmt.Fprintf(tw, "cycle\t%.1fs  offset %.1fs  lost time %.1fs  Y %.3f  delay %.1fs/veh\n", pl.GetCycleS(), pl.GetOffsetS(), pl.GetLostTimeS(),
		pl.GetCriticalRatioSum(), pl.GetEstimatedDelayS())
	reason := ReasonName(pl.GetReason())
	if pl.GetReasonDetail() != "" {
		reason += ": " + pl.GetReasonDetail()
	}
	fmt.Fprintf(tw, "reason\t%s\n", reason)
	var flags []string
	if pl.GetOversaturated() {
		flags = append(flags, "oversaturated")
	}
	if pl.GetCycleRateLimited() {
		flags = append(flags, "cycle rate-limited")
	}
	if f := pl.GetSaturationFactor(); f != 0 && f != 1 {
		flags = append(flags, fmt.Sprintf("weather saturation factor %.2f", f))
	}
	if pl.GetOverrideId() != "" {
		flags = append(flags, "override "+pl.GetOverrideId())
	}
	if g := pl.GetGapOutS(); g > 0 {
		flags = append(flags, fmt.Sprintf("actuated within the bounds, gap-out %.1fs", g))
	}
	if len(flags) > 0 {
		fmt.Fprintf(tw, "notes\t%s\n", strings.Join(flags, ", "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nphases")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  PHASE\tGREEN\tACTUATED\tYELLOW\tALL-RED\tFLOW RATIO\tAPPROACHES")
	for _, ph := range pl.GetPhases() {
		bounds := "-" // a fixed green
		if ph.GetMaxGreenS() > 0 {
			bounds = fmt.Sprintf("%.1f-%.1fs", ph.GetMinGreenS(), ph.GetMaxGreenS())
		}
		fmt.Fprintf(tw, "  %s\t%.1fs\t%s\t%.1fs\t%.1fs\t%.3f\t%s\n", ph.GetPhaseId(), ph.GetGreenS(), bounds, ph.GetYellowS(), ph.GetAllRedS(), ph.GetFlowRatio(),
			strings.Join(ph.GetApproaches(), ","))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(pl.GetInputs()) == 0 {
		return nil
	}
	fmt.Fprintln(w, "\ninputs")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  APPROACH\tHORIZON\tFLOW VPH\tINTERVAL\tMODEL")
	for _, in := range pl.GetInputs() {
		fmt.Fprintf(tw, "  %s\t%ds\t%.0f\t%.0f..%.0f\t%s v%d\n", in.GetApproachId(), in.GetHorizonS(), in.GetFlowVph(), in.GetLower(), in.GetUpper(),
			in.GetModelId(), in.GetModelVersion())
	}
	return tw.Flush()
}
