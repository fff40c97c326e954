package fiware

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/greenwave-city/greenwave/pkg/ingest"
)

func TestDecodeNotification(t *testing.T) {
	// A notification as Orion-LD sends it for a subscription with notification.format "normalized", and the same
	// with "keyValues": both give the same reading.
	normalised := `{"id":"urn:ngsi-ld:Notification:5fd0fa684eb81930c97005f3","type":"Notification",
	  "subscriptionId":"urn:ngsi-ld:Subscription:greenwave-traffic","notifiedAt":"2026-11-30T07:55:01.250Z",
	  "data":[{"id":"urn:ngsi-ld:TrafficFlowObserved:D1","type":"TrafficFlowObserved",
	    "dateObservedFrom":{"type":"Property","value":{"@type":"DateTime","@value":"2026-11-30T07:50:00Z"}},
	    "dateObservedTo":{"type":"Property","value":{"@type":"DateTime","@value":"2026-11-30T07:55:00Z"}},
	    "intensity":{"type":"Property","value":25,"observedAt":"2026-11-30T07:55:00Z"},
	    "refRoadSegment":{"type":"Relationship","object":"urn:ngsi-ld:RoadSegment:high-st-1"},
	    "location":{"type":"GeoProperty","value":{"type":"Point","coordinates":[-3.80,43.46]}}}]}`
	keyValues := `{"id":"urn:ngsi-ld:Notification:5fd0fa684eb81930c97005f4","type":"Notification",
	  "subscriptionId":"urn:ngsi-ld:Subscription:greenwave-traffic","notifiedAt":"2026-11-30T07:55:01.250Z",
	  "data":[{"id":"urn:ngsi-ld:TrafficFlowObserved:D1","type":"TrafficFlowObserved",
	    "dateObservedFrom":{"@type":"DateTime","@value":"2026-11-30T07:50:00Z"},"dateObservedTo":"2026-11-30T07:55:00Z",
	    "intensity":25,"refRoadSegment":"urn:ngsi-ld:RoadSegment:high-st-1","location":{"type":"Point","coordinates":[-3.80,43.46]}}]}`
	// NGSI-LD 1.6's concise format: a Property without sub-attributes is its bare value, "type" is left out.
	concise := `{"id":"urn:ngsi-ld:Notification:5fd0fa684eb81930c97005f5","type":"Notification",
	  "subscriptionId":"urn:ngsi-ld:Subscription:greenwave-traffic","notifiedAt":"2026-11-30T07:55:01.250Z",
	  "data":[{"id":"urn:ngsi-ld:TrafficFlowObserved:D1","type":"TrafficFlowObserved",
	    "dateObservedFrom":{"@type":"DateTime","@value":"2026-11-30T07:50:00Z"},"dateObservedTo":{"@type":"DateTime","@value":"2026-11-30T07:55:00Z"},
	    "intensity":{"value":25,"observedAt":"2026-11-30T07:55:00Z"},"refRoadSegment":{"object":"urn:ngsi-ld:RoadSegment:high-st-1"}}]}`
	want := ingest.TrafficReading{DetectorID: "D1", ObservedAt: ingest.At(time.Date(2026, 11, 30, 7, 50, 0, 0, time.UTC)), IntervalS: 300, Count: 25}
	for name, body := range map[string]string{"normalized": normalised, "keyValues": keyValues, "concise": concise} {
		t.Run(name, func(t *testing.T) {
			n, err := DecodeNotification([]byte(body))
			if err != nil {
				t.Fatal(err)
			}
			if n.SubscriptionID != "urn:ngsi-ld:Subscription:greenwave-traffic" || n.ID == "" || n.NotifiedAt != "2026-11-30T07:55:01.250Z" || len(n.Entities) != 1 {
				t.Fatalf("notification %+v", n)
			}
			if e := n.Entities[0]; e.Violation != nil || e.Traffic == nil || *e.Traffic != want {
				t.Errorf("entity %+v (violation %v), want %+v", e, e.Violation, want)
			}
		})
	}
}

func TestDecodeNotificationRefused(t *testing.T) {
	for name, body := range map[string]string{
		"empty":                ``,
		"entity array":         `[{"id":"D1","type":"TrafficFlowObserved"}]`,
		"broken":               `{"type":"Notification","data":[`,
		"no type":              `{"data":[]}`,
		"entity, not notified": `{"id":"urn:ngsi-ld:TrafficFlowObserved:D1","type":"TrafficFlowObserved","intensity":3}`,
		"no data":              `{"type":"Notification","subscriptionId":"s"}`,
		"data object":          `{"type":"Notification","data":{"id":"D1"}}`,
		"numeric id":           `{"type":"Notification","id":7,"data":[]}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := DecodeNotification([]byte(body)); err == nil {
				t.Fatalf("DecodeNotification(%s) succeeded", body)
			} else if name != "broken" && !errors.Is(err, ErrNotNotification) {
				t.Errorf("error %v does not wrap ErrNotNotification", err)
			}
		})
	}
	// An entity that cannot be converted does not refuse the notification: it comes back with its violation.
	n, err := DecodeNotification([]byte(`{"type":"Notification","data":[{"id":"D1","type":"Vehicle"},{"id":"S","type":"WeatherObserved","dateObserved":"2026-11-30T07:00:00Z"}]}`))
	if err != nil || len(n.Entities) != 2 || n.Entities[0].Violation == nil || n.Entities[1].Weather == nil || n.Entities[1].Index != 1 {
		t.Fatalf("mixed notification: %+v %v", n, err)
	}
}

// FuzzDecodeNotification checks that no body panics, that every entity of a decoded notification is exactly one
// of a reading or a violation, that converted readings name their sensor and a sane interval, and that a
// notification's data decodes exactly as the same array posted to the upsert route (both ways round).
func FuzzDecodeNotification(f *testing.F) {
	f.Add([]byte(`{"id":"urn:ngsi-ld:Notification:1","type":"Notification","subscriptionId":"s","notifiedAt":"2026-11-30T07:55:01Z","data":[{"id":"urn:ngsi-ld:TrafficFlowObserved:D1","type":"TrafficFlowObserved","dateObserved":{"type":"Property","value":{"@type":"DateTime","@value":"2026-11-30T07:50:00Z/2026-11-30T07:55:00Z"}},"intensity":{"type":"Property","value":25}}]}`))
	f.Add([]byte(`{"type":"Notification","data":[{"id":"S","type":"WeatherObserved","dateObserved":"2026-11-30T07:00:00Z","temperature":-1,"precipitation":{"value":1,"unitCode":"H67"}},null,3]}`))
	f.Add([]byte(`[{"id":"D1","type":"TrafficFlowObserved","dateObservedFrom":"2026-11-30T07:00:00Z","intervalS":60,"intensity":5}]`))
	f.Add([]byte(`{"type":"Notification","data":[{"id":"D1","type":"TrafficFlowObserved","dateObserved":"2026-11-30T07:01:00Z","intervalS":1e9,"intensity":5}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := DecodeNotification(b)
		if err == nil {
			for i, e := range n.Entities {
				checkEntity(t, i, e)
			}
			var raw struct {
				Data json.RawMessage `json:"data"`
			}
			if err := json.Unmarshal(b, &raw); err != nil {
				t.Fatalf("decoded notification is not a JSON object: %v", err)
			}
			es, err := Decode(raw.Data)
			if err != nil || !reflect.DeepEqual(es, n.Entities) {
				t.Fatalf("data decoded alone: %+v %v, in the notification: %+v", es, err, n.Entities)
			}
		}
		// The other way: an array that decodes as an upsert batch decodes the same inside a notification.
		es, err := Decode(b)
		if err != nil {
			return
		}
		// Decode trims Unicode white space (\v, U+0085) that JSON does not allow between tokens.
		wrapped := append(append([]byte(`{"type":"Notification","data":`), bytes.TrimSpace(b)...), '}')
		n, err = DecodeNotification(wrapped)
		if err != nil || !reflect.DeepEqual(es, n.Entities) {
			t.Fatalf("batch %+v, wrapped in a notification: %+v %v", es, n.Entities, err)
		}
	})
}

// checkEntity holds the invariants of a decoded entity at position i.
func checkEntity(t *testing.T, i int, e Entity) {
	t.Helper()
	set := 0
	for _, ok := range []bool{e.Traffic != nil, e.Weather != nil, e.Violation != nil} {
		if ok {
			set++
		}
	}
	if set != 1 || e.Index != i {
		t.Fatalf("entity %d %+v: want exactly one of traffic, weather, violation, at its index", i, e)
	}
	if r := e.Traffic; r != nil {
		if r.DetectorID == "" || !r.ObservedAt.Set || r.IntervalS == 0 || time.Duration(r.IntervalS)*time.Second > MaxInterval || IsSentinel(r.Count) || e.Kind() != ingest.KindTraffic {
			t.Fatalf("entity %d: accepted traffic reading %+v breaks an invariant", i, r)
		}
	}
	if w := e.Weather; w != nil && (w.StationID == "" || !w.ObservedAt.Set || e.Kind() != ingest.KindWeather) {
		t.Fatalf("entity %d: accepted weather reading %+v breaks an invariant", i, w)
	}
	if v := e.Violation; v != nil && v.Description == "" {
		t.Fatalf("entity %d: violation without a description %+v", i, v)
	}
}
