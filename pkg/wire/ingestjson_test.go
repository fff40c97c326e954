package wire

import (
	"encoding/json"
	"errors"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

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

func FuzzDecodeBatchJSON(f *testing.F) {
	f.Add([]byte(`{"batch_id":"b","readings":[{"detector_id":"D1","observed_at":"2026-11-30T07:00:00Z","interval_s":60,"count":3}],"weather":[{"station_id":"S","temperature_c":3}]}`))
	f.Add([]byte(`{"readings":[{"occupancy_ratio":"NaN"}]}`))
	f.Add([]byte(`{"readings":[{"speed_kmh":"fast","interval_s":-1}],"weather":[{"observedAt":null}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		batch, err := DecodeBatchJSON(b)
		if err == nil && batch == nil {
			t.Fatal("nil batch without error")
		}
		if err == nil {
			// An accepted batch encodes and decodes back to itself.
			again, merr := protojson.Marshal(batch)
			if merr != nil {
				t.Fatalf("accepted batch does not encode: %v", merr)
			}
			if batch2, err := DecodeBatchJSON(again); err != nil || !proto.Equal(batch, batch2) {
				t.Fatalf("round trip of %q through %q: %v", b, again, err)
			}
		}
		// The path finder never blames a value of a body protojson accepts.
		if fe := locateJSONError(b, (&greenwavev1.ReadingBatch{}).ProtoReflect().Descriptor()); err == nil && fe != nil {
			t.Fatalf("valid body %q located as bad: %v", b, fe)
		}
	})
}

// TestDecodeBatchJSONFieldPath: a body that is JSON but does not fit names the JSON path of the first bad value.
func TestDecodeBatchJSONFieldPath(t *testing.T) {
	ok := `{"detector_id":"D1","observed_at":"2026-11-30T07:00:00Z"}`
	cases := []struct{ name, body, path, problem string }{
		{"string for a number", `{"readings":[` + ok + `,` + ok + `,` + ok + `,{"speed_kmh":"fast"}]}`, "readings[3].speed_kmh", `want number, got "fast"`},
		{"camel case key kept", `{"readings":[{"speedKmh":true}]}`, "readings[0].speedKmh", "want number, got true"},
		{"unknown field", `{"readings":[` + ok + `,{"speed_kph":3}]}`, "readings[1].speed_kph", "unknown field"},
		{"bad timestamp", `{"readings":[{"observed_at":"yesterday"}]}`, "readings[0].observed_at", `want RFC 3339 timestamp string ("2026-11-30T07:00:00Z"), got "yesterday"`},
		{"negative unsigned", `{"readings":[{"interval_s":-5}]}`, "readings[0].interval_s", "want non-negative integer, got -5"},
		{"object for a list", `{"readings":{"detector_id":"D1"}}`, "readings", "want array, got object"},
		{"number for a reading", `{"readings":[3]}`, "readings[0]", "want object, got number"},
		{"weather", `{"weather":[{"temperature_c":"warm"}]}`, "weather[0].temperature_c", `want number, got "warm"`},
		{"top level", `{"batch_id":7}`, "batch_id", "want string, got 7"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodeBatchJSON([]byte(c.body))
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want a *FieldError", err)
			}
			if fe.Path != c.path || fe.Problem != c.problem {
				t.Errorf("got %q: %q, want %q: %q", fe.Path, fe.Problem, c.path, c.problem)
			}
		})
	}
	// Not JSON at all: protojson's own error, no path.
	if _, err := DecodeBatchJSON([]byte(`{"readings":[`)); err == nil || errors.As(err, new(*FieldError)) {
		t.Errorf("truncated body: err = %v, want a plain syntax error", err)
	}
}
