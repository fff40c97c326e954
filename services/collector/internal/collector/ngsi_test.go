package collector

import (
	"encoding/json"
	"math"
	"net/http"
	"testing"

	"google.golang.org/protobuf/proto"

	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// TestNGSIUpsert posts key-value and normalised entities, checks the ack names FIWARE attributes, and reads the
// converted readings back from the topics.
func TestNGSIUpsert(t *testing.T) {
	f := newFixture(t)
	body := `[
	  {"id":"urn:ngsi-ld:TrafficFlowObserved:D1","type":"TrafficFlowObserved","dateObservedFrom":"2026-11-30T07:58:00Z","dateObservedTo":"2026-11-30T07:59:00Z","intensity":10,"occupancy":30,"averageVehicleSpeed":-1},
	  {"id":"tfo-2","type":"TrafficFlowObserved","refDevice":{"type":"Relationship","object":"urn:ngsi-ld:Device:D2"},
	   "dateObserved":{"type":"Property","value":"2026-11-30T07:58:00Z/2026-11-30T07:59:00Z"},
	   "intensity":{"type":"Property","value":5},"averageVehicleSpeed":{"type":"Property","value":30,"unitCode":"HM"}},
	  {"id":"D3","type":"TrafficFlowObserved","dateObserved":"2026-11-30T07:59:00Z","intervalS":60,"intensity":5,"averageVehicleSpeed":{"value":400}},
	  {"id":"X1","type":"TrafficFlowObserved","dateObserved":"2026-11-30T07:59:00Z","intervalS":60,"intensity":5},
	  {"id":"urn:ngsi-ld:WeatherObserved:STN-1","type":"WeatherObserved","dateObserved":"2026-11-30T07:59:00Z","temperature":{"value":271.15,"unitCode":"KEL"}},
	  {"id":"v","type":"Vehicle"}
	]`
	code, _, out := f.postJSON("/ngsi-ld/v1/entityOperations/upsert?options=keyValues", "application/ld+json", tokenA, []byte(body))
	if code != http.StatusMultiStatus {
		t.Fatalf("status %d: %v", code, out)
	}
	if out["accepted_readings"] != 2.0 || out["accepted_weather"] != 1.0 {
		t.Errorf("ack %v, want 2 readings and 1 weather accepted", out)
	}
	want := map[string]string{ // field → reason of each rejected entity
		"[2].averageVehicleSpeed": "REJECT_REASON_OUT_OF_RANGE",
		"[3].id":                  "REJECT_REASON_PERMISSION_DENIED",
		"[5].type":                "REJECT_REASON_MALFORMED",
	}
	rej, _ := out["rejected"].([]any)
	if len(rej) != len(want) {
		t.Fatalf("rejected %v", rej)
	}
	for _, r := range rej {
		m := r.(map[string]any)
		if want[m["field"].(string)] != m["reason"] {
			t.Errorf("unexpected rejection %v", m)
		}
	}
	readings := map[string]*greenwavev1.TrafficReading{}
	for _, m := range f.records(f.names.Readings, 2) {
		var r greenwavev1.TrafficReading
		if err := proto.Unmarshal(m.Value, &r); err != nil {
			t.Fatal(err)
		}
		readings[r.GetDetectorId()] = &r
	}
	if r := readings["D1"]; r == nil || r.GetFlowVph() != 600 || r.GetOccupancyRatio() != 0.3 || r.SpeedKmh != nil || r.GetReadingId() != "D1@1796025480" {
		t.Errorf("D1 = %v: want 600 veh/h, occupancy 0.3 from 30 %%, speed missing (sentinel -1), id D1@<start>", r)
	}
	if r := readings["D2"]; r == nil || math.Abs(r.GetSpeedKmh()-48.28032) > 1e-9 || r.GetFlowVph() != 300 {
		t.Errorf("D2 = %v: want 48.28 km/h from 30 mph", r)
	}
	weather := f.records(f.names.Weather, 1)
	var w greenwavev1.WeatherReading
	if len(weather) != 1 || proto.Unmarshal(weather[0].Value, &w) != nil || math.Abs(w.GetTemperatureC()+2) > 1e-9 || w.GetStationId() != "STN-1" {
		t.Errorf("weather %v: want STN-1 at -2 °C from 271.15 K", &w)
	}
	// Every entity refused: 422, still with the ack listing each.
	code, _, out = f.postJSON("/ngsi-ld/v1/entityOperations/upsert", "application/json", tokenA, []byte(`[{"id":"D1","type":"TrafficFlowObserved"}]`))
	if b, _ := json.Marshal(out); code != http.StatusUnprocessableEntity || out["accepted_readings"] != 0.0 {
		t.Errorf("all rejected: %d %s", code, b)
	}
}
