package traci

import (
	"context"
	"errors"
)

// DetectorReading is what one detector saw in the last simulation step. SUMO 1.15 offers no interval
// aggregates over TraCI for induction loops (E1) and lane-area detectors (E2); a caller sums steps itself.
type DetectorReading struct {
	ID string
	// Vehicles is the number of vehicles on (E2) or over (E1) the detector in the last step.
	Vehicles int
	// MeanSpeedMPS is their mean speed in metres per second. On an induction loop it is the mean over the vehicles
	// that entered the loop during the step, and -1 when none did (even with a vehicle still standing on it).
	MeanSpeedMPS float64
	// OccupancyPct is the share of the last step (E1) or of the detector's length (E2) taken by vehicles, in
	// percent (0..100), as SUMO reports it.
	OccupancyPct float64
}

// InductionLoopIDs lists the induction loops (E1 detectors) of the scenario.
func (c *Client) InductionLoopIDs(ctx context.Context) ([]string, error) {
	return getValue(ctx, c, "inductionloop.getIDList", query{cmd: cmdGetInductionLoop, varID: varIDList}, readStrings)
}

// LaneAreaIDs lists the lane-area detectors (E2 detectors) of the scenario.
func (c *Client) LaneAreaIDs(ctx context.Context) ([]string, error) {
	return getValue(ctx, c, "lanearea.getIDList", query{cmd: cmdGetLaneArea, varID: varIDList}, readStrings)
}

// InductionLoops reads the last step of the given induction loops, in one round trip, in the order given.
func (c *Client) InductionLoops(ctx context.Context, ids []string) ([]DetectorReading, error) {
	return c.readDetectors(ctx, "inductionloop", cmdGetInductionLoop, ids)
}

// LaneAreas reads the last step of the given lane-area detectors, in one round trip, in the order given.
func (c *Client) LaneAreas(ctx context.Context, ids []string) ([]DetectorReading, error) {
	return c.readDetectors(ctx, "lanearea", cmdGetLaneArea, ids)
}

// detectorVars are the variables read per detector, with the Python client's name of each.
var detectorVars = [...]struct {
	varID byte
	name  string
	read  func(r *DetectorReading, d *decoder)
}{
	{varLastStepVehicleNumber, "getLastStepVehicleNumber", func(r *DetectorReading, d *decoder) { r.Vehicles = d.typedInt() }},
	{varLastStepMeanSpeed, "getLastStepMeanSpeed", func(r *DetectorReading, d *decoder) { r.MeanSpeedMPS = d.typedDouble() }},
	{varLastStepOccupancy, "getLastStepOccupancy", func(r *DetectorReading, d *decoder) { r.OccupancyPct = d.typedDouble() }},
}

func (c *Client) readDetectors(ctx context.Context, domain string, cmd byte, ids []string) ([]DetectorReading, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var msg []byte
	for _, id := range ids {
		for _, v := range detectorVars {
			msg = query{cmd: cmd, varID: v.varID, objID: id}.append(msg)
		}
	}
	d, err := c.exchange(ctx, msg)
	if err != nil {
		return nil, opError(domain+".getLastStep", "", err)
	}
	return decodeDetectors(d, domain, cmd, ids)
}

// decodeDetectors reads the answers to detectorVars for each id. SUMO answers every command of a message, a
// refused one with its status alone, so one unknown detector does not hide the others' errors.
func decodeDetectors(d *decoder, domain string, cmd byte, ids []string) ([]DetectorReading, error) {
	readings := make([]DetectorReading, len(ids))
	var errs []error
	for i, id := range ids {
		readings[i].ID = id
		failed := false
		for _, v := range detectorVars {
			vd, err := d.result(query{cmd: cmd, varID: v.varID, objID: id})
			if err == nil {
				v.read(&readings[i], vd)
				err = vd.err
			}
			if err != nil && !failed { // one error per detector: an unknown id fails all its variables
				errs = append(errs, opError(domain+"."+v.name, id, err))
				failed = true
			}
			if d.err != nil { // out of step: nothing after this can be read
				return nil, errors.Join(errs...)
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return readings, nil
}
