package check

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"
)

// SampleCSV is the path of the compose demo's readings, relative to the repository root.
const SampleCSV = "deploy/demo/sample.csv"

// SampleHeader is the canonical readings CSV header (DESIGN.md, "File formats").
const SampleHeader = "observed_at,intersection_id,approach_id,detector_id,interval_s,count,occupancy_ratio,speed_kmh"

// Detector is one detector of a topology, with what the sample generator needs to know about its approach.
type Detector struct {
	Intersection, Approach, ID string
	// Lanes and SaturationVPH are the approach's; a detector sees an even share of the approach's lanes.
	Lanes         int
	SaturationVPH float64
}

// topologyFile is the part of config/topology.yaml (pkg/topology) the sample needs. It is decoded with YAML 1.2
// like pkg/topology does: under YAML 1.1 (sigs.k8s.io/yaml) the approach id N would read as false.
type topologyFile struct {
	Intersections []struct {
		ID         string `yaml:"id"`
		Approaches []struct {
			ID                       string   `yaml:"id"`
			Lanes                    int      `yaml:"lanes"`
			SaturationFlowVPHPerLane float64  `yaml:"saturation_flow_vph_per_lane"`
			Detectors                []string `yaml:"detectors"`
		} `yaml:"approaches"`
	} `yaml:"intersections"`
}

// TopologyDetectors decodes a topology file and lists its detectors in file order.
func TopologyDetectors(data []byte) ([]Detector, error) {
	var t topologyFile
	if err := yaml.Unmarshal(data, &t); err != nil {
		return nil, fmt.Errorf("decode topology: %w", err)
	}
	var out []Detector
	for _, in := range t.Intersections {
		for _, a := range in.Approaches {
			for _, d := range a.Detectors {
				out = append(out, Detector{Intersection: in.ID, Approach: a.ID, ID: d, Lanes: a.Lanes, SaturationVPH: a.SaturationFlowVPHPerLane})
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("decode topology: no detectors")
	}
	return out, nil
}

// SampleConfig shapes the demo readings.
type SampleConfig struct {
	Start    time.Time     // first interval (UTC)
	Duration time.Duration // how much data
	Interval time.Duration // counting interval
	Seed     uint64
}

// Sample generates the compose demo's readings in the canonical CSV format: a morning peak over every detector,
// Poisson-like counts, occupancy and speed that follow the flow, plus two faults so the cleaner has visible work —
// one detector stuck on a single reading for an hour, and one that reports an impossible occupancy (1.3) now
// and then. It is a pure function of its arguments: the committed file can be checked for drift.
func Sample(detectors []Detector, cfg SampleConfig) []byte {
	var b bytes.Buffer
	b.WriteString(SampleHeader + "\n")
	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	stuck, spiky := detectors[len(detectors)/2].ID, detectors[len(detectors)-1].ID
	stuckFrom, stuckTo := cfg.Start.Add(cfg.Duration/4), cfg.Start.Add(cfg.Duration/2)
	var stuckRow string
	secs := cfg.Interval.Seconds()
	n := 0
	for at := cfg.Start; at.Before(cfg.Start.Add(cfg.Duration)); at = at.Add(cfg.Interval) {
		n++
		hour := float64(at.Hour()) + float64(at.Minute())/60
		// A morning peak at 08:00 on a base of 30 %; east-west approaches carry 60 % of north-south demand.
		profile := 0.3 + 0.6*math.Exp(-math.Pow((hour-8)/1.2, 2))
		for _, d := range detectors {
			share := 1.0
			if d.Approach == "E" || d.Approach == "W" {
				share = 0.6
			}
			meanVPH := profile * share * d.SaturationVPH * 0.5
			mean := meanVPH * secs / 3600
			count := max(0, int(math.Round(mean+rng.NormFloat64()*math.Sqrt(mean))))
			row := fmt.Sprintf("%s,%s,%s,%s,%d", at.Format(time.RFC3339), d.Intersection, d.Approach, d.ID, int(secs))
			switch {
			case count == 0:
				row += ",0,0,"
			default:
				flowVPH := float64(count) * 3600 / secs
				occ := math.Min(0.95, flowVPH/d.SaturationVPH*0.45*(1+0.05*rng.NormFloat64()))
				speed := math.Max(5, 55*(1-occ)*(1+0.05*rng.NormFloat64()))
				row += "," + strconv.Itoa(count) + "," + strconv.FormatFloat(occ, 'f', 3, 64) + "," + strconv.FormatFloat(speed, 'f', 1, 64)
			}
			if d.ID == spiky && n%97 == 0 {
				row = fmt.Sprintf("%s,%s,%s,%s,%d,%d,1.300,", at.Format(time.RFC3339), d.Intersection, d.Approach, d.ID, int(secs), count)
			}
			if d.ID == stuck && !at.Before(stuckFrom) && at.Before(stuckTo) {
				if stuckRow == "" {
					stuckRow = row[len(at.Format(time.RFC3339)):]
				}
				row = at.Format(time.RFC3339) + stuckRow
			}
			b.WriteString(row + "\n")
		}
	}
	return b.Bytes()
}

// DemoSampleConfig is the configuration deploy/demo/sample.csv is generated with: four hours around a
// Monday morning peak, one-minute intervals.
func DemoSampleConfig() SampleConfig {
	return SampleConfig{
		Start:    time.Date(2026, 11, 23, 6, 0, 0, 0, time.UTC),
		Duration: 4 * time.Hour,
		Interval: time.Minute,
		Seed:     20261123,
	}
}
