// Package traci is a small client for TraCI, the TCP protocol by which a program drives the SUMO traffic
// simulator step by step: it advances simulated time, reads detectors and reads and rewrites traffic-light
// programs. It is what `greenwave sumo` (issue 13) uses to play a field gateway and a field controller against a
// simulation.
//
// # Why hand-written
//
// SUMO ships clients for Python, C++ (libtraci) and Java; no Go client is kept up to date, and binding libtraci
// through cgo would tie the build to SUMO's headers. The part of TraCI Greenwave needs is small and documented,
// so it is written here against SUMO's own Python client (tools/traci in SUMO_HOME: constants.py, connection.py,
// storage.py and the domain modules) as the reference, and tested against a real sumo process.
//
// # What it covers
//
// The subset of TraCI API 20 (SUMO 1.15) that a gateway and a signal controller need, named after the Python
// client's functions in errors:
//
//   - control: getVersion, simulationStep(targetTime), close;
//   - simulation: time, step length, minimum expected number of vehicles, departed and arrived per step;
//   - induction loops (E1) and lane-area detectors (E2): id lists, and the last step's vehicle number, mean
//     speed and occupancy, read for many detectors in one round trip. SUMO 1.15 has no interval variants of
//     these over TraCI (they came later); a caller that wants a window sums the steps;
//   - traffic lights: id list, current phase, program, phase duration and next switch; every program's logic
//     (getAllProgramLogics, formerly getCompleteRedYellowGreenDefinition) and setProgramLogic; setProgram,
//     setPhase, setPhaseDuration; controlled lanes and links.
//
// No subscriptions, no vehicle commands, one client per simulation.
//
// # Protocol in brief
//
// A message is a four-byte big-endian length (counting itself) followed by commands; a command is a length byte
// (or 0 and a four-byte length), its id and content. SUMO answers every command with a status (id, result,
// message), followed for a get command by a result command (id+0x10, variable, object id, typed value). A
// refused command (StatusError, SUMO's message included) leaves the connection usable; an I/O failure or a
// cancelled ctx does not (ErrClosed), since the stream is then out of step. Responses are decoded without trust:
// malformed bytes give ErrMalformed, never a panic (FuzzDecodeResponse).
//
// # Process
//
// Start runs sumo as a child listening on a free loopback port, in its own process group and with a
// parent-death signal on Linux, and waits (bounded) until it accepts the connection. Close sends close, waits a
// few seconds for sumo to exit and kills the group otherwise: no sumo process outlives the client or the
// program.
package traci
