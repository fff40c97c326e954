package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/cli"
	"github.com/greenwave-city/greenwave/pkg/dataset"
	"github.com/greenwave-city/greenwave/pkg/evaluate"
	"github.com/greenwave-city/greenwave/pkg/topology"
	"github.com/greenwave-city/greenwave/pkg/train"
)

const evalSynopsis = "[--format csv|metro|scats|nab] [--weather FILE] [--topology FILE] [--adjacency EDGES.csv [--max-group N]] [--target flow|occupancy|speed] [--no-neighbours] [--horizons auto|15m,30m,1h] [--warmup 672h] [--json] [--plot FILE.png] [--clean-report [--labels FILE]] [--signals] [--workers N] [--cpuprofile FILE] FILE..."

const evalDescription = `
Runs the cleaner's and the trainer's own code (pkg/clean, pkg/train) over data files and scores the online
forecasts: records -> per-intersection clean.Intersection (flushed at the end) with a weather table ->
feature frames -> one train.Learner per approach, exactly as the services run them.

Records are read whole and stable-sorted by event time first (SCATS files list each approach's month in turn).
Horizons: --horizons auto (the default) chooses, per intersection, those of 15m, 30m and 1h that are multiples of
its window (1h for hourly Metro data), else one window — the rule of the trainer and the predictor
(train.ConfigFor), so the figures describe the models the services train with their default settings. A run that
lasts more than a few seconds prints its progress to stderr.
Scores count only labels at least --warmup after the start of their series, and only measured (not imputed)
targets. The model (the learner's own test-then-train forecasts) and the baselines — persistence, seasonal
naive (the same LOCAL hour last week), historical average by LOCAL hour of week (the topology's time_zone, the
model profile's buckets), and the model's seasonal profile alone — are scored on exactly
the same (series, target window) pairs: a pair counts only when every one of them has a forecast, so n is equal
across rows; the output says how many pairs were dropped for every row and which forecaster lacked a forecast.
holdout_ols is batch OLS on all of the model's inputs at the first horizon, trained on the first 80 % of the
rows in time; it and every other forecaster are scored on the same pairs of the last 20 %.
docs/evaluation.md has the details.

Topology: --topology FILE, else built in for --format metro (dataset.MetroTopology), scats (imported from the
same file), nab (one detector per series) and csv (derived from the files as greenwave topology import --format csv
does with its defaults: forecast_only intersections, no upstream links, the --weather file's station when it names
one); csv weather comes from --weather. With --format csv and no --topology, --adjacency EDGES.csv (and
--max-group N) add the sensor graph's links as topology import does, so the neighbour features are used.
--no-neighbours drops every approach's upstream links from the topology before cleaning, so the upstream
(neighbour) features of feature set 3 — flow, occupancy and speed of the upstream approaches at t-1 — are
absent everywhere: the same run without neighbour inputs, for comparison.
Calendar features (and --signals' hour-of-week buckets) are computed in the topology's time_zone, as in the
services: America/Chicago for the built-in metro topology, Australia/Melbourne for scats, UTC when unset.

--json prints one object:
  {"n": N, "horizons": [{"horizon_s": S, "model": {"mae","rmse","mape","n"}, "baselines": {"persistence": {...},
  "seasonal_naive": {...}, "historical_average": {...}, "seasonal_profile": {...}}, "dropped": N,
  "missing": {NAME: N}, "model_all_pairs": {...}}], "holdout": {"horizon_s": S, "train": N, "test": N, "n": N, "dropped": N,
  "before_warmup": N, "missing": {NAME: N}, "inputs": [NAME], "dropped_columns": [NAME], "model": {...},
  "baselines": {..., "holdout_ols": {...}}}, "holdout_ols": {"mae","mse","n"},
  "cleaning": {"readings", "duplicates", "rejected": {REASON: N}, "imputed"}}
(undefined metrics are null). --clean-report adds the cleaning figures per reason, and for --format nab the
flags inside and outside the labelled anomaly windows of --labels (NAB combined_windows.json). --signals replays
signal-control and compares the Webster delays of Greenwave's plans with a fixed-time plan, a time-of-day plan
book (Webster per local hour of week on the flows seen so far) and an oracle (Webster on the flows that came),
all on the same windows; --json then prints {"intersections", "windows", "fixed_time": {"avg_delay_s"},
"time_of_day": {...}, "greenwave": {...}, "oracle": {...}, "reduction"} (see greenwave eval --signals in the doc).
With auto horizons, --signals trains only the horizon its plans use (nearest 15m): the same figures, faster.

--workers N (default: the cores the process may use) applies the intersections' frames to the learners and the
signal replay on N goroutines; the cleaners run in order on one, and the results are merged in input order, so
every figure is the same for any N. --cpuprofile FILE writes a CPU profile of the run for go tool pprof.`

// evalOptions are the parsed flags of greenwave eval.
type evalOptions struct {
	format, weather, topology, target, plot, labels string
	horizons                                        []time.Duration // nil: auto
	warmup                                          time.Duration
	// progressEvery is how often a long run reports progress on stderr (0: progressInterval).
	progressEvery                time.Duration
	warmupSet                    bool
	asJSON, cleanReport, signals bool
	// noNeighbours drops the topology's upstream links (--no-neighbours).
	noNeighbours bool
	// adjacency and maxGroup are the links and feature-group bound of a topology derived from canonical CSVs.
	adjacency string
	maxGroup  int
	files     []string
	// workers is --workers (evaluate.Config.Workers); cpuProfile is --cpuprofile.
	workers    int
	cpuProfile string
}

func runEval(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("eval", evalSynopsis, evalDescription, stderr)
	var o evalOptions
	fs.StringVar(&o.format, "format", dataset.FormatCSV, "input format: csv, metro, scats or nab")
	fs.StringVar(&o.weather, "weather", "", "canonical weather CSV `FILE` (for --format csv)")
	fs.StringVar(&o.topology, "topology", "", "topology `FILE` (YAML); default: built in for metro, scats and nab")
	fs.StringVar(&o.target, "target", train.TargetFlow, "predicted quantity: flow, occupancy or speed")
	horizons := fs.String("horizons", "auto", "forecast horizons, multiples of every intersection's window; auto: those of 15m,30m,1h fitting each window (as the trainer)")
	fs.DurationVar(&o.warmup, "warmup", evaluate.DefaultWarmup, "score only labels this long after the start of each series (--signals: default 168h)")
	fs.BoolVar(&o.asJSON, "json", false, "print one JSON object")
	fs.StringVar(&o.plot, "plot", "", "write predicted against observed and error by horizon to `FILE.png`")
	fs.BoolVar(&o.cleanReport, "clean-report", false, "report what the cleaner flagged, per reason (and per NAB series)")
	fs.StringVar(&o.labels, "labels", "", "NAB anomaly windows `FILE` (combined_windows.json) for --clean-report")
	fs.StringVar(&o.adjacency, "adjacency", "", "csv without --topology: links between intersections or detectors, `EDGES.csv` (as topology import --adjacency)")
	fs.IntVar(&o.maxGroup, "max-group", topology.DefaultMaxFeatureGroup, "csv without --topology: most intersections linked by upstream references in one feature group")
	fs.BoolVar(&o.noNeighbours, "no-neighbours", false, "drop the topology's upstream links: no neighbour features (for comparison)")
	fs.BoolVar(&o.signals, "signals", false, "compare Webster delays of Greenwave's plans with fixed-time, time-of-day and oracle plans")
	fs.IntVar(&o.workers, "workers", evalWorkers(), "intersections learned in parallel (the figures do not depend on it)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the run to `FILE` (go tool pprof)")
	// Flags may follow the files (greenwave eval FILE --json): parse, take the leading files, parse the rest.
	rest := args
	for {
		if err := cli.ParseFlagsAllowArgs(fs, rest); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		i := 0
		for i < fs.NArg() && !strings.HasPrefix(fs.Arg(i), "-") {
			o.files = append(o.files, fs.Arg(i))
			i++
		}
		rest = fs.Args()[i:]
		if len(rest) == 0 {
			break
		}
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "warmup" {
			o.warmupSet = true
		}
	})
	if len(o.files) == 0 {
		return usagef("eval: no data FILE given (see greenwave eval --help)")
	}
	hs, err := train.ParseHorizons("--horizons", strings.Split(*horizons, ","))
	if err != nil {
		return usagef("eval: %v", err)
	}
	o.horizons = hs
	switch o.format {
	case dataset.FormatCSV, dataset.FormatMetro, dataset.FormatSCATS, "nab":
	default:
		return usagef("eval: --format %q: want csv, metro, scats or nab", o.format)
	}
	switch o.target {
	case train.TargetFlow, train.TargetOccupancy, train.TargetSpeed:
	default:
		return usagef("eval: --target %q: want flow, occupancy or speed", o.target)
	}
	if (o.adjacency != "" || o.maxGroup != topology.DefaultMaxFeatureGroup) && (o.format != dataset.FormatCSV || o.topology != "") {
		return usagef("eval: --adjacency and --max-group derive a topology from canonical CSVs: they need --format csv and no --topology")
	}
	if o.signals && o.target != train.TargetFlow {
		return usagef("eval: --signals plans from flow forecasts: drop --target %s", o.target)
	}
	if o.workers < 1 {
		return usagef("eval: --workers %d: want at least 1", o.workers)
	}
	stop, err := startCPUProfile(o.cpuProfile)
	if err != nil {
		return err
	}
	return errors.Join(eval(o, stdout, stderr), stop())
}

// eval runs one evaluation with parsed options.
func eval(o evalOptions, stdout, stderr io.Writer) error {
	in, err := loadEvalInput(o, stderr)
	if err != nil {
		return err
	}
	if in.dataZone != "" && in.topo.Zone() != in.dataZone {
		// Not an error: the topology may be right and the file's zone a convention of its format, but the
		// calendar features then follow the topology, as the live cleaner's do.
		fmt.Fprintf(stderr, "greenwave eval: note: the topology's time zone %s differs from the %s data's %s; calendar features use %s, as the services do (set time_zone in the topology to change it)\n",
			in.topo.Zone(), o.format, in.dataZone, in.topo.Zone())
	}
	if o.noNeighbours {
		in.topo = withoutUpstream(in.topo)
	}
	// Every time zone comes from the topology (evaluate.DefaultConfig leaves them nil), as in the services.
	cfg := evaluate.DefaultConfig()
	cfg.Train.Horizons = o.horizons
	cfg.Train.Target = o.target
	cfg.Warmup = o.warmup
	cfg.Trace = o.plot != ""
	cfg.Flags = o.cleanReport
	cfg.Workers = o.workers
	if o.signals {
		sc := evaluate.DefaultSignalConfig()
		if o.warmupSet {
			sc.Warmup = o.warmup
		}
		cfg.Signals = &sc
		// The --signals output has no forecast scores: skip them, unless --plot draws them.
		cfg.SignalsOnly = o.plot == ""
		// Only the plan horizon's forecasts reach the --signals output; with --plot the others are drawn.
		if len(o.horizons) == 0 && o.plot == "" {
			if hs := signalPlanHorizons(in.topo, sc.PlanHorizon); hs != nil {
				cfg.Train.Horizons = hs
			}
		}
	}
	ev, err := evaluate.New(in.topo, cfg)
	if err != nil {
		if len(o.horizons) > 0 {
			return fmt.Errorf("--horizons %s: %w (give multiples of every intersection's window, or auto)", train.FormatHorizons(o.horizons), err)
		}
		return err
	}
	prog := newProgress(stderr, len(in.records), o.progressEvery)
	for i, rec := range in.records {
		prog.tick(i)
		switch {
		case rec.Weather != nil:
			ev.Weather(*rec.Weather)
		case rec.Reading != nil:
			if err := ev.Reading(*rec.Reading); err != nil {
				return err
			}
		}
	}
	rep, err := ev.Finish()
	if err != nil {
		return err
	}
	prog.done()
	for k, n := range in.problems {
		rep.Cleaning.Rejected["file_"+k] += n
	}
	rep.Cleaning.Duplicates += in.merged
	if o.plot != "" {
		if err := writePlot(o.plot, rep); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "greenwave eval: wrote %s\n", o.plot)
	}
	var nab []evaluate.SeriesFlags
	if o.cleanReport && o.format == "nab" {
		var windows map[string][]evaluate.Window
		if o.labels != "" {
			f, err := os.Open(o.labels)
			if err != nil {
				return err
			}
			windows, err = evaluate.ParseNABWindows(f)
			f.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", o.labels, err)
			}
		}
		nab = evaluate.NABCleanReport(in.nab, windows, rep.Flags)
	}
	if o.asJSON {
		return writeEvalJSON(stdout, rep, o, nab)
	}
	return writeEvalText(stdout, rep, o, nab)
}

// withoutUpstream returns a copy of topo whose approaches name no upstream approaches (--no-neighbours); the
// rest, corridors and neighbour links included, is unchanged.
func withoutUpstream(topo topology.Topology) topology.Topology {
	topo.Intersections = slices.Clone(topo.Intersections)
	for i := range topo.Intersections {
		aps := slices.Clone(topo.Intersections[i].Approaches)
		for j := range aps {
			aps[j].Upstream = nil
		}
		topo.Intersections[i].Approaches = aps
	}
	return topo
}

// evalInput is everything read from the files.
type evalInput struct {
	topo topology.Topology
	// dataZone is the zone the format's local times are read in ("" for formats whose times carry offsets).
	dataZone string
	records  []dataset.Record
	nab      []evaluate.NABSeries
	// problems counts rows the file adapters skipped, by reason; merged counts Metro rows merged into an
	// hour already read (repeated hours).
	problems map[string]int
	merged   int
}

func loadEvalInput(o evalOptions, stderr io.Writer) (*evalInput, error) {
	in := &evalInput{problems: map[string]int{}}
	var err error
	switch o.format {
	case dataset.FormatMetro:
		in.dataZone = dataset.MetroLocation
		in.topo = dataset.MetroTopology()
	case dataset.FormatSCATS:
		in.dataZone = dataset.SCATSLocation
	}
	for _, name := range o.files {
		if err := in.readFile(o.format, name); err != nil {
			return nil, err
		}
	}
	if o.weather != "" {
		if err := in.readWeather(o.weather); err != nil {
			return nil, err
		}
	}
	switch {
	case o.topology != "":
		if in.topo, err = topology.Load(o.topology); err != nil {
			return nil, err
		}
	case o.format == dataset.FormatSCATS:
		if len(o.files) != 1 {
			return nil, usagef("eval: --format scats without --topology imports the topology from the one data FILE; give --topology for %d files", len(o.files))
		}
		f, err := os.Open(o.files[0])
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if in.topo, err = topology.ImportSCATS(f, topology.SCATSOptions{}); err != nil {
			return nil, fmt.Errorf("import topology from %s: %w", o.files[0], err)
		}
	case o.format == "nab":
		in.topo = evaluate.NABTopology(in.nab)
	case o.format == dataset.FormatCSV:
		if in.topo, err = derivedTopology("eval", o.files, o.adjacency, o.maxGroup, in.records, stderr); err != nil {
			return nil, err
		}
	}
	// The cleaner needs each intersection's readings in event-time order; files need not list them so.
	sort.SliceStable(in.records, func(i, j int) bool { return in.records[i].Time().Before(in.records[j].Time()) })
	return in, nil
}

func (in *evalInput) readFile(format, name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	if format == "nab" {
		s, err := evaluate.ReadNAB(f, name)
		if err != nil {
			return err
		}
		in.nab = append(in.nab, s)
		for i := range s.Readings {
			in.records = append(in.records, dataset.Record{Reading: &s.Readings[i]})
		}
		return nil
	}
	rd, err := dataset.Open(format, f, name, dataset.Options{})
	if err != nil {
		return err
	}
	return in.drain(rd)
}

func (in *evalInput) readWeather(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	rd, err := dataset.OpenWeather(f, name, dataset.Options{})
	if err != nil {
		return err
	}
	return in.drain(rd)
}

// drain reads every record of rd and its problem counts.
func (in *evalInput) drain(rd *dataset.Reader) error {
	for {
		rec, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", rd.Name(), err)
		}
		in.records = append(in.records, rec)
	}
	st := rd.Stats()
	for k, n := range st.Problems {
		in.problems[string(k)] += n
	}
	in.merged += st.MergedRows
	return nil
}

// nonNil returns s, or an empty slice for nil, so that JSON shows [] rather than null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// jnum is a float that encodes NaN and ±Inf as JSON null.
type jnum float64

// MarshalJSON implements json.Marshaler.
func (x jnum) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
		return []byte("null"), nil
	}
	return json.Marshal(float64(x))
}

type evalMetricsJSON struct {
	MAE  jnum `json:"mae"`
	RMSE jnum `json:"rmse"`
	MAPE jnum `json:"mape"`
	N    int  `json:"n"`
}

type evalHorizonJSON struct {
	HorizonS  int                        `json:"horizon_s"`
	Model     evalMetricsJSON            `json:"model"`
	Baselines map[string]evalMetricsJSON `json:"baselines"`
	// Dropped counts the labelled pairs left out of every row; Missing splits them by forecaster. ModelAll is
	// the model on every labelled pair it forecast, for reference.
	Dropped  int             `json:"dropped"`
	Missing  map[string]int  `json:"missing"`
	ModelAll evalMetricsJSON `json:"model_all_pairs"`
}

// evalHoldoutCmpJSON is the comparison on the hold-out's test pairs.
type evalHoldoutCmpJSON struct {
	HorizonS int `json:"horizon_s"`
	Train    int `json:"train"`
	Test     int `json:"test"`
	// N = Test − Dropped − BeforeWarmup is every row's n.
	N            int            `json:"n"`
	Dropped      int            `json:"dropped"`
	BeforeWarmup int            `json:"before_warmup"`
	Missing      map[string]int `json:"missing"`
	// Inputs are the columns OLS was given (the model's inputs), DroppedColumns those left out of the fit.
	Inputs         []string                   `json:"inputs"`
	DroppedColumns []string                   `json:"dropped_columns"`
	Model          evalMetricsJSON            `json:"model"`
	Baselines      map[string]evalMetricsJSON `json:"baselines"`
}

type evalHoldoutJSON struct {
	MAE jnum `json:"mae"`
	MSE jnum `json:"mse"`
	N   int  `json:"n"`
}

type evalCleaningJSON struct {
	Readings   int            `json:"readings"`
	Duplicates int            `json:"duplicates"`
	Rejected   map[string]int `json:"rejected"`
	Imputed    int            `json:"imputed"`
}

// evalJSON is the --json output of greenwave eval; clean_report appears only with --clean-report --format nab.
type evalJSON struct {
	N           int                    `json:"n"`
	Horizons    []evalHorizonJSON      `json:"horizons"`
	Holdout     evalHoldoutCmpJSON     `json:"holdout"`
	HoldoutOLS  evalHoldoutJSON        `json:"holdout_ols"`
	Cleaning    evalCleaningJSON       `json:"cleaning"`
	CleanReport []evaluate.SeriesFlags `json:"clean_report,omitempty"`
}

func metricsJSON(m evaluate.Metrics) evalMetricsJSON {
	return evalMetricsJSON{MAE: jnum(m.MAE), RMSE: jnum(m.RMSE), MAPE: jnum(m.MAPE), N: m.N}
}

func writeEvalJSON(w io.Writer, rep *evaluate.Report, o evalOptions, nab []evaluate.SeriesFlags) error {
	var out any
	if o.signals {
		out = signalsJSON(rep.Signals)
	} else {
		ej := evalJSON{N: rep.Vectors, HoldoutOLS: evalHoldoutJSON{MAE: jnum(rep.Holdout.MAE), MSE: jnum(rep.Holdout.MSE), N: rep.Holdout.N},
			Cleaning: evalCleaningJSON{Readings: rep.Cleaning.Readings, Duplicates: rep.Cleaning.Duplicates, Rejected: rep.Cleaning.Rejected,
				Imputed: rep.Cleaning.Imputed}, CleanReport: nab, Horizons: []evalHorizonJSON{}}
		for _, h := range rep.Horizons {
			hj := evalHorizonJSON{HorizonS: int(h.Horizon / time.Second), Model: metricsJSON(h.Model), Baselines: map[string]evalMetricsJSON{},
				Dropped: h.DroppedPairs, Missing: h.Missing, ModelAll: metricsJSON(h.ModelAll)}
			for k, m := range h.Baselines {
				hj.Baselines[k] = metricsJSON(m)
			}
			ej.Horizons = append(ej.Horizons, hj)
		}
		ho := rep.Holdout
		ej.Holdout = evalHoldoutCmpJSON{HorizonS: int(ho.Horizon / time.Second), Train: ho.Train, Test: ho.Test, N: ho.N,
			Dropped: ho.DroppedPairs, BeforeWarmup: ho.BeforeWarmup, Missing: ho.Missing,
			Inputs: nonNil(ho.Inputs), DroppedColumns: nonNil(ho.DroppedColumns),
			Model: metricsJSON(ho.Model), Baselines: map[string]evalMetricsJSON{}}
		for k, m := range ho.Baselines {
			ej.Holdout.Baselines[k] = metricsJSON(m)
		}
		out = ej
	}
	b, err := json.Marshal(out)
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

func writeEvalText(w io.Writer, rep *evaluate.Report, o evalOptions, nab []evaluate.SeriesFlags) error {
	if o.signals {
		return writeSignalsText(w, rep.Signals)
	}
	c := rep.Cleaning
	fmt.Fprintf(w, "%d approach windows (%d with a measured target missing: imputed or gap), %d readings, %d weather observations\n",
		rep.Vectors, c.Imputed, c.Readings, c.Weather)
	fmt.Fprintf(w, "scores: %s target, labels at least %v after the start of each series, measured targets only;\n", o.target, o.warmup)
	fmt.Fprintf(w, "every row of a horizon on the same pairs (those for which every forecaster has a forecast)\n\n")
	fmt.Fprintf(w, "%-9s %-20s %10s %10s %9s %8s\n", "horizon", "forecaster", "MAE", "RMSE", "MAPE %", "n")
	row := func(h, name string, m evaluate.Metrics) {
		fmt.Fprintf(w, "%-9s %-20s %10.2f %10.2f %9.2f %8d\n", h, name, m.MAE, m.RMSE, m.MAPE, m.N)
	}
	table := func(hs string, model evaluate.Metrics, base map[string]evaluate.Metrics, names []string) {
		row(hs, "model", model)
		best, bestName := math.Inf(1), ""
		for _, name := range names {
			row("", name, base[name])
			if m := base[name].MAE; m < best {
				best, bestName = m, name
			}
		}
		if !math.IsInf(best, 1) {
			fmt.Fprintf(w, "%-9s %-20s %10.3f  (%s)\n", "", "model/best baseline", model.MAE/best, bestName)
		}
	}
	// dropped says how many pairs every row left out and which forecaster lacked a forecast, and why.
	dropped := func(n, d int, missing map[string]int) {
		if d == 0 {
			fmt.Fprintf(w, "%-9s no labelled pair dropped: n = %d\n", "", n)
			return
		}
		fmt.Fprintf(w, "%-9s %d of %d labelled pairs dropped from every row, for want of a forecast (a pair may lack several):\n", "", d, n+d)
		names := append([]string{evaluate.ModelName}, evaluate.OnlineBaselines...)
		for _, k := range names {
			if missing[k] > 0 {
				fmt.Fprintf(w, "%-9s   %-20s %8d  %s\n", "", k, missing[k], evaluate.MissingReason(k))
			}
		}
	}
	for _, h := range rep.Horizons {
		table(h.Horizon.String(), h.Model, h.Baselines, evaluate.OnlineBaselines)
		dropped(h.Model.N, h.DroppedPairs, h.Missing)
		if h.DroppedPairs > 0 {
			m := h.ModelAll
			fmt.Fprintf(w, "%-9s the model on every labelled pair it forecast, dropped ones included (not comparable with the rows above): MAE %.2f, RMSE %.2f, n %d\n",
				"", m.MAE, m.RMSE, m.N)
		}
	}
	ho := rep.Holdout
	if ho.Err != "" {
		fmt.Fprintf(w, "\nholdout OLS: not fitted: %s\n", ho.Err)
	} else {
		fmt.Fprintf(w, "\nlast 20 %% (holdout OLS on all %d of the model's inputs, %d left out of the fit as constant or collinear; %d training rows, %d test rows, %d before the warm-up):\n",
			len(ho.Inputs), len(ho.DroppedColumns), ho.Train, ho.Test, ho.BeforeWarmup)
		table(ho.Horizon.String(), ho.Model, ho.Baselines, append(slices.Clone(evaluate.OnlineBaselines), evaluate.BaselineOLS))
		dropped(ho.N, ho.DroppedPairs, ho.Missing)
		if len(ho.DroppedColumns) > 0 {
			fmt.Fprintf(w, "  OLS columns dropped as constant or collinear: %s\n", strings.Join(ho.DroppedColumns, ", "))
		}
	}
	if o.cleanReport {
		fmt.Fprintf(w, "\ncleaning: %d duplicates dropped, %d readings flagged as outliers (kept), %d gap windows, %d windows skipped after long silences\n",
			c.Duplicates, c.Flagged, c.Gaps, c.SkippedWindows)
		keys := make([]string, 0, len(c.Rejected))
		for k := range c.Rejected {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "  rejected %-28s %8d\n", k, c.Rejected[k])
		}
		if len(nab) > 0 {
			fmt.Fprintf(w, "\n%-34s %7s %7s %8s %9s %9s\n", "series", "points", "inside", "windows", "flag in", "flag out")
			for _, s := range nab {
				fmt.Fprintf(w, "%-34s %7d %7d %8d %9d %9d\n", s.Name, s.Points, s.PointsInside, s.Windows, s.FlaggedInside, s.FlaggedOutside)
			}
		}
	}
	return nil
}

// plotSlice is how much of the end of the data the time-series panel shows: two weeks stay readable at hourly
// and at 15-minute resolution.
const plotSlice = 14 * 24 * time.Hour

// writePlot draws two panels into one PNG: the first horizon's forecasts against the observed values over the
// last plotSlice of the first series, and the model's and the baselines' MAE by horizon.
func writePlot(path string, rep *evaluate.Report) error {
	if len(rep.Trace) == 0 {
		return fmt.Errorf("plot %s: no scored forecast to draw (is the file longer than --warmup?)", path)
	}
	first := rep.Trace[0]
	var pts []evaluate.TracePoint
	for _, p := range rep.Trace {
		if p.IntersectionID == first.IntersectionID && p.ApproachID == first.ApproachID {
			pts = append(pts, p)
		}
	}
	end := pts[len(pts)-1].Target
	obs, fc := plotter.XYs{}, plotter.XYs{}
	for _, p := range pts {
		if p.Target.Before(end.Add(-plotSlice)) {
			continue
		}
		x := float64(p.Target.Unix())
		obs = append(obs, plotter.XY{X: x, Y: p.Observed})
		fc = append(fc, plotter.XY{X: x, Y: p.Forecast})
	}
	ts := plot.New()
	ts.Title.Text = fmt.Sprintf("%s/%s: forecast %v ahead vs observed (last %v)", first.IntersectionID, first.ApproachID, rep.Horizons[0].Horizon, plotSlice)
	ts.X.Tick.Marker = plot.TimeTicks{Format: "Jan 02"}
	ts.Y.Label.Text = "target (natural unit)"
	lo, err := plotter.NewLine(obs)
	if err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	lo.Color = color.RGBA{A: 255}
	lf, err := plotter.NewLine(fc)
	if err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	lf.Color = color.RGBA{R: 220, G: 40, B: 40, A: 255}
	lf.Dashes = []vg.Length{vg.Points(3), vg.Points(2)}
	ts.Add(lo, lf)
	ts.Legend.Add("observed", lo)
	ts.Legend.Add("forecast", lf)
	ts.Legend.Top = true

	eh := plot.New()
	eh.Title.Text = "MAE by horizon (after warm-up)"
	eh.X.Label.Text = "horizon (minutes)"
	eh.Y.Label.Text = "MAE"
	series := []struct {
		name string
		get  func(evaluate.HorizonReport) evaluate.Metrics
		c    color.RGBA
	}{
		{"model", func(h evaluate.HorizonReport) evaluate.Metrics { return h.Model }, color.RGBA{R: 220, G: 40, B: 40, A: 255}},
		{evaluate.BaselinePersistence, func(h evaluate.HorizonReport) evaluate.Metrics { return h.Baselines[evaluate.BaselinePersistence] }, color.RGBA{B: 200, A: 255}},
		{evaluate.BaselineSeasonalNaive, func(h evaluate.HorizonReport) evaluate.Metrics { return h.Baselines[evaluate.BaselineSeasonalNaive] }, color.RGBA{G: 150, A: 255}},
		{evaluate.BaselineHistoricalAverage, func(h evaluate.HorizonReport) evaluate.Metrics {
			return h.Baselines[evaluate.BaselineHistoricalAverage]
		}, color.RGBA{R: 120, G: 120, B: 120, A: 255}},
		{evaluate.BaselineSeasonalProfile, func(h evaluate.HorizonReport) evaluate.Metrics { return h.Baselines[evaluate.BaselineSeasonalProfile] }, color.RGBA{R: 200, G: 140, A: 255}},
	}
	for _, s := range series {
		xy := plotter.XYs{}
		for _, h := range rep.Horizons {
			if m := s.get(h); !math.IsNaN(m.MAE) {
				xy = append(xy, plotter.XY{X: h.Horizon.Minutes(), Y: m.MAE})
			}
		}
		if len(xy) == 0 {
			continue
		}
		l, p, err := plotter.NewLinePoints(xy)
		if err != nil {
			return fmt.Errorf("plot %s: %w", path, err)
		}
		l.Color, p.Color = s.c, s.c
		eh.Add(l, p)
		eh.Legend.Add(s.name, l, p)
	}
	eh.Legend.Top = true
	eh.Legend.Left = true
	eh.Y.Min = 0

	const w, h = 12 * vg.Inch, 9 * vg.Inch
	img := vgimg.New(w, h)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadY: vg.Points(12), PadTop: vg.Points(6), PadBottom: vg.Points(6), PadLeft: vg.Points(6), PadRight: vg.Points(12)}
	canvases := plot.Align([][]*plot.Plot{{ts}, {eh}}, tiles, dc)
	ts.Draw(canvases[0][0])
	eh.Draw(canvases[1][0])
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

// progressInterval is how often greenwave eval reports progress: a run shorter than this prints nothing.
const progressInterval = 5 * time.Second

// progress reports on stderr how far a long evaluation is, every interval of wall time.
type progress struct {
	w        io.Writer
	total    int
	every    time.Duration
	start    time.Time
	last     time.Time
	reported bool
}

func newProgress(w io.Writer, total int, every time.Duration) *progress {
	if every <= 0 {
		every = progressInterval
	}
	now := time.Now()
	return &progress{w: w, total: total, every: every, start: now, last: now}
}

// tick is called before record i; it looks at the clock only every 4096 records.
func (p *progress) tick(i int) {
	if i%4096 != 0 || i == 0 {
		return
	}
	now := time.Now()
	if now.Sub(p.last) < p.every {
		return
	}
	p.last, p.reported = now, true
	el := now.Sub(p.start)
	eta := time.Duration(float64(el) * float64(p.total-i) / float64(i))
	fmt.Fprintf(p.w, "greenwave eval: %d of %d records (%.0f %%), %v elapsed, about %v left\n",
		i, p.total, 100*float64(i)/float64(p.total), el.Round(time.Second), eta.Round(time.Second))
}

// done reports the end of a run that reported progress.
func (p *progress) done() {
	if p.reported {
		fmt.Fprintf(p.w, "greenwave eval: %d records in %v\n", p.total, time.Since(p.start).Round(time.Second))
	}
}
