package traci

import (
	"context"
	"time"
)

// Step advances the simulation until simulated time reaches until (SUMO's simulationStep(targetTime)); 0 makes
// exactly one step, and a time at or before the current one does nothing. Under TraCI, SUMO goes on past the
// scenario's end time: the caller decides when to stop, MinExpectedNumber telling when every trip has ended.
func (c *Client) Step(ctx context.Context, until time.Duration) error {
	const op = "simulationStep"
	var e encoder
	e.f64(until.Seconds())
	d, err := c.exchange(ctx, appendCommand(nil, cmdSimStep, e.b))
	if err != nil {
		return opError(op, "", err)
	}
	return opError(op, "", decodeStep(d))
}

// decodeStep reads simulationStep's answer: the status, then the number of subscription results, which is 0
// since this client subscribes to nothing.
func decodeStep(d *decoder) error {
	if err := d.status(cmdSimStep); err != nil {
		return err
	}
	d.i32()
	return d.err
}

func simQuery(varID byte) query { return query{cmd: cmdGetSimulation, varID: varID} }

// Time is the current simulated time, from the scenario's begin at 0.
func (c *Client) Time(ctx context.Context) (time.Duration, error) {
	return getValue(ctx, c, "simulation.getTime", simQuery(varTime), readSeconds)
}

// StepLength is the length of one simulation step (--step-length).
func (c *Client) StepLength(ctx context.Context) (time.Duration, error) {
	return getValue(ctx, c, "simulation.getDeltaT", simQuery(varDeltaT), readSeconds)
}

// MinExpectedNumber is the number of vehicles and persons in the network plus those still waiting to start. 0
// means every route file was read and every trip has ended: the scenario is over.
func (c *Client) MinExpectedNumber(ctx context.Context) (int, error) {
	return getValue(ctx, c, "simulation.getMinExpectedNumber", simQuery(varMinExpectedNumber), readInt)
}

// DepartedNumber is the number of vehicles that entered the network in the last step.
func (c *Client) DepartedNumber(ctx context.Context) (int, error) {
	return getValue(ctx, c, "simulation.getDepartedNumber", simQuery(varDepartedNumber), readInt)
}

// ArrivedNumber is the number of vehicles that reached their destination in the last step.
func (c *Client) ArrivedNumber(ctx context.Context) (int, error) {
	return getValue(ctx, c, "simulation.getArrivedNumber", simQuery(varArrivedNumber), readInt)
}
