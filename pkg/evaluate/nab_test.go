package evaluate

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestReadNAB(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, file, body string
		wantN            int
		check            func(t *testing.T, s NABSeries)
		errMsg           string
	}{
		{"speed", "speed_6005.csv", "timestamp,value\n2015-09-01 11:25:00,58\n2015-09-01 11:30:00,63\n", 2, func(t *testing.T, s NABSeries) {
			r := s.Readings[0]
			if !r.HasSpeed || math.Abs(r.SpeedKMH-58*1.609344) > 1e-9 || r.DetectorID != "speed_6005" || r.IntervalS != 60 || s.Name != "realTraffic/speed_6005.csv" {
				t.Fatalf("reading %+v series %q", r, s.Name)
			}
		}, ""},
		{"occupancy", "dir/occupancy_t4013.csv", "timestamp,value\n2015-09-01 11:30:00,13.56\n", 1, func(t *testing.T, s NABSeries) {
			if r := s.Readings[0]; !r.HasOccupancy || math.Abs(r.Occupancy-0.1356) > 1e-12 || !r.Start.Equal(time.Date(2015, 9, 1, 11, 30, 0, 0, time.UTC)) {
				t.Fatalf("reading %+v", r)
			}
		}, ""},
		{"travel time refused", "TravelTime_387.csv", "timestamp,value\n", 0, nil, "no reading field"},
		{"bad header", "speed_1.csv", "time,v\n", 0, nil, "speed_1.csv:1: header"},
		{"bad rows named by line", "speed_1.csv", "timestamp,value\n2015-09-01 11:25:00,x\nyesterday,3\n2015-09-01 11:35:00,60\n", 1, nil, "speed_1.csv:2: value \"x\""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := ReadNAB(strings.NewReader(tc.body), tc.file)
			if tc.errMsg != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errMsg) {
					t.Fatalf("err %v, want %q", err, tc.errMsg)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if len(s.Readings) != tc.wantN {
				t.Fatalf("%d readings, want %d", len(s.Readings), tc.wantN)
			}
			if tc.check != nil {
				tc.check(t, s)
			}
		})
	}
}

func TestNABCleanReport(t *testing.T) {
	t.Parallel()
	s, err := ReadNAB(strings.NewReader("timestamp,value\n2015-09-01 10:00:00,50\n2015-09-01 10:05:00,250\n2015-09-01 12:00:00,50\n"), "speed_9.csv")
	if err != nil {
		t.Fatal(err)
	}
	ws, err := ParseNABWindows(strings.NewReader(`{"realTraffic/speed_9.csv": [["2015-09-01 10:01:00.000000", "2015-09-01 11:00:00.000000"]]}`))
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Flags = true
	cfg.Train.Horizons = []time.Duration{time.Hour}
	e, err := New(NABTopology([]NABSeries{s}), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range s.Readings {
		if err := e.Reading(r); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := e.Finish()
	if err != nil {
		t.Fatal(err)
	}
	got := NABCleanReport([]NABSeries{s}, ws, rep.Flags)
	// 250 mph is 402 km/h, above the 200 km/h bound: rejected out_of_range, inside the window.
	if len(got) != 1 || got[0].Points != 3 || got[0].PointsInside != 1 || got[0].FlaggedInside != 1 || got[0].FlaggedOutside != 0 || got[0].ByReason["out_of_range"] != 1 {
		t.Fatalf("report %+v", got)
	}
}

func FuzzReadNAB(f *testing.F) {
	f.Add([]byte("timestamp,value\n2015-09-01 11:25:00,58\n"))
	f.Add([]byte("timestamp,value\n\"2015-09-01 11:25:00,58\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ReadNAB(bytes.NewReader(b), "speed_f.csv")
		var le *LineError
		if err != nil && !errors.As(err, &le) {
			t.Fatalf("error %v is not a LineError", err)
		}
		for _, r := range s.Readings {
			if !r.HasSpeed {
				t.Fatalf("reading %+v", r)
			}
		}
	})
}

func FuzzParseNABWindows(f *testing.F) {
	f.Add([]byte(`{"realTraffic/a.csv": [["2015-09-01 10:01:00.000000", "2015-09-01 11:00:00.000000"]]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ws, err := ParseNABWindows(bytes.NewReader(b))
		if err != nil {
			return
		}
		for _, list := range ws {
			for _, w := range list {
				if w.End.Before(w.Start) {
					t.Fatalf("window %v ends before it starts", w)
				}
			}
		}
	})
}
