package sumo

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/traci"
	"github.com/greenwave-city/greenwave/pkg/dataset"
	"github.com/greenwave-city/greenwave/pkg/topology"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// sensors are the induction loops the bridge adds on every approach lane of the derived topology and their
// window sums: greenwave's loop sends their readings to the collector, --record writes them. SUMO's own
// controllers run without them unless --record is given, so their runs stay as they were.
type sensors struct {
	topo       topology.Topology
	additional string        // the SUMO additional file that defines the loops
	window     time.Duration // the topology's window, the same for every intersection
	epoch      time.Time     // event time of simulated time 0
	dets       []detector
	ids        []string
	winStart   time.Duration // simulated start of the open window
	rec        *recorder     // nil without --record
}

// prepareSensors derives the topology from the network and writes the detectors' additional file.
func (r *runner) prepareSensors() error {
	f, err := os.Open(r.sc.Net)
	if err != nil {
		return err
	}
	topo, err := topology.ImportSUMO(f, topology.SUMOOptions{Revision: "sumo-" + r.sc.Name,
		OnSkip: func(tl, reason string) { r.progress("traffic light %s stays on its SUMO program: %s", tl, reason) }})
	f.Close()
	if err != nil {
		return fmt.Errorf("derive topology: %w", err)
	}
	zone, err := topo.Location()
	if err != nil {
		return err
	}
	lengths, err := laneLengths(r.sc.Net)
	if err != nil {
		return err
	}
	s := &sensors{topo: topo, additional: filepath.Join(r.tmp, "detectors.add.xml"),
		epoch: time.Date(2026, time.January, 5, 7, 0, 0, 0, zone)} // a Monday morning
	var add bytes.Buffer
	add.WriteString("<additional>\n")
	for _, in := range topo.Intersections {
		if s.window == 0 || time.Duration(in.WindowS)*time.Second != s.window {
			if s.window != 0 {
				return fmt.Errorf("intersections with different windows (%v, %ds): the loop needs one", s.window, in.WindowS)
			}
			s.window = time.Duration(in.WindowS) * time.Second
		}
		for _, a := range in.Approaches {
			for _, id := range a.Detectors {
				lane := strings.TrimPrefix(id, topology.SUMODetectorPrefix)
				length, ok := lengths[lane]
				if !ok {
					return fmt.Errorf("detector %s: no lane %s in %s", id, lane, r.sc.Net)
				}
				pos := length - detectorSetbackM
				if pos < length/2 {
					pos = length / 2
				}
				fmt.Fprintf(&add, "    <inductionLoop id=%q lane=%q pos=\"%.2f\" period=\"%d\" file=%q/>\n",
					id, lane, pos, int(s.window.Seconds()), os.DevNull)
				s.dets = append(s.dets, detector{id: id, intersection: in.ID, approach: a.ID, lane: lane})
				s.ids = append(s.ids, id)
			}
		}
	}
	add.WriteString("</additional>\n")
	if len(s.dets) == 0 {
		return fmt.Errorf("the network %s has no traffic light Greenwave can control", r.sc.Net)
	}
	if err := os.WriteFile(s.additional, add.Bytes(), 0o644); err != nil {
		return err
	}
	if r.o.Record != "" {
		if s.rec, err = newRecorder(r.o.Record, topo); err != nil {
			return err
		}
	}
	r.sensors = s
	return nil
}

// sample adds one simulation step's readings of every loop to the window's sums.
func (s *sensors) sample(ctx context.Context, c *traci.Client) error {
	readings, err := c.InductionLoops(ctx, s.ids)
	if err != nil {
		return err
	}
	for i, rd := range readings {
		s.dets[i].add(rd)
	}
	return nil
}

// readings closes the open window: every loop's canonical reading, stamped with the window's start in event
// time, also written to the recording. The caller moves winStart on.
func (s *sensors) readings() ([]*greenwavev1.TrafficReading, error) {
	at := s.epoch.Add(s.winStart)
	out := make([]*greenwavev1.TrafficReading, len(s.dets))
	for i := range s.dets {
		out[i] = s.dets[i].reading(at, s.window)
	}
	if s.rec != nil {
		if err := s.rec.write(out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// record is a step of a run of SUMO's own controllers with --record: it samples the loops and writes each window
// as it closes (greenwave's loop does the same in step and exchange).
func (s *sensors) record(ctx context.Context, c *traci.Client, now time.Duration) error {
	if err := s.sample(ctx, c); err != nil {
		return err
	}
	if now-s.winStart < s.window {
		return nil
	}
	if _, err := s.readings(); err != nil {
		return err
	}
	s.winStart = now
	return nil
}

// Files written to the --record directory.
const (
	RecordReadings = "readings.csv"
	RecordTopology = "topology.yaml"
	RecordEdges    = "edges.csv"
)

// EdgeColumns is the header of the recorded edge list.
var EdgeColumns = []string{"from", "to", "weight", "travel_time_s"}

// recorder writes a run for offline use (greenwave eval, replay): the derived topology and the links between
// its detectors when the run starts, each closed window's readings as the canonical readings CSV during it.
type recorder struct {
	dir  string
	f    *os.File
	w    *csv.Writer
	rows int
}

// newRecorder creates dir and writes the topology and the edge list into it, and the readings' header.
func newRecorder(dir string, topo topology.Topology) (*recorder, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	if err := writeTopology(filepath.Join(dir, RecordTopology), topo); err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	var edges bytes.Buffer
	if err := writeEdges(&edges, DetectorEdges(topo)); err != nil {
		return nil, fmt.Errorf("record: edges: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, RecordEdges), edges.Bytes(), 0o644); err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	f, err := os.Create(filepath.Join(dir, RecordReadings))
	if err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	rec := &recorder{dir: dir, f: f, w: csv.NewWriter(f)}
	if err := rec.w.Write(dataset.ReadingColumns); err != nil {
		f.Close()
		return nil, fmt.Errorf("record: %w", err)
	}
	return rec, nil
}

// write appends one window's readings, in dataset.ReadingColumns order.
func (r *recorder) write(rds []*greenwavev1.TrafficReading) error {
	for _, rd := range rds {
		row := []string{rd.GetObservedAt().AsTime().In(time.UTC).Format(time.RFC3339), rd.GetIntersectionId(),
			rd.GetApproachId(), rd.GetDetectorId(), strconv.FormatUint(uint64(rd.GetIntervalS()), 10),
			formatNumber(rd.GetCount()), "", ""}
		if rd.OccupancyRatio != nil {
			row[6] = formatNumber(rd.GetOccupancyRatio())
		}
		if rd.SpeedKmh != nil {
			row[7] = formatNumber(rd.GetSpeedKmh())
		}
		if err := r.w.Write(row); err != nil {
			return fmt.Errorf("record %s: %w", RecordReadings, err)
		}
		r.rows++
	}
	return nil
}

// close flushes the readings; the recording is complete only when it returns nil.
func (r *recorder) close() error {
	r.w.Flush()
	err := errors.Join(r.w.Error(), r.f.Close())
	if err != nil {
		return fmt.Errorf("record %s: %w", RecordReadings, err)
	}
	return nil
}

// formatNumber keeps four decimals at most: a detector does not measure finer, and the file stays readable.
func formatNumber(v float64) string {
	return strconv.FormatFloat(math.Round(v*1e4)/1e4, 'f', -1, 64)
}

// writeTopology writes the topology as YAML, the form --topology flags read.
func writeTopology(path string, topo topology.Topology) error {
	y, err := yaml.Marshal(topo)
	if err != nil {
		return fmt.Errorf("encode topology: %w", err)
	}
	return os.WriteFile(path, y, 0o644)
}

// Edge is a directed link from an upstream detector to a downstream one: vehicles counted at From reach To
// about TravelTimeS later. Weight is From's share of what reaches To from upstream detectors: the topology has
// no turning counts, so each of the k detectors that feed To gets 1/k, and the weights into a detector sum to 1
// (a row-normalised adjacency, the form diffusion and graph-convolution forecasters take).
type Edge struct {
	From, To string
	Weight   float64
	// TravelTimeS is the free-flow travel time between the two intersections (topology.Link); NaN when the
	// topology has none for the pair.
	TravelTimeS float64
}

// DetectorEdges lists the links between the topology's detectors: every detector of an approach's upstream
// approaches (Approach.Upstream, straight-on feeds between signalised junctions) to every detector of the
// approach, with the travel time of the intersection's neighbour link to the upstream intersection. The order
// is the topology's: intersections, approaches, their detectors, then the upstream ones.
func DetectorEdges(topo topology.Topology) []Edge {
	approaches := map[string]topology.Approach{}
	for _, in := range topo.Intersections {
		for _, a := range in.Approaches {
			approaches[in.ID+"/"+a.ID] = a
		}
	}
	var out []Edge
	for _, in := range topo.Intersections {
		for _, a := range in.Approaches {
			var feeds []string
			var travel []float64
			for _, up := range a.Upstream {
				tt := math.NaN()
				upIn, _, _ := strings.Cut(up, "/")
				if i := slices.IndexFunc(in.Neighbours, func(l topology.Link) bool { return l.Intersection == upIn }); i >= 0 {
					tt = in.Neighbours[i].TravelTimeS
				}
				for _, d := range approaches[up].Detectors {
					feeds = append(feeds, d)
					travel = append(travel, tt)
				}
			}
			for _, to := range a.Detectors {
				for i, from := range feeds {
					out = append(out, Edge{From: from, To: to, Weight: 1 / float64(len(feeds)), TravelTimeS: travel[i]})
				}
			}
		}
	}
	return out
}

// writeEdges writes the edge list as CSV with header EdgeColumns; an unknown travel time is an empty cell.
func writeEdges(w io.Writer, edges []Edge) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(EdgeColumns); err != nil {
		return err
	}
	for _, e := range edges {
		tt := ""
		if !math.IsNaN(e.TravelTimeS) {
			tt = strconv.FormatFloat(e.TravelTimeS, 'f', -1, 64)
		}
		if err := cw.Write([]string{e.From, e.To, strconv.FormatFloat(e.Weight, 'f', 6, 64), tt}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// closeRecording completes the recording, if any, and says where it is.
func (r *runner) closeRecording() error {
	if r.sensors == nil || r.sensors.rec == nil {
		return nil
	}
	rec := r.sensors.rec
	r.sensors.rec = nil
	if err := rec.close(); err != nil {
		return err
	}
	r.progress("recorded %d readings (%d windows of %v) to %s", rec.rows, rec.rows/max(1, len(r.sensors.dets)), r.sensors.window, rec.dir)
	return nil
}
