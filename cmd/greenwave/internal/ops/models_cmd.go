package ops

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/greenwave-city/greenwave/pkg/train"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

const modelsDescription = `
Lists and shows the trainer's models over its gRPC ModelService (--addr, default the trainer's port in
docker-compose.yml). A model is one online regression per intersection, approach, horizon and target; its id is
"intersection/approach/horizon_s/target", e.g. I-100/N/900/flow.`

// Models runs `greenwave models list|show`.
func Models(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return modelsCmd(ctx, args, stdout, stderr, os.LookupEnv)
}

func modelsCmd(ctx context.Context, args []string, stdout, stderr io.Writer, lookup lookupFunc) error {
	return dispatch(ctx, "models", modelsDescription, []subcommand{
		{name: "list", summary: "list models with their version and test-then-train error", run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			return modelsList(ctx, args, stdout, stderr, lookup)
		}},
		{name: "show", summary: "show one model: candidates, coefficients, baselines, drift, coverage", run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			return modelsShow(ctx, args, stdout, stderr, lookup)
		}},
	}, args, stdout, stderr)
}

const listDescription = `
Lists models in model id order, one line each: version, promoted candidate, the promoted candidate's recent
test-then-train MAE and RMSE, the number of labels it was scored on, the empirical coverage of its prediction
intervals against their nominal confidence, whether drift is detected, and the last feature window applied.
The filters combine (AND); a repeated filter flag, or a comma-separated value, matches any of its values.
Without --all one page is printed and, when there are more, the next page's token goes to stderr.
--json prints each model as one line of protojson (proto field names; covariance omitted).

After the table, on stderr, "why models are missing or not predicting" lists what the trainer reports about the
intersections it trains: frames it dead-lettered, with the cause and the setting to fix (for example
TRAINER_HORIZONS that do not fit an intersection's window), and models still warming up (the predictor falls
back to persistence until a model has scored enough labels). With several trainer instances, the one answering
reports only the partitions it owns.`

func modelsList(ctx context.Context, args []string, stdout, stderr io.Writer, lookup lookupFunc) error {
	fs := newFlagSet("models list", "[flags]", listDescription, stderr)
	gf := addGRPCFlags(fs, "trainer", defaultTrainerAddr, lookup)
	var inters, approaches repeated
	var horizons horizonsFlag
	var target targetFlag
	fs.Var(&inters, "intersection", "only this intersection (repeatable)")
	fs.Var(&approaches, "approach", "only this approach id (repeatable)")
	fs.Var(&horizons, "horizon", "only this forecast horizon, e.g. 15m (repeatable)")
	fs.Var(&target, "target", "only this target: flow, occupancy or speed")
	pageSize := fs.Int("page-size", 100, "models per request, 1..1000")
	pageToken := fs.String("page-token", "", "start at this page (the token a previous list printed)")
	all := fs.Bool("all", false, "follow the pages to the end")
	asJSON := fs.Bool("json", false, "print protojson lines instead of a table")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(fs, pos); err != nil {
		return err
	}
	if *pageSize < 1 || *pageSize > 1000 {
		return usagef("models list: --page-size must be in 1..1000, got %d", *pageSize)
	}
	conn, err := gf.dial(fs.Name())
	if err != nil {
		return err
	}
	defer conn.Close()
	client := greenwavev1.NewModelServiceClient(conn)
	req := &greenwavev1.ListModelsRequest{
		Filter:   &greenwavev1.ModelFilter{IntersectionIds: inters, ApproachIds: approaches, HorizonsS: horizons, Target: greenwavev1.Target(target)},
		PageSize: int32(*pageSize), PageToken: *pageToken,
	}
	out := newModelPrinter(stdout, *asJSON)
	var training []*greenwavev1.IntersectionTrainingStatus
	var warming []string
	for {
		resp, err := callWithTimeout(ctx, gf.timeout, func(ctx context.Context) (*greenwavev1.ListModelsResponse, error) {
			return client.ListModels(ctx, req)
		})
		if err != nil {
			return rpcError("models list", "trainer", gf.addr, err)
		}
		for _, m := range resp.GetModels() {
			out.add(m)
			if w := warmingUp(m); w != "" {
				warming = append(warming, w)
			}
		}
		training = append(training, resp.GetTraining()...)
		next := resp.GetNextPageToken()
		if next == "" {
			break
		}
		if !*all {
			if err := out.flush(); err != nil {
				return err
			}
			fmt.Fprintf(stderr, "greenwave: models list: more models: run again with --page-token %s, or use --all\n", next)
			return nil
		}
		req.PageToken = next
	}
	if out.count() == 0 && !*asJSON {
		fmt.Fprintln(stderr, "greenwave: models list: no models match (the trainer publishes a model after its first feature window)")
	}
	if err := out.flush(); err != nil {
		return err
	}
	if *asJSON {
		return nil
	}
	// Notes go to stderr, like the paging hint: stdout stays the table, one model per line, for scripts.
	return writeWhyMissing(stderr, training, warming)
}

// warmingUp says why a listed model does not predict yet: its promoted candidate has fewer updates (labels)
// than the predictor needs for a noise estimate (the number of regression inputs plus two). "" when it predicts.
func warmingUp(m *greenwavev1.ModelSnapshot) string {
	need := uint64(len(m.GetFeatureNames()) + 2)
	got := promotedCandidate(m).GetState().GetUpdates()
	if got >= need {
		return ""
	}
	return fmt.Sprintf("%s: warming up: %d of %d labels before it predicts (a label comes one horizon after its window); predictions fall back to persistence until then",
		m.GetModelId(), got, need)
}

// writeWhyMissing prints the trainer's rejections and the models warming up, if any.
func writeWhyMissing(w io.Writer, training []*greenwavev1.IntersectionTrainingStatus, warming []string) error {
	var lines []string
	for _, st := range training {
		if st.GetRejected() == 0 {
			continue
		}
		what := "some frames rejected"
		if st.GetVectorsApplied() == 0 {
			what = "no model: every frame rejected"
		}
		lines = append(lines, fmt.Sprintf("%s: %s (%d, last %s, cause %s): %s", st.GetIntersectionId(), what, st.GetRejected(),
			formatTime(st.GetLastRejectedWindow().AsTime(), st.GetLastRejectedWindow() != nil), st.GetLastRejectionCause(), st.GetLastRejection()))
	}
	const maxWarming = 20
	for i, l := range warming {
		if i == maxWarming {
			lines = append(lines, fmt.Sprintf("… and %d more models warming up", len(warming)-maxWarming))
			break
		}
		lines = append(lines, l)
	}
	if len(lines) == 0 {
		return nil
	}
	if _, err := fmt.Fprintln(w, "\nwhy models are missing or not predicting:"); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	for _, l := range lines {
		if _, err := fmt.Fprintf(w, "  %s\n", l); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
	}
	return nil
}

// callWithTimeout runs one unary call under --timeout.
func callWithTimeout[T any](ctx context.Context, timeout time.Duration, call func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return call(ctx)
}

// modelPrinter prints models as a table (aligned once all rows are in) or as protojson lines (at once).
type modelPrinter struct {
	w    io.Writer
	json bool
	tw   *tabwriter.Writer
	n    int
	err  error
}

func newModelPrinter(w io.Writer, asJSON bool) *modelPrinter {
	p := &modelPrinter{w: w, json: asJSON}
	if !asJSON {
		p.tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(p.tw, "MODEL\tVERSION\tPROMOTED\tMAE\tRMSE\tSCORED\tCOVERAGE\tDRIFT\tLAST WINDOW")
	}
	return p
}

func (p *modelPrinter) add(m *greenwavev1.ModelSnapshot) {
	p.n++
	if p.err != nil {
		return
	}
	if p.json {
		p.err = writeProtoLine(p.w, m)
		return
	}
	ev := promotedCandidate(m).GetEvaluation()
	fmt.Fprintf(p.tw, "%s\t%d\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", m.GetModelId(), m.GetVersion(), orDash(m.GetPromoted()),
		num(ev.GetRecent().GetMae()), num(ev.GetRecent().GetRmse()), ev.GetCumulative().GetN(),
		coverage(m.GetIntervalCoverage()), drift(m.GetDrift()), formatTime(m.GetLastAppliedWindow().AsTime(), m.GetLastAppliedWindow() != nil))
}

func (p *modelPrinter) count() int { return p.n }

func (p *modelPrinter) flush() error {
	if p.err == nil && p.tw != nil {
		p.err = p.tw.Flush()
	}
	if p.err != nil {
		return fmt.Errorf("write output: %w", p.err)
	}
	return nil
}

// writeProtoLine writes m as one line of protojson with proto field names.
func writeProtoLine(w io.Writer, m proto.Message) error {
	b, err := payloadJSON.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode %T as JSON: %w", m, err)
	}
	// protojson varies its whitespace on purpose; a compact line is stable and greppable.
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return fmt.Errorf("compact %T JSON: %w", m, err)
	}
	buf.WriteByte('\n')
	_, err = w.Write(buf.Bytes())
	return err
}

func promotedCandidate(m *greenwavev1.ModelSnapshot) *greenwavev1.Candidate {
	for _, c := range m.GetCandidates() {
		if c.GetName() == m.GetPromoted() {
			return c
		}
	}
	return nil
}

// num prints a metric with four significant digits; NaN and ±Inf (an undefined R², MAPE over zeros) as "-".
func num(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	return fmt.Sprintf("%.4g", v)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// coverage prints "88% of 90%": the share of labels inside the prediction interval against its confidence.
func coverage(c *greenwavev1.IntervalCoverage) string {
	if c.GetN() == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f%% of %.0f%%", 100*float64(c.GetHits())/float64(c.GetN()), 100*c.GetConfidence())
}

func drift(d *greenwavev1.DriftState) string {
	switch {
	case d.GetDrifting():
		return fmt.Sprintf("DRIFTING (%d)", d.GetDetections())
	case d.GetDetections() > 0:
		return fmt.Sprintf("no (%d before)", d.GetDetections())
	}
	return "no"
}

// formatTime prints an event time in UTC to the minute ("2026-11-26T07:35Z"), or "-" when unset.
func formatTime(t time.Time, set bool) string {
	if !set {
		return "-"
	}
	return t.UTC().Format("2006-01-02T15:04Z")
}

const showDescription = `
Shows one model: identity, version and last window; the promoted candidate's coefficients by feature; every
candidate's and baseline's test-then-train errors (recent window and cumulative); drift and interval coverage.
--covariance also fetches and prints the promoted candidate's covariance matrix P (it can be large) and the
pending inputs awaiting their labels. --json prints the model as one line of protojson instead.`

func modelsShow(ctx context.Context, args []string, stdout, stderr io.Writer, lookup lookupFunc) error {
	fs := newFlagSet("models show", "MODEL_ID [flags]", showDescription, stderr)
	gf := addGRPCFlags(fs, "trainer", defaultTrainerAddr, lookup)
	withP := fs.Bool("covariance", false, "include the covariance matrix P and the pending inputs")
	asJSON := fs.Bool("json", false, "print protojson instead of text")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(fs, pos, "MODEL_ID"); err != nil {
		return err
	}
	if strings.Count(pos[0], "/") != 3 {
		return usagef("models show: MODEL_ID %q is not intersection/approach/horizon_s/target (see greenwave models list)", pos[0])
	}
	conn, err := gf.dial(fs.Name())
	if err != nil {
		return err
	}
	defer conn.Close()
	client := greenwavev1.NewModelServiceClient(conn)
	resp, err := callWithTimeout(ctx, gf.timeout, func(ctx context.Context) (*greenwavev1.GetModelResponse, error) {
		return client.GetModel(ctx, &greenwavev1.GetModelRequest{ModelId: pos[0], IncludeCovariance: *withP})
	})
	if err != nil {
		return rpcError("models show "+pos[0], "trainer", gf.addr, err)
	}
	if *asJSON {
		err = writeProtoLine(stdout, resp.GetModel())
	} else {
		err = printModel(stdout, resp.GetModel(), *withP)
	}
	if err != nil {
		return fmt.Errorf("models show: write output: %w", err)
	}
	return nil
}

// printModel renders one model for a person.
func printModel(w io.Writer, m *greenwavev1.ModelSnapshot, withP bool) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "model\t%s\n", m.GetModelId())
	fmt.Fprintf(tw, "intersection\t%s  approach %s  horizon %s  target %s\n", m.GetIntersectionId(), m.GetApproachId(),
		time.Duration(m.GetHorizonS())*time.Second, strings.ToLower(strings.TrimPrefix(m.GetTarget().String(), "TARGET_")))
	fmt.Fprintf(tw, "version\t%d  last window %s  updated %s\n", m.GetVersion(),
		formatTime(m.GetLastAppliedWindow().AsTime(), m.GetLastAppliedWindow() != nil), formatTime(m.GetUpdatedAt().AsTime(), m.GetUpdatedAt() != nil))
	fmt.Fprintf(tw, "promoted\t%s  (%d promotions)\n", orDash(m.GetPromoted()), m.GetPromotions())
	fmt.Fprintf(tw, "drift\t%s  (Page-Hinkley n=%d)\n", drift(m.GetDrift()), m.GetDrift().GetN())
	fmt.Fprintf(tw, "coverage\t%s  (%d labels scored)\n", coverage(m.GetIntervalCoverage()), m.GetIntervalCoverage().GetN())
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintf(w, "\ncoefficients of %s (feature set v%d)\n", orDash(m.GetPromoted()), m.GetFeatureSetVersion())
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	st := promotedCandidate(m).GetState()
	for i, c := range st.GetCoefficients() {
		fmt.Fprintf(tw, "  %s\t%10s\n", coefficientName(m, i), num(c))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w, "\nerrors (test-then-train)")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAME\tUPDATES\tRECENT MAE\tRMSE\tMAPE\tR2\tCUMULATIVE MAE\tRMSE\tN")
	row := func(name string, updates string, ev *greenwavev1.Evaluation) {
		r, c := ev.GetRecent(), ev.GetCumulative()
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", name, updates, num(r.GetMae()), num(r.GetRmse()), num(r.GetMape()), num(r.GetR2()),
			num(c.GetMae()), num(c.GetRmse()), c.GetN())
	}
	for _, c := range m.GetCandidates() {
		name := "candidate " + c.GetName()
		if c.GetName() == m.GetPromoted() {
			name += " *"
		}
		row(name, fmt.Sprint(c.GetState().GetUpdates()), c.GetEvaluation())
	}
	for _, name := range slices.Sorted(maps.Keys(m.GetBaselines())) {
		row("baseline "+name, "-", m.GetBaselines()[name])
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	if withP {
		n := len(st.GetCoefficients())
		p := train.Covariance(wire.RLSState(st)) // full, or the upper triangle schema 2 snapshots carry
		fmt.Fprintf(w, "\ncovariance P of %s (%dx%d, rows and columns in coefficient order)\n", orDash(m.GetPromoted()), n, n)
		if n == 0 || len(p) != n*n {
			fmt.Fprintf(w, "  (not available: %d values for %d coefficients)\n", len(p), n)
		} else {
			tw = tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.AlignRight)
			for i := range n {
				fmt.Fprintf(tw, "%s\t", coefficientName(m, i))
				for j := range n {
					fmt.Fprintf(tw, " %.4g\t", p[i*n+j])
				}
				fmt.Fprintln(tw)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
		fmt.Fprintf(w, "\npending inputs awaiting their labels: %d\n", len(m.GetPending()))
	}
	return nil
}

// coefficientName names coefficient i: the intercept, then the features in order.
func coefficientName(m *greenwavev1.ModelSnapshot, i int) string {
	switch {
	case i == 0:
		return "intercept"
	case i-1 < len(m.GetFeatureNames()):
		return m.GetFeatureNames()[i-1]
	}
	return fmt.Sprintf("coefficient %d", i)
}

// targetFlag parses --target.
type targetFlag greenwavev1.Target

func (t *targetFlag) String() string {
	if *t == 0 {
		return ""
	}
	return strings.ToLower(strings.TrimPrefix(greenwavev1.Target(*t).String(), "TARGET_"))
}

func (t *targetFlag) Set(v string) error {
	x, ok := greenwavev1.Target_value["TARGET_"+strings.ToUpper(v)]
	if !ok || x == 0 {
		return errors.New("want flow, occupancy or speed")
	}
	*t = targetFlag(x)
	return nil
}

// horizonsFlag parses repeated --horizon durations into whole seconds.
type horizonsFlag []uint32

func (h *horizonsFlag) String() string {
	parts := make([]string, len(*h))
	for i, s := range *h {
		parts[i] = (time.Duration(s) * time.Second).String()
	}
	return strings.Join(parts, ",")
}

func (h *horizonsFlag) Set(v string) error {
	for s := range strings.SplitSeq(v, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("%q is not a duration such as 15m", s)
		}
		if d <= 0 || d%time.Second != 0 || d > math.MaxUint32*time.Second {
			return fmt.Errorf("%q must be a positive whole number of seconds", s)
		}
		*h = append(*h, uint32(d/time.Second))
	}
	return nil
}

var _ flag.Value = (*horizonsFlag)(nil)
