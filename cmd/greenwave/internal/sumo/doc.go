// Package sumo runs `greenwave sumo`: a SUMO scenario under TraCI (internal/traci) with one controller for every
// traffic light, scored from SUMO's trip information.
//
// With SUMO's own controllers (static, actuated, delay_based) it only loads a program per traffic light and
// steps the simulation. With greenwave it closes the loop: it derives the topology from the network
// (topology.ImportSUMO), runs the whole stack as `greenwave dev --sample=false` does (internal/dev), and plays
// both field roles in lock-step on simulated time: at the end of every window it sends the window's readings of
// an induction loop on every approach lane to the collector (internal/gateway), waits for the plans of the window
// those readings closed (WatchPlans), validates each (signal.Validate) and installs it as a static program at its
// traffic light's next cycle boundary. With --record (any controller) it also writes the loops' readings, the
// topology and the links between detectors for offline evaluation (record.go). docs/sumo.md describes the
// choices and the measured results.
package sumo
