package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/cli"
	"github.com/greenwave-city/greenwave/pkg/dataset"
	"github.com/greenwave-city/greenwave/pkg/topology"
)

const topologySynopsis = "import --format csv|scats|metro|sumo [--adjacency EDGES.csv] [-o OUT.yaml] [FILE...]"

// formatSUMO is the --format of a SUMO network (.net.xml); it is not a replay format, so pkg/dataset has none.
const formatSUMO = "sumo"

const topologyDescription = `
import prints the topology YAML for a data set, so the stack can run on it:

  greenwave topology import --format scats "Scats Data October 2006.csv" > /tmp/scats.yaml
  greenwave dev --topology /tmp/scats.yaml --sample=false

scats: topology.ImportSCATS — one intersection per SCATS Number, one approach and detector per Location (the
detector ids greenwave replay --format scats sends), phases NS and EW, typical arterial timings; sites with a
single approach cannot have two phases and are skipped (listed on stderr). FILE may be "-" or absent for stdin.
metro: dataset.MetroTopology — the Metro I-94 counting station as a stand-in intersection (FILE is not needed:
the file holds no geometry).
sumo: topology.ImportSUMO — FILE is a SUMO network (.net.xml): one intersection per traffic light, one approach
per incoming edge with a detector e1_<lane> per lane, the program's green phases as phases (p<index>) with its
yellow and all-red, links and upstream approaches along the edges between traffic lights; traffic lights that
cannot be intersections are skipped (listed on stderr):

  greenwave topology import --format sumo deploy/sumo/grid3x3/grid3x3.net.xml

csv: topology.ReadingsBuilder — FILE... are canonical readings CSVs: one intersection per intersection_id
(a row without one: the detector alone, under its own id), one approach per approach_id (else per detector),
the detectors of the rows, the window from interval_s. The file says nothing about lanes or signals: approaches
get --lanes lanes of --saturation-flow veh/h, and intersections are forecast_only (no phases: signal-control
plans nothing for them) unless --signals gives every intersection with two or more approaches one phase per
approach and default timings. --adjacency EDGES.csv (header from,to[,weight][,travel_time_s][,directed]; ids
are intersection or detector ids; undirected unless directed is true) adds upstream approaches, the cleaner's
upstream features; connected sets larger than --max-group intersections are split breadth-first from the
smallest id, and a link crossing two groups is dropped (counted on stderr). With --signals, links with a
travel_time_s between signalised intersections also become neighbour links (coordination):

  greenwave topology import --format csv readings.csv --adjacency edges.csv -o /tmp/topology.yaml

The output is validated before it is printed (or written to -o); a file that cannot be imported is an error
naming its lines.`

func runTopology(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "import" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
			cli.NewFlagSet("topology", topologySynopsis, topologyDescription, stderr).Usage()
			return nil
		}
		return usagef("topology: want the subcommand import (see greenwave topology --help)")
	}
	fs := cli.NewFlagSet("topology import", "--format csv|scats|metro|sumo [flags] [FILE...]", topologyDescription, stderr)
	format := fs.String("format", "", "data set format: csv, scats, metro or sumo (required)")
	out := fs.String("o", "", "write the topology to `FILE` instead of stdout")
	var co csvImportOptions
	co.flags(fs)
	flagArgs, files := cli.SeparateFileArgs(args[1:], "signals")
	if err := cli.ParseFlags(fs, flagArgs); err != nil {
		return err
	}
	if *format != dataset.FormatCSV && len(files) > 1 {
		return usagef("topology import: one FILE expected, got %q", files)
	}
	if *format != dataset.FormatCSV && co.set(fs) {
		return usagef("topology import: --adjacency, --signals, --lanes, --saturation-flow, --max-group, --time-zone and --weather-station are for --format csv")
	}
	file := ""
	if len(files) == 1 {
		file = files[0]
	}
	// scats and sumo read FILE (stdin when absent or "-"); metro needs none; csv needs FILE.
	in, name := io.Reader(os.Stdin), "stdin"
	if file != "" && file != "-" && (*format == dataset.FormatSCATS || *format == formatSUMO) {
		f, err := os.Open(file)
		if err != nil {
			return fmt.Errorf("topology import: %w", err)
		}
		defer f.Close()
		in, name = f, file
	}
	var topo topology.Topology
	var source string
	var err error
	switch *format {
	case dataset.FormatMetro:
		topo, source = dataset.MetroTopology(), "the Metro Interstate Traffic Volume station (dataset.MetroTopology)"
	case dataset.FormatSCATS:
		topo, err = topology.ImportSCATS(in, topology.SCATSOptions{OnSkip: func(site, reason string) {
			fmt.Fprintf(stderr, "greenwave topology import: skipped site %s: %s\n", site, reason)
		}})
		source = fmt.Sprintf("SCATS file %s (topology.ImportSCATS defaults)", name)
	case formatSUMO:
		topo, err = topology.ImportSUMO(in, topology.SUMOOptions{OnSkip: func(tl, reason string) {
			fmt.Fprintf(stderr, "greenwave topology import: skipped traffic light %s: %s\n", tl, reason)
		}})
		source = fmt.Sprintf("SUMO network %s (topology.ImportSUMO defaults)", name)
	case dataset.FormatCSV:
		if len(files) == 0 {
			return usagef("topology import: --format csv needs the readings FILE")
		}
		var st topology.ReadingsStats
		topo, st, err = importCSVTopology(files, co, "greenwave topology import", stderr)
		if err != nil {
			return err
		}
		source = fmt.Sprintf("readings %s (topology.ReadingsBuilder defaults)", strings.Join(files, ", "))
		if co.adjacency != "" {
			source += ", links from " + co.adjacency
		}
		fmt.Fprintf(stderr, "greenwave topology import: %s\n", st.Summary())
	case "":
		return usagef("topology import: --format csv|scats|metro|sumo is required")
	default:
		return usagef("topology import: --format %q: want csv, scats, metro or sumo", *format)
	}
	if err != nil {
		return fmt.Errorf("topology import %s: %w", name, err)
	}
	if err := topo.Validate(); err != nil {
		return fmt.Errorf("topology import: %w", err)
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# Generated by `greenwave topology import --format %s` from %s.\n", *format, source)
	fmt.Fprintf(&buf, "# %d intersection(s). Timings are defaults, not measurements: review before real use.\n", len(topo.Intersections))
	if err := encodeTopology(&buf, topo); err != nil {
		return fmt.Errorf("topology import: %w", err)
	}
	if *out != "" {
		if err := os.WriteFile(*out, buf.Bytes(), 0o644); err != nil {
			return fmt.Errorf("topology import: %w", err)
		}
		fmt.Fprintf(stderr, "greenwave topology import: wrote %s\n", *out)
		return nil
	}
	if _, err := stdout.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("topology import: write: %w", err)
	}
	return nil
}

// encodeTopology writes t as YAML, indented by two spaces.
func encodeTopology(w io.Writer, t topology.Topology) error {
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(t); err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	return nil
}

// csvImportOptions are the flags of a topology derived from canonical readings CSVs.
type csvImportOptions struct {
	adjacency string
	opts      topology.ReadingsOptions
}

func (c *csvImportOptions) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.adjacency, "adjacency", "", "csv: links between intersections or detectors, `EDGES.csv` with header from,to[,weight][,travel_time_s][,directed]")
	fs.BoolVar(&c.opts.Signals, "signals", false, "csv: give intersections with two or more approaches one phase per approach and default timings (default: forecast_only)")
	fs.IntVar(&c.opts.Lanes, "lanes", topology.ReadingsDefaultLanes, "csv: lanes of every approach")
	fs.Float64Var(&c.opts.SaturationFlowVPHPerLane, "saturation-flow", topology.ReadingsDefaultSaturationFlow, "csv: saturation flow of every lane, veh/h of green")
	fs.IntVar(&c.opts.MaxGroup, "max-group", topology.DefaultMaxFeatureGroup, "csv: most intersections linked by upstream references in one feature group (partition key)")
	fs.StringVar(&c.opts.TimeZone, "time-zone", "", "csv: IANA time zone of the intersections' calendar (default UTC)")
	fs.StringVar(&c.opts.WeatherStation, "weather-station", "", "csv: weather station `ID` (canonical weather CSV station_id) of every intersection")
}

// set reports whether any csv-only flag was given.
func (c *csvImportOptions) set(fs *flag.FlagSet) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "adjacency", "signals", "lanes", "saturation-flow", "max-group", "time-zone", "weather-station":
			set = true
		}
	})
	return set
}

// maxDropLines bounds the dropped links listed on stderr; the rest are counted.
const maxDropLines = 5

// importCSVTopology derives the topology of canonical readings files (and an adjacency file), reporting rows
// whose ids or interval cannot be read and dropped links on stderr (the first few of each, then a count),
// prefixed by cmd.
func importCSVTopology(files []string, c csvImportOptions, cmd string, stderr io.Writer) (topology.Topology, topology.ReadingsStats, error) {
	if c.opts.MaxGroup < 1 || c.opts.Lanes < 1 {
		return topology.Topology{}, topology.ReadingsStats{}, usagef("%s: --max-group and --lanes must be at least 1", cmd)
	}
	drops := 0
	opts := c.opts
	opts.OnDrop = func(reason string) {
		if drops++; drops <= maxDropLines {
			fmt.Fprintf(stderr, "%s: %s\n", cmd, reason)
		}
	}
	b := topology.NewReadingsBuilder(opts)
	skipped := 0
	problem := func(p dataset.Problem) {
		if skipped++; skipped <= maxDropLines {
			fmt.Fprintf(stderr, "%s: %s: places no detector\n", cmd, p)
		}
	}
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return topology.Topology{}, topology.ReadingsStats{}, fmt.Errorf("%s: %w", cmd, err)
		}
		_, err = dataset.AddCSVDetectors(b, f, name, dataset.Options{OnProblem: problem})
		f.Close()
		if err != nil {
			return topology.Topology{}, topology.ReadingsStats{}, fmt.Errorf("%s: %w", cmd, err)
		}
	}
	if skipped > maxDropLines {
		fmt.Fprintf(stderr, "%s: … %d rows in all place no detector\n", cmd, skipped)
	}
	var edges []topology.Edge
	if c.adjacency != "" {
		f, err := os.Open(c.adjacency)
		if err != nil {
			return topology.Topology{}, topology.ReadingsStats{}, fmt.Errorf("%s: %w", cmd, err)
		}
		edges, err = topology.ParseAdjacency(f, c.adjacency)
		f.Close()
		if err != nil {
			return topology.Topology{}, topology.ReadingsStats{}, fmt.Errorf("%s: %w", cmd, err)
		}
	}
	t, st, err := b.Topology(edges, c.adjacency)
	if err != nil {
		return topology.Topology{}, st, fmt.Errorf("%s: %w", cmd, err)
	}
	if drops > maxDropLines {
		fmt.Fprintf(stderr, "%s: … and %d more such notes\n", cmd, drops-maxDropLines)
	}
	return t, st, nil
}

// derivedTopology is the topology of canonical readings files given without --topology (eval): the defaults of
// `greenwave topology import --format csv` with the given adjacency file (none when empty) and feature-group
// bound, announced on stderr in one line. When the weather records hold exactly one station, every intersection
// takes it (as --weather-station would), so --weather joins.
func derivedTopology(cmd string, files []string, adjacency string, maxGroup int, records []dataset.Record, stderr io.Writer) (topology.Topology, error) {
	c := csvImportOptions{adjacency: adjacency, opts: topology.ReadingsOptions{Lanes: topology.ReadingsDefaultLanes, MaxGroup: maxGroup}}
	stations := map[string]bool{}
	for _, r := range records {
		if r.Weather != nil {
			stations[r.Weather.StationID] = true
		}
	}
	if len(stations) == 1 {
		for s := range stations {
			c.opts.WeatherStation = s
		}
	}
	t, st, err := importCSVTopology(files, c, "greenwave "+cmd, io.Discard)
	if err != nil {
		return topology.Topology{}, err
	}
	links := ""
	if adjacency != "" {
		links = fmt.Sprintf(", %d upstream references from %s", st.Upstream, adjacency)
	}
	fmt.Fprintf(stderr, "greenwave %s: no --topology: derived %d intersections from %s%s (greenwave topology import)\n",
		cmd, len(t.Intersections), strings.Join(files, ", "), links)
	return t, nil
}
