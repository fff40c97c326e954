package dataset_test

import (
	"errors"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/greenwave-city/greenwave/pkg/clean"
	"github.com/greenwave-city/greenwave/pkg/dataset"
	"github.com/greenwave-city/greenwave/pkg/topology"
)

// readAll returns every record and the reader's problems.
func readAll(t *testing.T, format, input string) ([]dataset.Record, []dataset.Problem, dataset.Stats) {
	t.Helper()
	var seen []dataset.Problem
	r, err := dataset.Open(format, strings.NewReader(input), "in.csv", dataset.Options{OnProblem: func(p dataset.Problem) { seen = append(seen, p) }})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	recs := drain(t, r)
	if !reflect.DeepEqual(seen, r.Problems()) {
		t.Errorf("OnProblem saw %v, Problems() %v", seen, r.Problems())
	}
	return recs, r.Problems(), r.Stats()
}

func drain(t *testing.T, src dataset.Source) []dataset.Record {
	t.Helper()
	var recs []dataset.Record
	for {
		rec, err := src.Next()
		if errors.Is(err, io.EOF) {
			return recs
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		recs = append(recs, rec)
	}
}

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

// problemLines renders problems as "line field reason" for compact comparisons.
func problemLines(ps []dataset.Problem) []string {
	out := []string{}
	for _, p := range ps {
		parts := []string{strconv.Itoa(p.Line)}
		if p.Field != "" {
			parts = append(parts, p.Field)
		}
		out = append(out, strings.Join(append(parts, string(p.Reason)), " "))
	}
	return out
}

func TestReadingsCSV(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		input    string
		want     []clean.Reading
		problems []string
	}{
		{
			name: "canonical order with empty optionals",
			input: "observed_at,intersection_id,approach_id,detector_id,interval_s,count,occupancy_ratio,speed_kmh\n" +
				"2026-11-30T07:55:00Z,I-100,N,I-100-N1,300,42,0.18,38\n" +
				"2026-11-30T08:00:00+01:00,,,I-100-N2,60,3,,\n",
			want: []clean.Reading{
				{IntersectionID: "I-100", ApproachID: "N", DetectorID: "I-100-N1", Start: ts("2026-11-30T07:55:00Z"), IntervalS: 300, Count: 42, FlowVPH: 504,
					Occupancy: 0.18, HasOccupancy: true, SpeedKMH: 38, HasSpeed: true},
				{DetectorID: "I-100-N2", Start: ts("2026-11-30T07:00:00Z"), IntervalS: 60, Count: 3, FlowVPH: 180},
			},
			problems: []string{},
		},
		{
			name: "any column order, extra columns, BOM and CRLF",
			input: "\ufeffnote,count,detector_id,interval_s,observed_at\r\n" +
				"hello,10,D1,900,2006-10-01T00:00:00+10:00\r\n",
			want:     []clean.Reading{{DetectorID: "D1", Start: ts("2006-09-30T14:00:00Z"), IntervalS: 900, Count: 10, FlowVPH: 40}},
			problems: []string{},
		},
		{
			name: "impossible values pass through",
			input: "observed_at,detector_id,interval_s,count,occupancy_ratio,speed_kmh\n" +
				"2026-11-30T07:55:00Z,D1,7200,-5,1.5,900\n",
			want: []clean.Reading{{DetectorID: "D1", Start: ts("2026-11-30T07:55:00Z"), IntervalS: 7200, Count: -5, FlowVPH: -2.5,
				Occupancy: 1.5, HasOccupancy: true, SpeedKMH: 900, HasSpeed: true}},
			problems: []string{},
		},
		{
			name: "bad rows are skipped with their line",
			input: "observed_at,detector_id,interval_s,count,speed_kmh\n" +
				"2026-11-30 07:55,D1,60,1,\n" + // 2 bad time
				"2026-11-30T07:55:00Z,,60,1,\n" + // 3 missing detector
				"2026-11-30T07:55:00Z,D1,0,1,\n" + // 4 zero interval
				"2026-11-30T07:55:00Z,D1,60,NaN,\n" + // 5 NaN count
				"2026-11-30T07:55:00Z,D1,60,,\n" + // 6 empty count
				"2026-11-30T07:55:00Z,D 1,60,1,\n" + // 7 space in id
				"2026-11-30T07:55:00Z,D1,60\n" + // 8 short row
				"2026-11-30T07:55:00Z,D1,60,1,fast\n" + // 9 bad speed
				"2026-11-30T07:55:00Z,\"D1,60,1,\n" + // 10 unterminated quote swallows the rest
				"2026-11-30T08:00:00Z,D1,60,1,\n",
			problems: []string{"2 observed_at bad_time", "3 detector_id missing_value", "4 interval_s bad_number", "5 count bad_number",
				"6 count missing_value", "7 detector_id bad_id", "8 short_row", "9 speed_kmh bad_number", "10 malformed_csv"},
		},
		{
			name: "speed- and occupancy-only rows have no count; a row with none of the three is missing",
			input: "observed_at,detector_id,interval_s,count,occupancy_ratio,speed_kmh\n" +
				"2026-11-30T07:55:00Z,S1,300,,,88.5\n" +
				"2026-11-30T07:55:00Z,S2,300,,0.12,\n" +
				"2026-11-30T07:55:00Z,S3,300,,,\n" + // 4 nothing measured
				"2026-11-30T07:55:00Z,S4,300,0,,\n",
			want: []clean.Reading{
				{DetectorID: "S1", Start: ts("2026-11-30T07:55:00Z"), IntervalS: 300, NoCount: true, SpeedKMH: 88.5, HasSpeed: true},
				{DetectorID: "S2", Start: ts("2026-11-30T07:55:00Z"), IntervalS: 300, NoCount: true, Occupancy: 0.12, HasOccupancy: true},
				{DetectorID: "S4", Start: ts("2026-11-30T07:55:00Z"), IntervalS: 300},
			},
			problems: []string{"4 count missing_value"},
		},
		{
			name: "speed stations without a count column",
			input: "observed_at,detector_id,interval_s,speed_kmh\n" +
				"2026-11-30T07:55:00Z,S1,300,64\n",
			want:     []clean.Reading{{DetectorID: "S1", Start: ts("2026-11-30T07:55:00Z"), IntervalS: 300, NoCount: true, SpeedKMH: 64, HasSpeed: true}},
			problems: []string{},
		},
		{
			name: "multi-line quoted field keeps line numbers",
			input: "observed_at,detector_id,interval_s,count,comment\n" +
				"2026-11-30T07:55:00Z,D1,60,1,\"two\nlines\"\n" +
				"2026-11-30T07:56:00Z,D1,60,x,\n",
			want:     []clean.Reading{{DetectorID: "D1", Start: ts("2026-11-30T07:55:00Z"), IntervalS: 60, Count: 1, FlowVPH: 60}},
			problems: []string{"4 count bad_number"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			recs, problems, stats := readAll(t, dataset.FormatCSV, tc.input)
			var got []clean.Reading
			for _, r := range recs {
				if r.Reading == nil || r.Weather != nil {
					t.Fatalf("record %+v is not a reading", r)
				}
				got = append(got, *r.Reading)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("readings:\n got %+v\nwant %+v", got, tc.want)
			}
			if gotP := problemLines(problems); !reflect.DeepEqual(gotP, tc.problems) {
				t.Errorf("problems: got %q, want %q (%v)", gotP, tc.problems, problems)
			}
			if stats.Readings != len(tc.want) || stats.SkippedRecords != len(tc.problems) {
				t.Errorf("stats %+v: want %d readings, %d skipped", stats, len(tc.want), len(tc.problems))
			}
		})
	}
}

func TestHeaderErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, format, input, want string
	}{
		{"csv missing columns", dataset.FormatCSV, "observed_at,detector\n", `in.csv:1: header lacks column(s) ["detector_id" "interval_s" "count"] (or any of ["occupancy_ratio" "speed_kmh"]: a reading needs a measured quantity)`},
		{"csv duplicate column", dataset.FormatCSV, "observed_at,detector_id,interval_s,count,count\n", `in.csv:1: column "count" appears twice`},
		{"csv empty", dataset.FormatCSV, "", "open in.csv: empty file: no header row"},
		{"metro given canonical csv", dataset.FormatMetro, "observed_at,detector_id,interval_s,count\n", `in.csv:1: header lacks column(s) ["temp" "rain_1h" "snow_1h" "clouds_all" "weather_main" "date_time" "traffic_volume"]`},
		{"scats without header", dataset.FormatSCATS, "a\nb\nc\nd\ne\nf\n", `in.csv:5: no header row naming the column "SCATS Number" in the first 5 lines`},
		{"scats missing slot", dataset.FormatSCATS, "SCATS Number,Location,Date,V00\n", `in.csv:1: header lacks column(s) ["V01"`},
		{"unknown format", "xml", "", `open in.csv: unknown format "xml"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := dataset.Open(tc.format, strings.NewReader(tc.input), "in.csv", dataset.Options{})
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("Open: got %v, want prefix %q", err, tc.want)
			}
		})
	}
	if _, err := dataset.OpenWeather(strings.NewReader("observed_at\n"), "w.csv", dataset.Options{}); err == nil ||
		err.Error() != `w.csv:1: header lacks column(s) ["station_id"]` {
		t.Errorf("OpenWeather: %v", err)
	}
}

func TestWeatherCSV(t *testing.T) {
	t.Parallel()
	input := "observed_at,station_id,temperature_c,precipitation_mm_h,snow_mm_h,cloud_cover_ratio,visibility_m,condition\n" +
		"2026-11-30T07:00:00Z,STN-1,-3.5,0.2,,0.75,9000,Snow\n" +
		"2026-11-30T08:00:00Z,STN-1,,,,,,\n" +
		"2026-11-30T09:00:00Z,,1,,,,,\n" +
		"2026-11-30T10:00:00Z,STN-1,warm,,,,,\n"
	r, err := dataset.OpenWeather(strings.NewReader(input), "w.csv", dataset.Options{})
	if err != nil {
		t.Fatal(err)
	}
	recs := drain(t, r)
	want := []clean.Weather{
		{StationID: "STN-1", ObservedAt: ts("2026-11-30T07:00:00Z"), TemperatureC: -3.5, HasTemperature: true, PrecipitationMMH: 0.2,
			HasPrecipitation: true, CloudCoverRatio: 0.75, HasCloudCover: true, VisibilityM: 9000, HasVisibility: true, Condition: "Snow"},
		{StationID: "STN-1", ObservedAt: ts("2026-11-30T08:00:00Z")},
	}
	var got []clean.Weather
	for _, rec := range recs {
		got = append(got, *rec.Weather)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if p := problemLines(r.Problems()); !reflect.DeepEqual(p, []string{"4 station_id missing_value", "5 temperature_c bad_number"}) {
		t.Errorf("problems %q", p)
	}
	if s := r.Problems()[1].String(); s != `w.csv:5: temperature_c: "warm" is not a finite number (bad_number)` {
		t.Errorf("Problem.String() = %q", s)
	}
}

func TestMetroSample(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("testdata/metro_sample.csv")
	if err != nil {
		t.Fatal(err)
	}
	recs, problems, stats := readAll(t, dataset.FormatMetro, string(b))
	if len(problems) != 0 {
		t.Errorf("problems: %v", problems)
	}
	if stats.Rows != 33 || stats.Readings != 27 || stats.Weather != 27 || stats.MergedRows != 6 {
		t.Errorf("stats %+v: want 33 rows, 27 readings, 27 weather, 6 merged", stats)
	}
	// Every hour once, reading then weather, in time order.
	for i := 0; i+1 < len(recs); i += 2 {
		r, w := recs[i].Reading, recs[i+1].Weather
		if r == nil || w == nil || !r.Start.Equal(w.ObservedAt) {
			t.Fatalf("records %d,%d: want the reading and weather of one hour, got %+v %+v", i, i+1, recs[i], recs[i+1])
		}
		if i > 0 && !recs[i-2].Reading.Start.Before(r.Start) {
			t.Errorf("hour %s not after %s", r.Start, recs[i-2].Reading.Start)
		}
	}
	first := recs[0]
	wantR := clean.Reading{IntersectionID: dataset.MetroIntersectionID, ApproachID: dataset.MetroApproachID, DetectorID: dataset.MetroDetectorID,
		Start: ts("2012-10-02T14:00:00Z"), IntervalS: 3600, Count: 5545, FlowVPH: 5545} // 09:00 CDT
	if !reflect.DeepEqual(*first.Reading, wantR) || first.Line != 2 {
		t.Errorf("first reading %+v line %d, want %+v line 2", *first.Reading, first.Line, wantR)
	}
	wantW := clean.Weather{StationID: dataset.MetroStationID, ObservedAt: wantR.Start, TemperatureC: 15.13, HasTemperature: true,
		HasPrecipitation: true, HasSnow: true, CloudCoverRatio: 0.4, HasCloudCover: true, Condition: "Clouds"}
	if !reflect.DeepEqual(*recs[1].Weather, wantW) {
		t.Errorf("first weather %+v, want %+v", *recs[1].Weather, wantW)
	}
	byTime := map[time.Time]*clean.Weather{}
	for _, rec := range recs {
		if rec.Weather != nil {
			byTime[rec.Weather.ObservedAt] = rec.Weather
		}
	}
	// Impossible values pass through in canonical units.
	if w := byTime[ts("2014-01-31T09:00:00Z")]; w == nil || w.TemperatureC != -273.15 {
		t.Errorf("0 K hour: %+v", w)
	}
	if w := byTime[ts("2016-07-11T22:00:00Z")]; w == nil || w.PrecipitationMMH != 9831.3 || w.Condition != "Rain" {
		t.Errorf("9831 mm hour: %+v", w)
	}
	// The repeated hour keeps its first row's weather; 01:00 on the fall-back day is the earlier (CDT) instant.
	if w := byTime[ts("2017-11-05T05:00:00Z")]; w == nil || w.Condition != "Drizzle" {
		t.Errorf("repeated hour 2017-11-05 00:00: %+v", w)
	}
	if w := byTime[ts("2017-11-05T06:00:00Z")]; w == nil || w.Condition != "Drizzle" {
		t.Errorf("ambiguous hour 2017-11-05 01:00: %+v", w)
	}
}

func TestMetroProblems(t *testing.T) {
	t.Parallel()
	const head = "holiday,temp,rain_1h,snow_1h,clouds_all,weather_main,weather_description,date_time,traffic_volume\r\n"
	input := head +
		"None,280,0,0,10,Clear,sky,2017-03-12 01:00:00,100\r\n" + // 2
		"None,280,0,0,10,Clear,sky,2017-03-12 02:00:00,110\r\n" + // 3 does not exist (spring forward)
		"None,hot,0,0,10,Clear,sky,2017-03-12 03:00:00,120\r\n" + // 4 bad temp: the hour's weather comes from row 5
		"None,280,0,0,10,Mist,mist,2017-03-12 03:00:00,120\r\n" + // 5
		"None,280,0,0,10,Rain,rain,2017-03-12 03:00:00,999\r\n" + // 6 conflicting volume
		"None,280,0,0,10,Clear,sky,2017-03-12 01:00:00,100\r\n" + // 7 out of order
		"None,280,0,0,10,Clear,sky,12/03/2017 04:00,100\r\n" + // 8 bad time
		"None,281,0,0,10,Clear,sky,2017-03-12 04:00:00,\r\n" + // 9 empty volume: weather only
		"None,280,0,0,10,Clear,sky,2017-03-12 05:30:00,100\r\n" + // 10 not on the hour
		"None,280,0,0\r\n" // 11 short
	recs, problems, stats := readAll(t, dataset.FormatMetro, input)
	want := []string{"3 date_time nonexistent_local_time", "4 temp bad_number", "6 traffic_volume conflicting_repeat",
		"7 date_time out_of_order", "8 date_time bad_time", "9 traffic_volume missing_value", "10 date_time bad_time", "11 short_row"}
	if got := problemLines(problems); !reflect.DeepEqual(got, want) {
		t.Errorf("problems:\n got %q\nwant %q", got, want)
	}
	if len(recs) != 5 || stats.Readings != 2 || stats.Weather != 3 || stats.MergedRows != 2 {
		t.Fatalf("got %d records, stats %+v", len(recs), stats)
	}
	if r := recs[2].Reading; r == nil || r.Count != 120 || recs[3].Weather.Condition != "Mist" || recs[2].Line != 4 {
		t.Errorf("03:00 hour: %+v %+v", recs[2], recs[3])
	}
	if w := recs[4].Weather; w == nil || w.TemperatureC != 7.85 || !w.ObservedAt.Equal(ts("2017-03-12T09:00:00Z")) {
		t.Errorf("04:00 weather: %+v", recs[4])
	}
}

func TestMetroTopologyIsValid(t *testing.T) {
	t.Parallel()
	topo := dataset.MetroTopology()
	if err := topo.Validate(); err != nil {
		t.Fatal(err)
	}
	ix := topology.NewIndex(topo)
	ref, ok := ix.Detector(dataset.MetroDetectorID)
	if !ok || ref.Intersection != dataset.MetroIntersectionID || ref.Approach != dataset.MetroApproachID {
		t.Errorf("detector %s: %+v %v", dataset.MetroDetectorID, ref, ok)
	}
	if in, _ := ix.Intersection(dataset.MetroIntersectionID); in.Window() != dataset.MetroIntervalS || in.WeatherStation != dataset.MetroStationID {
		t.Errorf("intersection %+v", in)
	}
}

func TestSCATSSample(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("testdata/scats_sample.csv")
	if err != nil {
		t.Fatal(err)
	}
	recs, problems, stats := readAll(t, dataset.FormatSCATS, string(b))
	want := []string{"5 V08,V09,V10,V11 nonexistent_local_time", "7 Location shared_location", "8 Date duplicate_row",
		"9 V05 bad_number", "9 V06 missing_value", "10 Date bad_time"}
	if got := problemLines(problems); !reflect.DeepEqual(got, want) {
		t.Errorf("problems:\n got %q\nwant %q", got, want)
	}
	// Rows 3, 4, 6: 96 each; row 5: 92 (DST); row 9: 94.
	if n := 3*96 + 92 + 94; len(recs) != n || stats.Readings != n || stats.Rows != 8 || stats.SkippedRecords != 4+96+96+2+96 {
		t.Errorf("%d records, stats %+v", len(recs), stats)
	}

	// Every detector id is one topology.ImportSCATS gives for the same file.
	topo, err := topology.ImportSCATS(strings.NewReader(string(b)), topology.SCATSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ix := topology.NewIndex(topo)
	for _, rec := range recs {
		r := rec.Reading
		if r.Start.Unix()%900 != 0 || r.IntervalS != 900 || r.FlowVPH != 4*r.Count {
			t.Fatalf("reading %+v", r)
		}
		if r.IntersectionID == "4335" || r.IntersectionID == "3001" { // one approach: ImportSCATS skips the site
			continue
		}
		if ref, ok := ix.Detector(r.DetectorID); !ok || ref.Intersection != r.IntersectionID || ref.Approach != r.ApproachID {
			t.Fatalf("reading %+v does not match the imported topology (%+v, %v)", r, ref, ok)
		}
	}

	first := recs[0].Reading
	wantFirst := clean.Reading{IntersectionID: "0970", ApproachID: "N_WARRIGAL_RD", DetectorID: "0970-N_WARRIGAL_RD",
		Start: ts("2006-09-30T14:00:00Z"), IntervalS: 900, Count: 10, FlowVPH: 40} // 1/10/2006 00:00 AEST
	if !reflect.DeepEqual(*first, wantFirst) || recs[0].Line != 3 {
		t.Errorf("first %+v line %d, want %+v line 3", *first, recs[0].Line, wantFirst)
	}
	// On 29/10/2006 V07 is 01:45 AEST and V12 03:00 AEDT: a quarter of an hour apart on the clock.
	var dst []dataset.Record
	for _, rec := range recs {
		if rec.Line == 5 {
			dst = append(dst, rec)
		}
	}
	if len(dst) != 92 {
		t.Fatalf("29/10/2006 has %d readings, want 92", len(dst))
	}
	if a, b := dst[7].Reading.Start, dst[8].Reading.Start; !a.Equal(ts("2006-10-28T15:45:00Z")) || b.Sub(a) != 15*time.Minute {
		t.Errorf("around the DST gap: %s then %s", a, b)
	}
	// Event-time order across rows: the file lists each approach's days in turn.
	for i := 1; i < len(recs); i++ {
		if recs[i].Time().Before(recs[i-1].Time()) {
			t.Fatalf("record %d (line %d, %s) before record %d (%s)", i, recs[i].Line, recs[i].Time(), i-1, recs[i-1].Time())
		}
	}
	if recs[1].Line != 4 || !recs[1].Time().Equal(recs[0].Time()) {
		t.Errorf("second record: line %d at %s, want line 4 at the first slot", recs[1].Line, recs[1].Time())
	}
	// The shared location's first detector (HF 201) owns the id; the other's and the duplicate's values are not used.
	for _, rec := range recs {
		if rec.Reading.IntersectionID == "4335" && rec.Line != 6 {
			t.Errorf("site 4335 reading from line %d", rec.Line)
		}
	}
}

func TestMerge(t *testing.T) {
	t.Parallel()
	readings := "observed_at,detector_id,interval_s,count\n" +
		"2026-11-30T07:00:00Z,D1,300,1\n2026-11-30T07:05:00Z,D1,300,2\n2026-11-30T07:10:00Z,D1,300,3\n"
	weather := "observed_at,station_id\n2026-11-30T07:00:00Z,S\n2026-11-30T07:07:00Z,S\n"
	r, err := dataset.Open(dataset.FormatCSV, strings.NewReader(readings), "r.csv", dataset.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := dataset.OpenWeather(strings.NewReader(weather), "w.csv", dataset.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, rec := range drain(t, dataset.Merge(r, w)) {
		kind := "r"
		if rec.Weather != nil {
			kind = "w"
		}
		got = append(got, kind+rec.Time().Format("15:04"))
	}
	if want := []string{"r07:00", "w07:00", "r07:05", "w07:07", "r07:10"}; !reflect.DeepEqual(got, want) {
		t.Errorf("merged %q, want %q", got, want)
	}
}

// failingReader fails after its content, like a disk error mid-file.
type failingReader struct{ r io.Reader }

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if errors.Is(err, io.EOF) {
		return n, errors.New("disk on fire")
	}
	return n, err
}

func TestReadErrorIsFatal(t *testing.T) {
	t.Parallel()
	in := &failingReader{r: strings.NewReader("observed_at,detector_id,interval_s,count\n2026-11-30T07:00:00Z,D1,300,1\n")}
	r, err := dataset.Open(dataset.FormatCSV, in, "r.csv", dataset.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); err != nil {
		t.Fatalf("first record: %v", err)
	}
	_, err = r.Next()
	if err == nil || errors.Is(err, io.EOF) || !strings.Contains(err.Error(), "disk on fire") || !strings.Contains(err.Error(), "r.csv") {
		t.Fatalf("want the read error naming the file, got %v", err)
	}
	if _, again := r.Next(); again == nil || again.Error() != err.Error() {
		t.Errorf("a second Next returned %v", again)
	}
}
