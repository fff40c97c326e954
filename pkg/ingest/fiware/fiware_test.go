package fiware

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/greenwave-city/greenwave/pkg/ingest"
)

func TestUnitConversions(t *testing.T) {
	cases := []struct {
		name    string
		convert func(float64, string) (float64, error)
		v       float64
		unit    string
		want    float64
		wantErr bool
	}{
		{"occupancy ratio", OccupancyRatio, 0.25, "", 0.25, false},
		{"occupancy one is a ratio", OccupancyRatio, 1, "", 1, false},
		{"occupancy unlabelled percent", OccupancyRatio, 25, "", 0.25, false},
		{"occupancy P1", OccupancyRatio, 0.5, UnitPercent, 0.005, false},
		{"occupancy C62", OccupancyRatio, 0.5, UnitOne, 0.5, false},
		{"occupancy bad unit", OccupancyRatio, 0.5, "KMH", 0, true},
		{"speed km/h default", SpeedKMH, 50, "", 50, false},
		{"speed KMH", SpeedKMH, 50, UnitKMH, 50, false},
		{"speed m/s", SpeedKMH, 10, UnitMPS, 36, false},
		{"speed mph", SpeedKMH, 30, UnitMPH, 48.28032, false},
		{"speed bad unit", SpeedKMH, 30, "KNT", 0, true},
		{"temperature default", TemperatureC, -1, "", -1, false},
		{"temperature kelvin", TemperatureC, 273.15, UnitKelvin, 0, false},
		{"temperature fahrenheit", TemperatureC, 212, UnitFahrenh, 100, false},
		{"temperature bad unit", TemperatureC, 1, "P1", 0, true},
		{"visibility m", VisibilityM, 800, "", 800, false},
		{"visibility km", VisibilityM, 2.5, UnitKilometre, 2500, false},
		{"visibility bad unit", VisibilityM, 1, "HM", 0, true},
		{"precipitation mm/h", PrecipitationMMH, 1.5, UnitMMPerHour, 1.5, false},
		{"precipitation amount refused", PrecipitationMMH, 1.5, "MMT", 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.convert(c.v, c.unit)
			var ue *UnsupportedUnitError
			if c.wantErr != (err != nil) || (err != nil && !errors.As(err, &ue)) {
				t.Fatalf("err = %v, want error %v", err, c.wantErr)
			}
			if math.Abs(got-c.want) > 1e-9 {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
}

func TestSentinels(t *testing.T) {
	for _, c := range []struct {
		v            float64
		nonNeg, temp bool
	}{{-1, true, false}, {-999, true, true}, {-9999, true, true}, {0, false, false}, {-2, false, false}} {
		if IsSentinel(c.v) != c.nonNeg || IsTemperatureSentinel(c.v) != c.temp {
			t.Errorf("%v: sentinel %v/%v, want %v/%v", c.v, IsSentinel(c.v), IsTemperatureSentinel(c.v), c.nonNeg, c.temp)
		}
	}
}

func TestDecode(t *testing.T) {
	start := time.Date(2026, 11, 30, 7, 0, 0, 0, time.UTC)
	traffic := func(t *testing.T, e Entity) *ingest.TrafficReading {
		t.Helper()
		if e.Violation != nil || e.Traffic == nil {
			t.Fatalf("entity %+v: violation %v", e, e.Violation)
		}
		return e.Traffic
	}
	cases := []struct {
		name  string
		body  string
		check func(t *testing.T, e Entity)
	}{
		{"key-values with interval attributes", `[{"id":"urn:ngsi-ld:TrafficFlowObserved:D1","type":"TrafficFlowObserved","dateObservedFrom":"2026-11-30T07:00:00Z","dateObservedTo":"2026-11-30T07:05:00Z","intensity":25,"occupancy":12,"averageVehicleSpeed":48,"laneId":1}]`,
			func(t *testing.T, e Entity) {
				r := traffic(t, e)
				if r.DetectorID != "D1" || r.IntervalS != 300 || !r.ObservedAt.Time.Equal(start) || r.Count != 25 || r.OccupancyRatio != 0.12 || r.SpeedKMH != 48 || r.LaneID != "1" {
					t.Errorf("reading %v", r)
				}
			}},
		{"normalised with units and refDevice", `[{"id":"tfo-1","type":"TrafficFlowObserved","refDevice":{"type":"Relationship","object":"urn:ngsi-ld:Device:D2"},"dateObserved":{"type":"Property","value":{"@type":"DateTime","@value":"2026-11-30T07:00:00Z/2026-11-30T07:01:00Z"}},"intensity":{"type":"Property","value":3},"occupancy":{"type":"Property","value":40,"unitCode":"P1"},"averageVehicleSpeed":{"type":"Property","value":10,"unitCode":"MTS"}}]`,
			func(t *testing.T, e Entity) {
				r := traffic(t, e)
				if r.DetectorID != "D2" || r.IntervalS != 60 || r.OccupancyRatio != 0.4 || r.SpeedKMH != 36 {
					t.Errorf("reading %v", r)
				}
			}},
		{"instant with intervalS and sentinels", `[{"id":"D3","detectorId":"D4","type":"TrafficFlowObserved","dateObserved":"2026-11-30T07:05:00Z","intervalS":300,"intensity":7,"occupancy":-1,"averageVehicleSpeed":-999}]`,
			func(t *testing.T, e Entity) {
				r := traffic(t, e)
				if r.DetectorID != "D4" || !r.ObservedAt.Time.Equal(start) || r.HasOccupancy || r.HasSpeed {
					t.Errorf("reading %v", r)
				}
			}},
		{"speed only (no intensity)", `[{"id":"D5","type":"TrafficFlowObserved","dateObservedFrom":"2026-11-30T07:00:00Z","dateObservedTo":"2026-11-30T07:05:00Z","averageVehicleSpeed":{"value":25,"unitCode":"MTS"}}]`,
			func(t *testing.T, e Entity) {
				r := traffic(t, e)
				if !r.NoCount || r.Count != 0 || !r.HasSpeed || r.SpeedKMH != 90 || r.HasOccupancy {
					t.Errorf("reading %v", r)
				}
			}},
		{"occupancy only, intensity a no-data code", `[{"id":"D6","type":"TrafficFlowObserved","dateObservedFrom":"2026-11-30T07:00:00Z","dateObservedTo":"2026-11-30T07:05:00Z","intensity":-1,"occupancy":0.3,"averageVehicleSpeed":-1}]`,
			func(t *testing.T, e Entity) {
				r := traffic(t, e)
				if !r.NoCount || !r.HasOccupancy || r.OccupancyRatio != 0.3 || r.HasSpeed {
					t.Errorf("reading %v", r)
				}
			}},
		{"weather kelvin", `[{"id":"urn:ngsi-ld:WeatherObserved:STN-1","type":"WeatherObserved","dateObserved":"2026-11-30T07:00:00Z","temperature":{"type":"Property","value":274.15,"unitCode":"KEL"},"precipitation":2,"visibility":{"value":3,"unitCode":"KMT"},"weatherType":"rain"}]`,
			func(t *testing.T, e Entity) {
				w := e.Weather
				if e.Violation != nil || w.StationID != "STN-1" || math.Abs(w.TemperatureC-1) > 1e-9 || w.PrecipitationMMH != 2 || w.VisibilityM != 3000 || w.Condition != "rain" {
					t.Errorf("weather %v, violation %v", w, e.Violation)
				}
			}},
		{"weather station from refPointOfInterest, temperature -1 is real", `[{"id":"w","type":"WeatherObserved","refPointOfInterest":{"type":"Relationship","object":"STN-2"},"dateObserved":"2026-11-30T07:00:00Z","temperature":-1,"visibility":"good"}]`,
			func(t *testing.T, e Entity) {
				if e.Weather.StationID != "STN-2" || e.Weather.TemperatureC != -1 || e.Weather.HasVisibility {
					t.Errorf("weather %v", e.Weather)
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			es, err := Decode([]byte(c.body))
			if err != nil || len(es) != 1 {
				t.Fatalf("decode: %v %v", es, err)
			}
			c.check(t, es[0])
		})
	}
}

func TestDecodeViolations(t *testing.T) {
	cases := []struct {
		name, body, field string
		reason            ingest.Reason
	}{
		{"not an object", `[3]`, "", ingest.ReasonMalformed},
		{"no type", `[{"id":"D1"}]`, "type", ingest.ReasonMissingField},
		{"other type", `[{"id":"D1","type":"Vehicle"}]`, "type", ingest.ReasonMalformed},
		{"no interval", `[{"id":"D1","type":"TrafficFlowObserved","dateObserved":"2026-11-30T07:00:00Z","intensity":1}]`, "dateObservedFrom", ingest.ReasonMissingField},
		{"reversed interval", `[{"id":"D1","type":"TrafficFlowObserved","dateObservedFrom":"2026-11-30T07:05:00Z","dateObservedTo":"2026-11-30T07:00:00Z","intensity":1}]`, "dateObservedTo", ingest.ReasonInconsistent},
		{"no zone", `[{"id":"D1","type":"TrafficFlowObserved","dateObservedFrom":"2026-11-30T07:05:00","dateObservedTo":"2026-11-30T07:06:00Z","intensity":1}]`, "dateObservedFrom", ingest.ReasonMalformed},
		{"intensity sentinel, nothing else", `[{"id":"D1","type":"TrafficFlowObserved","dateObserved":"2026-11-30T07:00:00Z/2026-11-30T07:01:00Z","intensity":-1}]`, "intensity", ingest.ReasonMissingField},
		{"no quantity at all", `[{"id":"D1","type":"TrafficFlowObserved","dateObserved":"2026-11-30T07:00:00Z/2026-11-30T07:01:00Z","occupancy":-1,"averageVehicleSpeed":-999}]`, "intensity", ingest.ReasonMissingField},
		{"intensity string", `[{"id":"D1","type":"TrafficFlowObserved","dateObserved":"2026-11-30T07:00:00Z/2026-11-30T07:01:00Z","intensity":"5"}]`, "intensity", ingest.ReasonMalformed},
		{"speed unit", `[{"id":"D1","type":"TrafficFlowObserved","dateObserved":"2026-11-30T07:00:00Z/2026-11-30T07:01:00Z","intensity":5,"averageVehicleSpeed":{"value":3,"unitCode":"KNT"}}]`, "averageVehicleSpeed", ingest.ReasonUnsupportedUnit},
		{"weather no date", `[{"id":"STN-1","type":"WeatherObserved"}]`, "dateObserved", ingest.ReasonMissingField},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			es, err := Decode([]byte(c.body))
			if err != nil || len(es) != 1 {
				t.Fatalf("decode: %v %v", es, err)
			}
			v := es[0].Violation
			if v == nil || v.Field != c.field || v.Reason != c.reason || v.Description == "" || es[0].Traffic != nil || es[0].Weather != nil {
				t.Errorf("entity %+v violation %+v, want %v on %q", es[0], v, c.reason, c.field)
			}
		})
	}
	for _, body := range []string{``, `{}`, `[`, `"x"`} {
		if _, err := Decode([]byte(body)); err == nil {
			t.Errorf("Decode(%q) succeeded", body)
		}
	}
}

func TestLocalID(t *testing.T) {
	for in, want := range map[string]string{"urn:ngsi-ld:Device:D1": "D1", "D1": "D1", "urn:ngsi-ld:X": "X", "urn:ngsi-ld:T:a:b": "a:b"} {
		if got := LocalID(in); got != want {
			t.Errorf("LocalID(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`[{"id":"D1","type":"TrafficFlowObserved","dateObserved":"2026-11-30T07:00:00Z/2026-11-30T07:01:00Z","intensity":{"value":5},"occupancy":{"value":3,"unitCode":"P1"}}]`))
	f.Add([]byte(`[{"id":"S","type":"WeatherObserved","dateObserved":{"@value":"2026-11-30T07:00:00Z"},"temperature":{"value":270,"unitCode":"KEL"},"visibility":"x"}]`))
	f.Add([]byte(`[null, 1, {"type":{"a":1}}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := Decode(b)
		if err != nil {
			return
		}
		for _, e := range es {
			set := 0
			for _, ok := range []bool{e.Traffic != nil, e.Weather != nil, e.Violation != nil} {
				if ok {
					set++
				}
			}
			if set != 1 {
				t.Fatalf("entity %+v: want exactly one of traffic, weather, violation", e)
			}
		}
	})
}
