package wire

import (
	"bytes"
	"compress/flate"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/greenwave-city/greenwave/pkg/clean"
	"github.com/greenwave-city/greenwave/pkg/features"
	"github.com/greenwave-city/greenwave/pkg/topology"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func stateTopo() topology.Intersection {
	return topology.Intersection{
		ID: "I-1", WeatherStation: "STN-1", WindowS: 300,
		Approaches: []topology.Approach{
			{ID: "N", Lanes: 2, SaturationFlowVPHPerLane: 1800, Detectors: []string{"N1", "N2"}, Upstream: []string{"I-1/E", "I-2/N"}},
			{ID: "E", Lanes: 1, SaturationFlowVPHPerLane: 1800, Detectors: []string{"E1"}},
		},
	}
}

// stateFixture is an intersection fed two days of one-minute readings with a daily cycle, some with their own
// ids, a stuck detector, and a reading held by the clock-jump rule: every part of the state is populated.
func stateFixture(t testing.TB) *clean.Intersection {
	return stateFixtureOf(t, 2*24*60)
}

// stateFixtureOf is stateFixture with the given number of minutes of readings.
func stateFixtureOf(t testing.TB, minutes int) *clean.Intersection {
	t.Helper()
	s, err := clean.NewIntersection(stateTopo(), clean.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	dets := map[string]string{"N1": "N", "N2": "N", "E1": "E"}
	order := []string{"N1", "N2", "E1"}
	for m := range minutes {
		at := t0.Add(time.Duration(m) * time.Minute)
		s.SetPosition(int64(m + 1))
		for i, d := range order {
			count := math.Round(10 + 8*math.Sin(2*math.Pi*float64(m)/1440+float64(i)))
			if d == "E1" && m > minutes-40 {
				count = 7 // stuck
			}
			r := clean.Reading{ID: fmt.Sprintf("%s@%d", d, at.Unix()), IntersectionID: "I-1", ApproachID: dets[d], DetectorID: d,
				Start: at, IntervalS: 60, Count: count, FlowVPH: count * 60}
			if m%7 == 0 {
				r.ID = fmt.Sprintf("gw-%s-%d", d, m)
			}
			if d != "E1" {
				r.Occupancy, r.HasOccupancy = math.Round(count*100/60)/100, true
				r.SpeedKMH, r.HasSpeed = 50-count, true
			}
			s.Add(r, nil)
		}
	}
	s.ForgetEmissionsThrough(int64(minutes - 60))
	far := t0.Add(time.Duration(minutes)*time.Minute + 48*time.Hour)
	s.Add(clean.Reading{ID: "N1@far", IntersectionID: "I-1", ApproachID: "N", DetectorID: "N1", Start: far, IntervalS: 60, Count: 3, FlowVPH: 180}, nil)
	return s
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes differ from the golden %d bytes", name, len(got), len(want))
	}
}

// TestCleanerStateGolden: the encoding of a cleaner state is byte-identical to the one captured before the
// state moved out of pkg/clean (and the migration of a JSON format 3 state gives the same format 4 bytes).
func TestCleanerStateGolden(t *testing.T) {
	t.Parallel()
	b, err := MarshalCleaner(stateFixture(t))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "cleaner-state.golden", b)

	legacy, err := os.ReadFile("testdata/state-format3.json")
	if err != nil {
		t.Fatal(err)
	}
	s, err := RestoreCleaner(stateTopo(), clean.DefaultConfig(), legacy)
	if err != nil {
		t.Fatal(err)
	}
	if b, err = MarshalCleaner(s); err != nil {
		t.Fatal(err)
	}
	golden(t, "cleaner-state-format3.golden", b)
}

// TestRestoreCleanerWithoutReplayMemory: a format 4 state written before the replay memory existed restores,
// with an empty memory, and equals the current fixture's state but for the memory.
func TestRestoreCleanerWithoutReplayMemory(t *testing.T) {
	t.Parallel()
	old, err := os.ReadFile("testdata/cleaner-state-without-replay-memory.bin")
	if err != nil {
		t.Fatal(err)
	}
	s, err := RestoreCleaner(stateTopo(), clean.DefaultConfig(), old)
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	got, want := s.State(), stateFixture(t).State()
	for i := range got.Detectors {
		if len(got.Detectors[i].ClosedStartsNs) != 0 {
			t.Fatalf("detector %d: replay memory %v from a state without one", i, got.Detectors[i].ClosedStartsNs)
		}
		want.Detectors[i].ClosedStartsNs, want.Detectors[i].ClosedHashes = nil, nil
	}
	// The state also predates the recent occupancy and speed history: it restores with every window absent.
	for i := range got.Approaches {
		for _, u := range got.Approaches[i].Recent {
			if u != clean.LagAbsent {
				t.Fatalf("approach %d: recent history from a state without one", i)
			}
		}
		want.Approaches[i].Recent = got.Approaches[i].Recent
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatal("restored state differs from the fixture's beyond the replay memory and the recent history")
	}
}

func TestRestoreCleanerRejects(t *testing.T) {
	t.Parallel()
	good, err := MarshalCleaner(stateFixtureOf(t, 60))
	if err != nil {
		t.Fatal(err)
	}
	oddLag := tamperState(t, good, func(m *greenwavev1.CleanerIntersectionState) { m.Approaches[0].Lag = m.Approaches[0].Lag[1:] })
	cases := []struct {
		name string
		b    []byte
	}{
		{"garbage", []byte("not a state")},
		{"empty", nil},
		{"empty JSON object", []byte("{}")},
		{"truncated", good[:len(good)/2]},
		{"odd lag history", oddLag},
		{"odd recent history", tamperState(t, good, func(m *greenwavev1.CleanerIntersectionState) {
			m.Approaches[0].Recent = m.Approaches[0].Recent[1:]
		})},
		{"short recent history", tamperState(t, good, func(m *greenwavev1.CleanerIntersectionState) {
			m.Approaches[0].Recent = m.Approaches[0].Recent[2:]
		})},
		{"short profile bitmap", tamperState(t, good, func(m *greenwavev1.CleanerIntersectionState) {
			m.Detectors[0].ProfileSeen = m.Detectors[0].ProfileSeen[1:]
		})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := RestoreCleaner(stateTopo(), clean.DefaultConfig(), tc.b); !errors.Is(err, clean.ErrBadState) {
				t.Fatalf("got %v, want ErrBadState", err)
			}
		})
	}
}

// TestRestoreCleanerWithoutRecent: a state written before the recent occupancy and speed history existed
// restores, knows no recent window, and continues.
func TestRestoreCleanerWithoutRecent(t *testing.T) {
	t.Parallel()
	good, err := MarshalCleaner(stateFixtureOf(t, 60))
	if err != nil {
		t.Fatal(err)
	}
	old := tamperState(t, good, func(m *greenwavev1.CleanerIntersectionState) {
		for _, a := range m.Approaches {
			a.Recent = nil
		}
	})
	s, err := RestoreCleaner(stateTopo(), clean.DefaultConfig(), old)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range s.State().Approaches {
		for _, u := range a.Recent {
			if u != clean.LagAbsent {
				t.Fatal("a state without recent history restored with a recent value")
			}
		}
	}
	continueRun(t, s)
}

// tamperState decodes an encoded state, changes the message and encodes it again.
func tamperState(t testing.TB, b []byte, f func(*greenwavev1.CleanerIntersectionState)) []byte {
	t.Helper()
	st, err := DecodeCleanerState(b)
	if err != nil {
		t.Fatal(err)
	}
	m := cleanerStateProto(st)
	f(m)
	raw, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestSpeed)
	if _, err := w.Write(raw); err != nil || w.Close() != nil {
		t.Fatal("compress", err)
	}
	return buf.Bytes()
}

// continueRun feeds a restored intersection 12 minutes of readings and its flush, and checks that every
// feature is finite.
func continueRun(t *testing.T, s *clean.Intersection) {
	t.Helper()
	t0 := time.Date(2026, 11, 2, 1, 0, 0, 0, time.UTC)
	var frames []features.Frame
	for m := range 12 {
		for i, d := range []string{"N1", "N2", "E1"} {
			at := t0.Add(time.Duration(m) * time.Minute)
			r := clean.Reading{ID: fmt.Sprintf("%s@%d", d, at.Unix()), IntersectionID: "I-1", ApproachID: d[:1], DetectorID: d,
				Start: at, IntervalS: 60, Count: float64(5 + i + m%3), FlowVPH: float64(5+i+m%3) * 60}
			frames = append(frames, s.Add(r, nil).Frames...)
		}
	}
	frames = append(frames, s.Flush(nil).Frames...)
	for _, f := range frames {
		for _, v := range f.Approaches {
			for i, x := range v.Values {
				if math.IsNaN(x) || math.IsInf(x, 0) {
					t.Fatalf("frame %s %s: feature %s = %v", f.WindowStart, v.ApproachID, f.Names[i], x)
				}
			}
		}
	}
}

// FuzzRestoreCleaner: any changelog bytes (compressed protobuf or a legacy JSON state) restore or fail with
// ErrBadState, and what restores continues without panics or non-finite features.
func FuzzRestoreCleaner(f *testing.F) {
	good, err := MarshalCleaner(stateFixtureOf(f, 12))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte("{}"))
	f.Add([]byte(`{"format":1,"intersection":"I-1","window_s":300}`))
	if legacy, err := os.ReadFile("testdata/state-format3.json"); err == nil {
		f.Add(legacy)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := RestoreCleaner(stateTopo(), clean.DefaultConfig(), b)
		if err != nil {
			if !errors.Is(err, clean.ErrBadState) {
				t.Fatalf("error %v does not wrap ErrBadState", err)
			}
			return
		}
		continueRun(t, s)
	})
}

// FuzzRestoreCleanerState fuzzes the uncompressed protobuf state (FuzzRestoreCleaner's inputs are compressed,
// which mutations rarely keep valid): whatever restores must continue without panics or non-finite features,
// and encode and restore again to the same state.
func FuzzRestoreCleanerState(f *testing.F) {
	good, err := proto.Marshal(cleanerStateProto(stateFixtureOf(f, 40).State()))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := unmarshalCleanerState(b)
		if err != nil {
			return
		}
		s, err := clean.RestoreIntersection(stateTopo(), clean.DefaultConfig(), st)
		if err != nil {
			if !errors.Is(err, clean.ErrBadState) {
				t.Fatalf("error %v does not wrap ErrBadState", err)
			}
			return
		}
		enc, err := MarshalCleaner(s)
		if err != nil {
			t.Fatal(err)
		}
		s2, err := RestoreCleaner(stateTopo(), clean.DefaultConfig(), enc)
		if err != nil {
			t.Fatalf("an accepted state does not restore again: %v", err)
		}
		if !reflect.DeepEqual(s.State(), s2.State()) {
			t.Fatal("state changed across encoding and restore")
		}
		continueRun(t, s)
	})
}

// BenchmarkMarshalCleaner measures a snapshot of an intersection with a full week of history.
func BenchmarkMarshalCleaner(b *testing.B) {
	s := stateFixtureOf(b, 7*24*60)
	var st []byte
	for b.Loop() {
		var err error
		if st, err = MarshalCleaner(s); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(st)), "state-bytes")
}
