package traci

import (
	"testing"
	"time"
)

// FuzzDecodeResponse feeds arbitrary bytes to every decoder of server answers: none may panic, and a failure
// must be ErrMalformed or a StatusError.
func FuzzDecodeResponse(f *testing.F) {
	logics := tlQuery(tlCompleteDefinition, "A0")
	f.Add(answerBytes(logics, encoded(func(e *encoder) {
		e.compound(1)
		encodeLogic(e, Logic{ProgramID: "gw", Type: LogicActuated, Phases: []Phase{
			{Duration: 30 * time.Second, State: "Gr", MinDur: 5 * time.Second, MaxDur: time.Minute, Next: []int{1}},
		}, Params: map[string]string{"max-gap": "3"}})
	})))
	f.Add(answerBytes(tlQuery(tlControlledLinks, "A0"), encoded(func(e *encoder) {
		e.u8(typeCompound)
		e.i32(3)
		e.typedInt(1)
		e.typedInt(1)
		e.typedStrings("in_0", "out_0", ":J_0_0")
	})))
	f.Add(statusBytes(cmdSetTrafficLight, 0xff, "The phase index 17 is not in the allowed range [0,3]."))
	f.Add(append(statusBytes(cmdSimStep, statusOK, ""), 0, 0, 0, 0))
	f.Add(answerBytes(query{cmdGetLaneArea, varLastStepVehicleNumber, "e2"}, encoded(func(e *encoder) { e.typedInt(4) })))

	f.Fuzz(func(t *testing.T, b []byte) {
		check := func(what string, err error) {
			t.Helper()
			if err == nil {
				return
			}
			if _, ok := err.(*StatusError); !ok && !isMalformed(err) {
				t.Fatalf("%s: error %v is neither ErrMalformed nor a StatusError", what, err)
			}
		}
		_, err := decodeValue(&decoder{b: b}, logics, readLogics)
		check("logics", err)
		_, err = decodeValue(&decoder{b: b}, tlQuery(tlControlledLinks, "A0"), readLinks)
		check("links", err)
		_, err = decodeValue(&decoder{b: b}, tlQuery(tlControlledLanes, "A0"), readStrings)
		check("lanes", err)
		_, err = decodeValue(&decoder{b: b}, simQuery(varTime), readSeconds)
		check("time", err)
		_, err = decodeDetectors(&decoder{b: b}, "lanearea", cmdGetLaneArea, []string{"e2", "x"})
		check("detectors", err)
		_, err = decodeVersion(&decoder{b: b})
		check("version", err)
		check("step", decodeStep(&decoder{b: b}))
		// The value readers alone, as if the framing had been right.
		for _, read := range []func(*decoder){
			func(d *decoder) { readLogics(d) }, func(d *decoder) { readLinks(d) }, func(d *decoder) { readStrings(d) },
		} {
			d := &decoder{b: b}
			read(d)
			check("value", d.err)
		}
	})
}
