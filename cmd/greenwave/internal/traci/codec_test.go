package traci

import (
	"bytes"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// statusBytes is a status command as SUMO writes it.
func statusBytes(cmd, status byte, msg string) []byte {
	var e encoder
	e.u8(status)
	e.str(msg)
	return appendCommand(nil, cmd, e.b)
}

// answerBytes is SUMO's whole answer to a get command: status OK, then the result command carrying value
// (type byte first).
func answerBytes(q query, value []byte) []byte {
	var e encoder
	e.u8(q.varID)
	e.str(q.objID)
	e.b = append(e.b, value...)
	return appendCommand(statusBytes(q.cmd, statusOK, ""), q.cmd+responseOffset, e.b)
}

func encoded(write func(*encoder)) []byte {
	var e encoder
	write(&e)
	return e.b
}

func TestAppendCommand(t *testing.T) {
	t.Parallel()
	long := bytes.Repeat([]byte{7}, 300)
	tests := []struct {
		name    string
		content []byte
		head    []byte
	}{
		{"empty", nil, []byte{2, 0x7f}},
		{"short", []byte{1, 2, 3}, []byte{5, 0x7f}},
		{"longest short", bytes.Repeat([]byte{7}, 253), []byte{255, 0x7f}},
		{"extended", long, []byte{0, 0, 0, 0x01, 0x32, 0x7f}}, // 306 = 1 + 4 + 1 + 300
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := appendCommand(nil, 0x7f, tc.content)
			if !bytes.HasPrefix(got, tc.head) || !bytes.Equal(got[len(tc.head):], tc.content) {
				t.Fatalf("appendCommand = % x..., want head % x", got[:min(len(got), 8)], tc.head)
			}
			d := &decoder{b: got}
			if n := d.length(); d.err != nil || n != len(tc.content)+1 {
				t.Fatalf("length() = %d, %v; want %d", n, d.err, len(tc.content)+1)
			}
		})
	}
}

func TestLogicRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		logics []Logic
	}{
		{"none", []Logic{}},
		{"static", []Logic{{ProgramID: "0", Type: LogicStatic, CurrentPhase: 2, Phases: []Phase{
			{Duration: 42 * time.Second, State: "GGrr", MinDur: 42 * time.Second, MaxDur: 42 * time.Second},
			{Duration: 3 * time.Second, State: "yyrr", MinDur: 3 * time.Second, MaxDur: 3 * time.Second},
		}}}},
		{"actuated with next, names and parameters", []Logic{
			{ProgramID: "0", Phases: []Phase{{Duration: time.Second, State: "G"}}},
			{ProgramID: "gw", Type: LogicActuated, CurrentPhase: 1, Phases: []Phase{
				{Duration: 31500 * time.Millisecond, State: "Gr", MinDur: 5 * time.Second, MaxDur: time.Minute,
					Next: []int{1, 0}, Name: "main"},
				{Duration: 4 * time.Second, State: "yr", MinDur: -time.Second, MaxDur: -time.Second, Name: "ÿ"},
			}, Params: map[string]string{"max-gap": "3", "detector-gap": "2.0"}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			q := tlQuery(tlCompleteDefinition, "A0")
			value := encoded(func(e *encoder) {
				e.compound(len(tc.logics)) // the answer's type and count of programs
				for _, l := range tc.logics {
					encodeLogic(e, l)
				}
			})
			got, err := decodeValue(&decoder{b: answerBytes(q, value)}, q, readLogics)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.logics) {
				t.Fatalf("decoded\n%+v\nwant\n%+v", got, tc.logics)
			}
		})
	}
}

func TestReadLinks(t *testing.T) {
	t.Parallel()
	// As SUMO writes getControlledLinks: compound, item count, signals, then per signal its links.
	value := encoded(func(e *encoder) {
		e.u8(typeCompound)
		e.i32(6)
		e.typedInt(2)
		e.typedInt(1)
		e.typedStrings("in_0", "out_0", ":J_0_0")
		e.typedInt(2)
		e.typedStrings("in_0", "left_0", ":J_1_0")
		e.typedStrings("in_1", "left_0", ":J_1_1")
	})
	want := [][]Link{
		{{From: "in_0", To: "out_0", Via: ":J_0_0"}},
		{{From: "in_0", To: "left_0", Via: ":J_1_0"}, {From: "in_1", To: "left_0", Via: ":J_1_1"}},
	}
	d := &decoder{b: value}
	if got := readLinks(d); d.err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("readLinks = %+v, %v; want %+v", got, d.err, want)
	}
}

func TestDecodeDetectors(t *testing.T) {
	t.Parallel()
	var resp []byte
	for _, v := range []struct {
		varID byte
		value []byte
	}{
		{varLastStepVehicleNumber, encoded(func(e *encoder) { e.typedInt(2) })},
		{varLastStepMeanSpeed, encoded(func(e *encoder) { e.u8(typeDouble); e.f64(11.5) })},
		{varLastStepOccupancy, encoded(func(e *encoder) { e.u8(typeDouble); e.f64(37.25) })},
	} {
		resp = append(resp, answerBytes(query{cmdGetInductionLoop, v.varID, "e1"}, v.value)...)
	}
	for range detectorVars {
		resp = append(resp, statusBytes(cmdGetInductionLoop, 0xff, "Induction loop 'nope' is not known")...)
	}

	tests := []struct {
		name    string
		ids     []string
		want    []DetectorReading
		wantErr string
	}{
		{"known", []string{"e1"}, []DetectorReading{{ID: "e1", Vehicles: 2, MeanSpeedMPS: 11.5, OccupancyPct: 37.25}}, ""},
		{"one unknown", []string{"e1", "nope"}, nil,
			`traci inductionloop.getLastStepVehicleNumber "nope": sumo answered error to command 0xa0: Induction loop 'nope' is not known`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := decodeDetectors(&decoder{b: resp}, "inductionloop", cmdGetInductionLoop, tc.ids)
			if tc.wantErr != "" {
				var se *StatusError
				if err == nil || err.Error() != tc.wantErr || !errors.As(err, &se) {
					t.Fatalf("error %v, want %q as a StatusError", err, tc.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("decodeDetectors = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	q := tlQuery(tlCurrentPhase, "A0")
	intValue := encoded(func(e *encoder) { e.typedInt(3) })
	tests := []struct {
		name      string
		resp      []byte
		malformed bool   // ErrMalformed
		status    string // a StatusError with this message
	}{
		{"empty", nil, true, ""},
		{"status only", statusBytes(q.cmd, statusOK, ""), true, ""},
		{"refused", statusBytes(q.cmd, 0xff, "Traffic light 'A0' is not known"), false, "Traffic light 'A0' is not known"},
		{"not implemented", statusBytes(q.cmd, 0x01, "nope"), false, "nope"},
		{"message under OK", statusBytes(q.cmd, statusOK, "warning"), false, "warning"},
		{"status of another command", statusBytes(cmdGetSimulation, statusOK, ""), true, ""},
		{"answer for another object", answerBytes(tlQuery(tlCurrentPhase, "B1"), intValue), true, ""},
		{"answer for another variable", answerBytes(tlQuery(tlCurrentProgram, "A0"), intValue), true, ""},
		{"wrong type", answerBytes(q, encoded(func(e *encoder) { e.typedStr("3") })), true, ""},
		{"truncated value", answerBytes(q, intValue[:3]), true, ""},
		{"truncated message", answerBytes(q, intValue)[:12], true, ""},
		{"string longer than message", append(statusBytes(q.cmd, statusOK, "")[:3], 0x7f, 0, 0, 0), true, ""},
		{"negative string length", append(statusBytes(q.cmd, statusOK, "")[:3], 0xff, 0xff, 0xff, 0xff), true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := decodeValue(&decoder{b: tc.resp}, q, readInt)
			var se *StatusError
			switch {
			case tc.malformed && !errors.Is(err, ErrMalformed):
				t.Fatalf("error %v, want ErrMalformed", err)
			case tc.status != "" && (!errors.As(err, &se) || se.Message != tc.status):
				t.Fatalf("error %v, want a StatusError saying %q", err, tc.status)
			}
		})
	}
}

func TestDecodeHostileSizes(t *testing.T) {
	t.Parallel()
	huge := []byte{0x7f, 0xff, 0xff, 0xff}
	tests := []struct {
		name string
		read func(*decoder)
		b    []byte
	}{
		{"string list count", func(d *decoder) { readStrings(d) }, append([]byte{typeStringList}, huge...)},
		{"logic count", func(d *decoder) { readLogics(d) }, append([]byte{typeCompound}, huge...)},
		{"phase count", func(d *decoder) { readLogics(d) }, encoded(func(e *encoder) {
			e.u8(typeCompound)
			e.i32(1)
			e.compound(5)
			e.typedStr("0")
			e.typedInt(0)
			e.typedInt(0)
			e.u8(typeCompound)
			e.b = append(e.b, huge...)
		})},
		{"signal count", func(d *decoder) { readLinks(d) }, encoded(func(e *encoder) {
			e.u8(typeCompound)
			e.i32(1)
			e.u8(typeInteger)
			e.b = append(e.b, huge...)
		})},
		{"duration out of range", func(d *decoder) { readSeconds(d) }, encoded(func(e *encoder) { e.u8(typeDouble); e.f64(1e300) })},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := &decoder{b: tc.b}
			tc.read(d)
			if !errors.Is(d.err, ErrMalformed) || !strings.Contains(d.err.Error(), "at byte") {
				t.Fatalf("error %v, want ErrMalformed with its position", d.err)
			}
		})
	}
}

func TestDecodeVersionAndStep(t *testing.T) {
	t.Parallel()
	version := appendCommand(statusBytes(cmdGetVersion, statusOK, ""), cmdGetVersion,
		encoded(func(e *encoder) { e.i32(20); e.str("SUMO 1.15.0") }))
	if v, err := decodeVersion(&decoder{b: version}); err != nil || v != (Version{API: 20, Software: "SUMO 1.15.0"}) {
		t.Fatalf("decodeVersion = %+v, %v", v, err)
	}
	step := append(statusBytes(cmdSimStep, statusOK, ""), 0, 0, 0, 0)
	if err := decodeStep(&decoder{b: step}); err != nil {
		t.Fatalf("decodeStep: %v", err)
	}
	if err := decodeStep(&decoder{b: step[:len(step)-1]}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("decodeStep of a truncated answer: %v, want ErrMalformed", err)
	}
}

// isMalformed unwraps joined errors too: decodeDetectors joins one error per detector.
func isMalformed(err error) bool {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if !isMalformed(e) {
				var se *StatusError
				if !errors.As(e, &se) {
					return false
				}
			}
		}
		return true
	}
	return errors.Is(err, ErrMalformed)
}

func TestCheckLogic(t *testing.T) {
	t.Parallel()
	ok := Logic{ProgramID: "gw", Phases: []Phase{
		{Duration: 30 * time.Second, State: "Gr", Next: []int{1}},
		{Duration: 3 * time.Second, State: "yr"},
	}}
	with := func(change func(l *Logic)) Logic {
		l := ok
		l.Phases = slices.Clone(ok.Phases)
		change(&l)
		return l
	}
	tests := []struct {
		name  string
		logic Logic
		want  string // "" for a valid program
	}{
		{"valid", ok, ""},
		{"no phases", Logic{ProgramID: "gw"}, "no phases"},
		{"current phase past the end", with(func(l *Logic) { l.CurrentPhase = 2 }), "current phase 2 of 2"},
		{"negative current phase", with(func(l *Logic) { l.CurrentPhase = -1 }), "current phase -1 of 2"},
		{"short state", with(func(l *Logic) { l.Phases[1].State = "y" }), "phase 1 has 1 signals, the traffic light 2"},
		{"zero duration", with(func(l *Logic) { l.Phases[0].Duration = 0 }), "phase 0 lasts 0s"},
		{"unknown successor", with(func(l *Logic) { l.Phases[0].Next = []int{5} }), "phase 0 is followed by phase 5 of 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := checkLogic(tc.logic, 2)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidLogic) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("checkLogic: %v, want ErrInvalidLogic saying %q", err, tc.want)
			}
		})
	}
}
