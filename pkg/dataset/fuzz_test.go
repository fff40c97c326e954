package dataset_test

import (
	"errors"
	"io"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/greenwave-city/greenwave/pkg/dataset"
)

// checkRecords reads every record of input and fails on any record outside its format's basic types: a reading
// needs a detector, a start, a positive interval and finite numbers; a weather observation a station, a time and
// finite numbers. A header error is fine; a panic or a non-EOF error from a strings.Reader is not.
func checkRecords(t *testing.T, open func(io.Reader) (*dataset.Reader, error), input string) {
	r, err := open(strings.NewReader(input))
	if err != nil {
		return
	}
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	n, lastLine := 0, 0
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		n++
		if rec.Line < 1 {
			t.Fatalf("record without a line: %+v", rec)
		}
		lastLine = max(lastLine, rec.Line)
		switch {
		case rec.Reading != nil && rec.Weather == nil:
			x := rec.Reading
			if x.DetectorID == "" || x.Start.IsZero() || x.IntervalS <= 0 || x.IntervalS > math.MaxUint32 ||
				!finite(x.Count) || !finite(x.FlowVPH) || !finite(x.Occupancy) || !finite(x.SpeedKMH) ||
				(!x.HasOccupancy && x.Occupancy != 0) || (!x.HasSpeed && x.SpeedKMH != 0) || x.Start.Location().String() != "UTC" ||
				(x.NoCount && (x.Count != 0 || x.FlowVPH != 0 || (!x.HasOccupancy && !x.HasSpeed))) {
				t.Fatalf("reading out of range: %+v", x)
			}
		case rec.Weather != nil && rec.Reading == nil:
			w := rec.Weather
			if w.StationID == "" || w.ObservedAt.IsZero() || !finite(w.TemperatureC) || !finite(w.PrecipitationMMH) ||
				!finite(w.SnowMMH) || !finite(w.CloudCoverRatio) || !finite(w.VisibilityM) {
				t.Fatalf("weather out of range: %+v", w)
			}
		default:
			t.Fatalf("record with neither or both kinds: %+v", rec)
		}
	}
	s := r.Stats()
	if s.Readings+s.Weather != n {
		t.Fatalf("stats %+v count %d records, read %d", s, s.Readings+s.Weather, n)
	}
	total := 0
	for _, c := range s.Problems {
		total += c
	}
	if kept := len(r.Problems()); kept != min(total, dataset.MaxRetainedProblems) {
		t.Fatalf("%d problems kept of %d counted", kept, total)
	}
}

func seed(f *testing.F, file string) {
	if b, err := os.ReadFile(file); err == nil {
		f.Add(string(b))
	}
}

func FuzzReadingsCSV(f *testing.F) {
	f.Add("observed_at,intersection_id,approach_id,detector_id,interval_s,count,occupancy_ratio,speed_kmh\n" +
		"2026-11-30T07:55:00Z,I-100,N,I-100-N1,300,42,0.18,38\n2026-11-30T08:00:00+01:00,,,I-100-N2,60,3,,\n")
	f.Add("count,detector_id,interval_s,observed_at,x\r\n1e308,D,1,2026-11-30T07:55:00.5Z,\"a\"\"b\"\r\n-0,D,4294967295,0001-01-01T00:00:00Z,\n")
	f.Add("observed_at,detector_id,interval_s,count\n2026-11-30T07:55:00Z,\"D\n1\",60,Inf\n\"")
	f.Add("observed_at,detector_id,interval_s,count,occupancy_ratio,speed_kmh\n2026-11-30T07:55:00Z,S,300,,,88\n" +
		"2026-11-30T07:55:00Z,S,300,,0.1,\n2026-11-30T07:55:00Z,S,300,,,\n")
	f.Fuzz(func(t *testing.T, input string) {
		checkRecords(t, func(r io.Reader) (*dataset.Reader, error) {
			return dataset.Open(dataset.FormatCSV, r, "f.csv", dataset.Options{})
		}, input)
		checkRecords(t, func(r io.Reader) (*dataset.Reader, error) { return dataset.OpenWeather(r, "w.csv", dataset.Options{}) }, input)
	})
}

func FuzzMetro(f *testing.F) {
	seed(f, "testdata/metro_sample.csv")
	f.Add("holiday,temp,rain_1h,snow_1h,clouds_all,weather_main,weather_description,date_time,traffic_volume\r\n" +
		"None,0.0,9831.3,,,,,2017-03-12 02:00:00,1\r\nNone,1,1,1,1,a,b,2017-03-12 03:00:00,-1\r\nNone,1,1,1,1,a,b,2017-03-12 03:00:00,2\r\n")
	f.Fuzz(func(t *testing.T, input string) {
		checkRecords(t, func(r io.Reader) (*dataset.Reader, error) {
			return dataset.Open(dataset.FormatMetro, r, "m.csv", dataset.Options{})
		}, input)
	})
}

func FuzzSCATS(f *testing.F) {
	seed(f, "testdata/scats_sample.csv")
	f.Add("SCATS Number,Location,Date," + strings.Join(slotNames(), ",") + "\n" +
		"0970,A N of B,29/10/2006," + strings.Repeat("1,", 95) + "1\n" +
		"0970,A N of B,29/10/2006," + strings.Repeat(",", 95) + "\n")
	f.Fuzz(func(t *testing.T, input string) {
		checkRecords(t, func(r io.Reader) (*dataset.Reader, error) {
			return dataset.Open(dataset.FormatSCATS, r, "s.csv", dataset.Options{})
		}, input)
	})
}

func slotNames() []string {
	out := make([]string, dataset.SCATSSlots)
	for k := range out {
		out[k] = "V" + string(rune('0'+k/10)) + string(rune('0'+k%10))
	}
	return out
}
