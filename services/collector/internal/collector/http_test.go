package collector

import (
	"encoding/json"
	"net/http"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// TestHTTPAllRejected: a well-formed batch whose every reading is rejected answers 422 with the ack listing each
// rejection (207 is for a batch with some readings accepted).
func TestHTTPAllRejected(t *testing.T) {
	f := newFixture(t)
	bad := reading("D1")
	bad.DetectorId = ""
	body, _ := protojson.Marshal(&greenwavev1.ReadingBatch{BatchId: "all-bad", Readings: []*greenwavev1.TrafficReading{bad, bad}})
	code, _, out := f.postJSON("/v1/readings", "application/json", tokenA, body)
	if code != http.StatusUnprocessableEntity {
		t.Fatalf("status %d, want 422: %v", code, out)
	}
	if rej, _ := out["rejected"].([]any); len(rej) != 2 || out["accepted_readings"] != 0.0 || out["batch_id"] != "all-bad" {
		t.Errorf("ack %v, want both readings listed as rejected", out)
	}
}

// TestHTTPMethodNotAllowed: a wrong method on an ingestion route answers 405 as JSON, with Allow.
func TestHTTPMethodNotAllowed(t *testing.T) {
	f := newFixture(t)
	for _, path := range []string{"/v1/readings", "/ngsi-ld/v1/entityOperations/upsert"} {
		resp, err := http.Get("http://" + f.addrs.HTTP + path)
		if err != nil {
			t.Fatal(err)
		}
		var out map[string]map[string]any
		decodeErr := json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" || decodeErr != nil || out["error"]["code"] == "" {
			t.Errorf("GET %s: %d Allow %q body %v (%v), want 405, Allow POST and a JSON error", path, resp.StatusCode, resp.Header.Get("Allow"), out, decodeErr)
		}
	}
}
