package ingest

import (
	"encoding/json"
	"testing"

	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

func TestDecodeBatchJSON(t *testing.T) {
	cases := []struct {
		name, body string
		ok         bool
	}{
		{"snake case", `{"batch_id":"b","readings":[{"detector_id":"D1","observed_at":"2026-11-30T07:00:00Z","interval_s":60,"count":3,"speed_kmh":40}]}`, true},
		{"camel case", `{"batchId":"b","readings":[{"detectorId":"D1","observedAt":"2026-11-30T07:00:00Z"}]}`, true},
		{"unknown field", `{"readings":[{"speed_kph":3}]}`, false},
		{"wrong type", `{"readings":[{"count":"many"}]}`, false},
		{"bad time", `{"readings":[{"observed_at":"yesterday"}]}`, false},
		{"not JSON", `readings`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := DecodeBatchJSON([]byte(c.body))
			if (err == nil) != c.ok {
				t.Fatalf("err = %v, want ok %v", err, c.ok)
			}
			if c.ok && (b.GetBatchId() != "b" || b.GetReadings()[0].GetDetectorId() != "D1") {
				t.Errorf("batch %v", b)
			}
		})
	}
}

func TestEncodeAckJSON(t *testing.T) {
	b, err := EncodeAckJSON(&greenwavev1.BatchAck{BatchId: "b"})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	// protojson varies whitespace on purpose; compare the decoded fields.
	if len(got) != 4 || got["batch_id"] != "b" || got["accepted_readings"] != 0.0 || got["accepted_weather"] != 0.0 {
		t.Errorf("ack JSON %s", b)
	}
}

func TestFlowVPH(t *testing.T) {
	for _, c := range []struct {
		count    float64
		interval uint32
		want     float64
	}{{10, 60, 600}, {25, 300, 300}, {0, 900, 0}, {1, 3600, 1}} {
		if got := FlowVPH(c.count, c.interval); got != c.want {
			t.Errorf("FlowVPH(%v, %d) = %v, want %v", c.count, c.interval, got, c.want)
		}
	}
}

func FuzzDecodeBatchJSON(f *testing.F) {
	f.Add([]byte(`{"batch_id":"b","readings":[{"detector_id":"D1","observed_at":"2026-11-30T07:00:00Z","interval_s":60,"count":3}],"weather":[{"station_id":"S","temperature_c":3}]}`))
	f.Add([]byte(`{"readings":[{"occupancy_ratio":"NaN"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		batch, err := DecodeBatchJSON(b)
		if err == nil && batch == nil {
			t.Fatal("nil batch without error")
		}
	})
}
