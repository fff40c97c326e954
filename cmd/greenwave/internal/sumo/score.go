package sumo

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
)

// GasolineDensityGPerML converts SUMO's fuel mass to volume: a typical gasoline density (EN 228 allows 720–775
// g/l). SUMO 1.15 reports tripinfo's fuel_abs as a mass in milligrams, as CO2_abs (its default car,
// HBEFA3/PC_G_EU4, a gasoline car, emits about 3.1 mg of CO2 per mg of fuel_abs, the mass ratio of burnt
// gasoline).
const GasolineDensityGPerML = 0.742

// Result is a run's score: SUMO's trip statistics, means per completed vehicle. Its JSON form is the last line
// of `greenwave sumo --json`.
type Result struct {
	Scenario   string `json:"scenario"`
	Controller string `json:"controller"`
	// TimeLossS is the time lost to driving below the desired speed; WaitingTimeS the time spent (nearly)
	// stopped; DurationS the trip time.
	TimeLossS    float64 `json:"time_loss_s"`
	WaitingTimeS float64 `json:"waiting_time_s"`
	DurationS    float64 `json:"duration_s"`
	// Stops is tripinfo's waitingCount: how often a vehicle came to a stop.
	Stops  float64 `json:"stops"`
	FuelML float64 `json:"fuel_ml"`
	CO2G   float64 `json:"co2_g"`
	// Completed vehicles arrived (their trips are the means); Inserted vehicles entered the network. When a run
	// is cut by --end, Inserted − Completed were still driving.
	Completed int `json:"completed"`
	Inserted  int `json:"inserted"`
}

// tripinfoScore reads a --tripinfo-output file (written with --device.emissions.probability 1) into the means of
// r. A file cut short (SUMO killed) is an error.
func tripinfoScore(path string, r *Result) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("read trip info: %w", err)
	}
	defer f.Close()
	if err := scoreTrips(f, r); err != nil {
		return fmt.Errorf("read trip info %s: %w", path, err)
	}
	return nil
}

type tripinfo struct {
	Duration  string `xml:"duration,attr"`
	Waiting   string `xml:"waitingTime,attr"`
	Stops     string `xml:"waitingCount,attr"`
	TimeLoss  string `xml:"timeLoss,attr"`
	Emissions struct {
		Fuel string `xml:"fuel_abs,attr"`
		CO2  string `xml:"CO2_abs,attr"`
	} `xml:"emissions"`
}

func scoreTrips(in io.Reader, r *Result) error {
	d := xml.NewDecoder(in)
	var sum [6]float64
	n := 0
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		se, ok := tok.(xml.StartElement)
		if !ok || se.Name.Local != "tripinfo" {
			continue
		}
		var t tripinfo
		if err := d.DecodeElement(&t, &se); err != nil {
			return err
		}
		for i, s := range []string{t.TimeLoss, t.Waiting, t.Duration, t.Stops, t.Emissions.Fuel, t.Emissions.CO2} {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return fmt.Errorf("trip %d: %q is not a number (emissions need --device.emissions.probability 1)", n+1, s)
			}
			sum[i] += v
		}
		n++
	}
	r.Completed = n
	if n == 0 {
		return nil
	}
	mean := func(i int) float64 { return sum[i] / float64(n) }
	r.TimeLossS, r.WaitingTimeS, r.DurationS, r.Stops = mean(0), mean(1), mean(2), mean(3)
	r.FuelML = mean(4) / 1000 / GasolineDensityGPerML // mg → g → ml
	r.CO2G = mean(5) / 1000
	return nil
}

// printResult writes the JSON line, or a short table.
func printResult(w io.Writer, r Result, asJSON bool) error {
	if asJSON {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	_, err := fmt.Fprintf(w, "scenario %s, controller %s: %d of %d vehicles completed; means per completed vehicle:\n"+
		"  time loss     %8.1f s\n  waiting time  %8.1f s\n  trip duration %8.1f s\n  stops         %8.2f\n"+
		"  fuel          %8.1f ml\n  CO2           %8.1f g\n",
		r.Scenario, r.Controller, r.Completed, r.Inserted, r.TimeLossS, r.WaitingTimeS, r.DurationS, r.Stops, r.FuelML, r.CO2G)
	return err
}
