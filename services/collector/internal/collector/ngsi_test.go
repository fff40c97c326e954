package collector

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

const (
	routeUpsert = "/ngsi-ld/v1/entityOperations/upsert"
	routeNotify = "/ngsi-ld/v1/notify"
)

// recorded reads a spec-conformant payload from testdata/ngsi.
func recorded(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "ngsi", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// post sends body to path with the token ("" for none) and returns status, headers and the raw body.
func (f *fixture) post(path, contentType, token string, body []byte) (int, http.Header, []byte) {
	f.t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+f.addrs.HTTP+path, bytes.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, raw
}

// wantReadings checks that the recorded payloads' three entities reached Kafka: D1 and D2 on the readings topic,
// STN-1 on the weather topic, converted to canonical units, the same whichever form they were sent in.
func wantReadings(t *testing.T, f *fixture) {
	t.Helper()
	start := time.Date(2026, 11, 30, 7, 50, 0, 0, time.UTC)
	readings := map[string]*greenwavev1.TrafficReading{}
	for _, m := range f.records(f.names.Readings, 2) {
		var r greenwavev1.TrafficReading
		if err := proto.Unmarshal(m.Value, &r); err != nil {
			t.Fatal(err)
		}
		readings[r.GetDetectorId()] = &r
	}
	if len(readings) != 2 {
		t.Fatalf("readings topic holds %v, want D1 and D2", readings)
	}
	d1, d2 := readings["D1"], readings["D2"]
	if d1 == nil || d1.GetFlowVph() != 504 || d1.GetIntervalS() != 300 || !d1.GetObservedAt().AsTime().Equal(start) || d1.GetOccupancyRatio() != 0.18 ||
		d1.GetSpeedKmh() != 38.5 || d1.GetLaneId() != "1" || d1.GetIntersectionId() != "I-1" || d1.GetGatewayId() != "gw-a" || d1.GetReadingId() != fmt.Sprintf("D1@%d", start.Unix()) {
		t.Errorf("D1 = %v: want 42 vehicles in 5 min (504 veh/h) from 07:50, occupancy 0.18, 38.5 km/h, lane 1, id D1@<start>", d1)
	}
	if d2 == nil || d2.GetFlowVph() != 360 || d2.GetIntervalS() != 300 || math.Abs(d2.GetSpeedKmh()-36) > 1e-9 || d2.OccupancyRatio != nil || d2.GetLaneId() != "2" {
		t.Errorf("D2 = %v: want 360 veh/h, 36 km/h, no occupancy, lane 2", d2)
	}
	weather := f.records(f.names.Weather, 1)
	var w greenwavev1.WeatherReading
	if len(weather) != 1 || proto.Unmarshal(weather[0].Value, &w) != nil || w.GetStationId() != "STN-1" ||
		math.Abs(w.GetTemperatureC()-3.3) > 1e-9 || w.GetPrecipitationMmH() != 0.4 || !w.GetObservedAt().AsTime().Equal(start.Add(5*time.Minute)) {
		t.Errorf("weather %v: want STN-1 at 3.3 °C and 0.4 mm/h, observed 07:55", &w)
	}
}

// TestNGSIUpsertConformance posts the recorded batches, normalised and key-values, and checks the answer ETSI
// GS CIM 009 gives a batch upsert whose every entity is taken (201 with the ids) and the readings on the topics.
func TestNGSIUpsertConformance(t *testing.T) {
	for _, c := range []struct{ file, contentType string }{
		{"upsert-normalized.jsonld", "application/ld+json"},
		{"upsert-keyvalues.json", "application/json"},
	} {
		t.Run(c.file, func(t *testing.T) {
			f := newFixture(t)
			code, hdr, body := f.post(routeUpsert, c.contentType, tokenA, recorded(t, c.file))
			if code != http.StatusCreated || hdr.Get("Content-Type") != "application/json" {
				t.Fatalf("status %d %q, want 201 application/json: %s", code, hdr.Get("Content-Type"), body)
			}
			var ids []string
			if err := json.Unmarshal(body, &ids); err != nil {
				t.Fatalf("body %s is not an array of ids: %v", body, err)
			}
			want := []string{"urn:ngsi-ld:TrafficFlowObserved:D1", "urn:ngsi-ld:TrafficFlowObserved:D2", "urn:ngsi-ld:WeatherObserved:STN-1"}
			if !reflect.DeepEqual(ids, want) {
				t.Errorf("ids %v, want %v", ids, want)
			}
			wantReadings(t, f)
		})
	}
}

// batchOperationResultOf decodes a BatchOperationResult, failing on members the specification does not have.
func batchOperationResultOf(t *testing.T, body []byte) batchOperationResult {
	t.Helper()
	var res batchOperationResult
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&res); err != nil || res.Success == nil || res.Errors == nil {
		t.Fatalf("body %s is not a BatchOperationResult with success and errors arrays: %v", body, err)
	}
	return res
}

// TestNGSIUpsertMultiStatus: a batch with refused entities answers 207 with a BatchOperationResult naming the
// entities taken and a ProblemDetails per refused one; the taken ones are in Kafka before the answer. A batch
// whose every entity is refused answers 207 as well, with an empty success list, as the specification asks.
func TestNGSIUpsertMultiStatus(t *testing.T) {
	f := newFixture(t)
	code, hdr, body := f.post(routeUpsert, "application/json", tokenA, recorded(t, "upsert-partial.json"))
	if code != http.StatusMultiStatus || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d %q, want 207 application/json: %s", code, hdr.Get("Content-Type"), body)
	}
	res := batchOperationResultOf(t, body)
	if !reflect.DeepEqual(res.Success, []string{"urn:ngsi-ld:TrafficFlowObserved:D1"}) {
		t.Errorf("success %v, want only D1", res.Success)
	}
	want := []batchEntityError{
		{EntityID: "urn:ngsi-ld:TrafficFlowObserved:D2", Error: problemDetails{Type: problemBadRequestData, Title: "Bad request data", Status: 400,
			Reason: "REJECT_REASON_OUT_OF_RANGE", Field: "[1].averageVehicleSpeed"}},
		{EntityID: "urn:ngsi-ld:TrafficFlowObserved:X1", Error: problemDetails{Type: problemAboutBlank, Title: "Forbidden", Status: 403,
			Reason: "REJECT_REASON_PERMISSION_DENIED", Field: "[2].id"}},
		{EntityID: "urn:ngsi-ld:Vehicle:car-1", Error: problemDetails{Type: problemBadRequestData, Title: "Bad request data", Status: 400,
			Reason: "REJECT_REASON_MALFORMED", Field: "[3].type"}},
	}
	if len(res.Errors) != len(want) {
		t.Fatalf("errors %+v, want %d", res.Errors, len(want))
	}
	for i, e := range res.Errors {
		if e.Error.Detail == "" {
			t.Errorf("error %d has no detail: %+v", i, e)
		}
		e.Error.Detail = ""
		if !reflect.DeepEqual(e, want[i]) {
			t.Errorf("error %d = %+v, want %+v", i, e, want[i])
		}
	}
	if got := f.records(f.names.Readings, 2); len(got) != 1 {
		t.Errorf("%d readings in Kafka, want D1's", len(got))
	}
	if got := f.counter(f.svc.metrics.rejected.WithLabelValues("traffic", "out_of_range", "gw-a")); got != 1 {
		t.Errorf("out_of_range rejections counted %v, want 1", got)
	}

	code, _, body = f.post(routeUpsert, "application/json", tokenA, []byte(`[{"id":"urn:ngsi-ld:TrafficFlowObserved:D1","type":"TrafficFlowObserved"}]`))
	if res := batchOperationResultOf(t, body); code != http.StatusMultiStatus || len(res.Success) != 0 || len(res.Errors) != 1 ||
		res.Errors[0].Error.Reason != "REJECT_REASON_MISSING_FIELD" {
		t.Errorf("every entity refused: %d %s, want 207 with no success and one error", code, body)
	}
}

// problemOfBody decodes a ProblemDetails body and checks its media type and mandatory members.
func problemOfBody(t *testing.T, code int, hdr http.Header, body []byte) problemDetails {
	t.Helper()
	var p problemDetails
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("status %d: body %s is not JSON: %v", code, body, err)
	}
	if hdr.Get("Content-Type") != "application/problem+json" || p.Status != code || p.Type == "" || p.Title == "" || p.Detail == "" {
		t.Errorf("status %d, Content-Type %q, problem %+v: want application/problem+json with type, title, status and detail", code, hdr.Get("Content-Type"), p)
	}
	return p
}

// TestNGSIProblems: requests refused as a whole answer application/problem+json with the NGSI-LD error type,
// on both NGSI-LD routes.
func TestNGSIProblems(t *testing.T) {
	f := newFixture(t)
	notification := func(data string) string {
		return `{"id":"urn:ngsi-ld:Notification:1","type":"Notification","data":` + data + `}`
	}
	x1 := `[{"id":"urn:ngsi-ld:TrafficFlowObserved:X1","type":"TrafficFlowObserved","dateObservedFrom":"2026-11-30T07:50:00Z","dateObservedTo":"2026-11-30T07:55:00Z","intensity":7}]`
	d1 := strings.ReplaceAll(x1, "X1", "D1")
	many := "[" + strings.TrimSuffix(strings.Repeat(strings.Trim(d1, "[]")+",", 51), ",") + "]"
	huge := "[" + strings.Repeat(" ", 70<<10) + "]"
	cases := []struct {
		name, path, contentType, token, body string
		status                               int
		typ, field                           string
	}{
		{"upsert not an array", routeUpsert, "application/ld+json", tokenA, `{"id":"x"}`, 400, problemInvalidRequest, "body"},
		{"upsert broken json", routeUpsert, "application/json", tokenA, `[{"id":`, 400, problemInvalidRequest, "body"},
		{"upsert empty", routeUpsert, "application/json", tokenA, `[]`, 400, problemBadRequestData, "readings"},
		{"upsert no token", routeUpsert, "application/json", "", d1, 401, problemAboutBlank, ""},
		{"upsert unknown token", routeUpsert, "application/json", "not-a-token", d1, 401, problemAboutBlank, ""},
		{"upsert nothing allowed", routeUpsert, "application/json", tokenA, x1, 403, problemAboutBlank, "[0].id"},
		{"upsert too many entities", routeUpsert, "application/json", tokenA, many, 413, problemAboutBlank, "readings"},
		{"upsert body too large", routeUpsert, "application/json", tokenA, huge, 413, problemAboutBlank, "body"},
		{"upsert wrong content type", routeUpsert, "application/xml", tokenA, `<a/>`, 415, problemAboutBlank, "Content-Type"},
		{"notify entity array", routeNotify, "application/json", tokenA, d1, 400, problemInvalidRequest, "body"},
		{"notify other type", routeNotify, "application/json", tokenA, `{"type":"Subscription","data":[]}`, 400, problemInvalidRequest, "body"},
		{"notify no data", routeNotify, "application/json", tokenA, notification(`[]`), 400, problemBadRequestData, "readings"},
		{"notify no token", routeNotify, "application/json", "", notification(d1), 401, problemAboutBlank, ""},
		{"notify nothing allowed", routeNotify, "application/ld+json", tokenA, notification(x1), 403, problemAboutBlank, "[0].id"},
		{"notify too many entities", routeNotify, "application/json", tokenA, notification(many), 413, problemAboutBlank, "readings"},
		{"notify body too large", routeNotify, "application/json", tokenA, notification(huge), 413, problemAboutBlank, "body"},
		{"notify wrong content type", routeNotify, "text/plain", tokenA, notification(d1), 415, problemAboutBlank, "Content-Type"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, hdr, body := f.post(c.path, c.contentType, c.token, []byte(c.body))
			if code != c.status {
				t.Fatalf("status %d, want %d: %s", code, c.status, body)
			}
			p := problemOfBody(t, code, hdr, body)
			if p.Type != c.typ {
				t.Errorf("type %q, want %q", p.Type, c.typ)
			}
			if c.typ == problemAboutBlank && p.Title != http.StatusText(code) {
				t.Errorf("title %q, want the status text %q", p.Title, http.StatusText(code))
			}
			if c.field != "" && (len(p.FieldViolations) == 0 || p.FieldViolations[0].Field != c.field) {
				t.Errorf("field violations %+v, want %q first", p.FieldViolations, c.field)
			}
			switch code {
			case http.StatusUnauthorized:
				if hdr.Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
			case http.StatusUnsupportedMediaType:
				if hdr.Get("Accept-Post") != "application/json, application/ld+json" {
					t.Errorf("Accept-Post %q, want both JSON types", hdr.Get("Accept-Post"))
				}
			}
		})
	}
	if got := f.records(f.names.Readings, 2); len(got) != 0 {
		t.Errorf("%d readings in Kafka after refused requests only", len(got))
	}
	if got := f.counter(f.svc.metrics.invalid.WithLabelValues("ngsi_notify", "unsupported_media_type")); got != 1 {
		t.Errorf("notify unsupported_media_type counted %v, want 1", got)
	}
}

// TestNGSIKafkaDown: when the Kafka write fails nothing is acknowledged: 503 problem+json with Retry-After, on
// both routes, and the resent request succeeds.
func TestNGSIKafkaDown(t *testing.T) {
	f := newFixture(t)
	f.pub.setFail(errors.New("broker gone"))
	for _, c := range []struct{ path, file string }{{routeUpsert, "upsert-keyvalues.json"}, {routeNotify, "notification-keyvalues.json"}} {
		code, hdr, body := f.post(c.path, "application/json", tokenA, recorded(t, c.file))
		if p := problemOfBody(t, code, hdr, body); code != http.StatusServiceUnavailable || hdr.Get("Retry-After") != "1" || p.RetryAfterS != 1 {
			t.Errorf("%s with Kafka down: %d Retry-After %q %+v, want 503 and 1 s", c.path, code, hdr.Get("Retry-After"), p)
		}
	}
	f.pub.setFail(nil)
	if code, _, body := f.post(routeNotify, "application/json", tokenA, recorded(t, "notification-keyvalues.json")); code != http.StatusNoContent {
		t.Fatalf("resent notification: %d %s, want 204", code, body)
	}
	wantReadings(t, f)
}

// TestNGSINotify posts the recorded notifications of a subscription, normalised (JSON-LD, @context in the body)
// and key-values (JSON): 204, and the readings reach Kafka as from the upsert route.
func TestNGSINotify(t *testing.T) {
	for _, c := range []struct{ file, contentType string }{
		{"notification-normalized.jsonld", "application/ld+json"},
		{"notification-keyvalues.json", "application/json"},
	} {
		t.Run(c.file, func(t *testing.T) {
			f := newFixture(t)
			code, _, body := f.post(routeNotify, c.contentType, tokenA, recorded(t, c.file))
			if code != http.StatusNoContent || len(body) != 0 {
				t.Fatalf("status %d %s, want 204 without a body", code, body)
			}
			wantReadings(t, f)
			if got := f.counter(f.svc.metrics.accepted.WithLabelValues("traffic", "gw-a")); got != 2 {
				t.Errorf("accepted traffic counted %v, want 2", got)
			}
		})
	}
}

// TestNGSINotifyPartial: a notification with refused entities still delivers the valid ones (200 with the
// BatchOperationResult; the broker does not resend); one with none valid answers 400 so that the failure shows
// in the subscription's status on the broker.
func TestNGSINotifyPartial(t *testing.T) {
	f := newFixture(t)
	partial := recorded(t, "upsert-partial.json")
	body := append(append([]byte(`{"id":"urn:ngsi-ld:Notification:p","type":"Notification","subscriptionId":"urn:ngsi-ld:Subscription:s","data":`), partial...), '}')
	code, hdr, out := f.post(routeNotify, "application/json", tokenA, body)
	if code != http.StatusOK || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d %q, want 200 application/json: %s", code, hdr.Get("Content-Type"), out)
	}
	res := batchOperationResultOf(t, out)
	if !reflect.DeepEqual(res.Success, []string{"urn:ngsi-ld:TrafficFlowObserved:D1"}) || len(res.Errors) != 3 || res.Errors[0].Error.Field != "[1].averageVehicleSpeed" {
		t.Errorf("result %+v, want D1 taken and three errors", res)
	}
	if got := f.records(f.names.Readings, 2); len(got) != 1 {
		t.Errorf("%d readings in Kafka, want D1's", len(got))
	}
	if got := f.counter(f.svc.metrics.rejected.WithLabelValues("traffic", "permission_denied", "gw-a")); got != 1 {
		t.Errorf("permission_denied rejections counted %v, want 1", got)
	}

	none := `{"id":"urn:ngsi-ld:Notification:n","type":"Notification","data":[{"id":"urn:ngsi-ld:TrafficFlowObserved:D1","type":"TrafficFlowObserved","dateObserved":"2026-11-30T07:55:00Z"}]}`
	code, hdr, out = f.post(routeNotify, "application/json", tokenA, []byte(none))
	p := problemOfBody(t, code, hdr, out)
	if code != http.StatusBadRequest || p.Type != problemBadRequestData || len(p.Errors) != 1 ||
		p.Errors[0].EntityID != "urn:ngsi-ld:TrafficFlowObserved:D1" || p.Errors[0].Error.Field != "[0].dateObservedFrom" {
		t.Errorf("nothing valid: %d %+v, want 400 BadRequestData listing D1's missing interval", code, p)
	}
}

// TestNGSIRateLimited: the gateway's token bucket counts a notification's entities as it counts a batch's
// readings; over the limit the answer is 429 problem+json with Retry-After.
func TestNGSIRateLimited(t *testing.T) {
	f := newFixture(t)
	entity := `{"id":"urn:ngsi-ld:TrafficFlowObserved:X1","type":"TrafficFlowObserved","dateObservedFrom":"2026-11-30T07:50:00Z","dateObservedTo":"2026-11-30T07:55:00Z","intensity":7}`
	body := []byte(`{"type":"Notification","data":[` + strings.TrimSuffix(strings.Repeat(entity+",", 5), ",") + `]}`)
	if code, _, out := f.post(routeNotify, "application/json", tokenB, body); code != http.StatusNoContent {
		t.Fatalf("burst of 5: %d %s, want 204", code, out)
	}
	code, hdr, out := f.post(routeNotify, "application/json", tokenB, body)
	if p := problemOfBody(t, code, hdr, out); code != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" || p.Type != problemAboutBlank {
		t.Errorf("over the limit: %d Retry-After %q %+v, want 429 about:blank with Retry-After", code, hdr.Get("Retry-After"), p)
	}
}

// TestNGSIAnonymous: with anonymous ingestion on, a broker without receiverInfo headers is accepted as gateway
// "anonymous", and a token that is sent is still checked.
func TestNGSIAnonymous(t *testing.T) {
	f := newFixture(t, func(o *Options, _ *serverConfig) { o.AllowAnonymous = true })
	if code, _, out := f.post(routeNotify, "application/json", "", recorded(t, "notification-keyvalues.json")); code != http.StatusNoContent {
		t.Fatalf("anonymous notification: %d %s, want 204", code, out)
	}
	if got := f.counter(f.svc.metrics.accepted.WithLabelValues("traffic", "anonymous")); got != 2 {
		t.Errorf("accepted for anonymous %v, want 2", got)
	}
	code, hdr, out := f.post(routeNotify, "application/json", "not-a-token", recorded(t, "notification-keyvalues.json"))
	if problemOfBody(t, code, hdr, out); code != http.StatusUnauthorized {
		t.Errorf("unknown token with anonymous on: %d, want 401", code)
	}
}

// TestDocsSubscription holds docs/collector.md's subscription to the code: it is a JSON NGSI-LD Subscription for
// both entity types whose endpoint is the notify route with a bearer token in receiverInfo, in a format and
// accept type the route takes.
func TestDocsSubscription(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "docs", "collector.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "<<'JSON'\n")
	body, _, ok2 := strings.Cut(rest, "\nJSON\n")
	if !ok || !ok2 {
		t.Fatal("docs/collector.md has no subscription between <<'JSON' and JSON")
	}
	var sub struct {
		Type     string `json:"type"`
		Entities []struct {
			Type string `json:"type"`
		} `json:"entities"`
		WatchedAttributes []string `json:"watchedAttributes"`
		Notification      struct {
			Format   string `json:"format"`
			Endpoint struct {
				URI          string                        `json:"uri"`
				Accept       string                        `json:"accept"`
				ReceiverInfo []struct{ Key, Value string } `json:"receiverInfo"`
			} `json:"endpoint"`
		} `json:"notification"`
		Context []string `json:"@context"`
	}
	if err := json.Unmarshal([]byte(body), &sub); err != nil {
		t.Fatalf("the documented subscription is not JSON: %v", err)
	}
	ep := sub.Notification.Endpoint
	if sub.Type != "Subscription" || len(sub.Entities) != 2 || sub.Entities[0].Type != "TrafficFlowObserved" || sub.Entities[1].Type != "WeatherObserved" ||
		len(sub.WatchedAttributes) == 0 || len(sub.Context) == 0 {
		t.Errorf("subscription %+v: want both entity types, watched attributes and an @context", sub)
	}
	if !strings.HasSuffix(ep.URI, strings.TrimPrefix(RouteNGSINotify, "POST ")) || !slices.Contains(ngsiContentTypes, ep.Accept) ||
		(sub.Notification.Format != "normalized" && sub.Notification.Format != "keyValues") {
		t.Errorf("notification %+v: want the notify route, an accepted type and a known format", sub.Notification)
	}
	if len(ep.ReceiverInfo) != 1 || ep.ReceiverInfo[0].Key != "Authorization" || !strings.HasPrefix(ep.ReceiverInfo[0].Value, "Bearer ") {
		t.Errorf("receiverInfo %+v: want the Authorization bearer header", ep.ReceiverInfo)
	}
}

// TestNGSISpeedOnly: a TrafficFlowObserved entity with averageVehicleSpeed (or occupancy) but no intensity — a
// freeway speed station — is accepted and reaches the readings topic marked count_absent with its speed; one with
// none of intensity, occupancy and averageVehicleSpeed is refused on intensity.
func TestNGSISpeedOnly(t *testing.T) {
	f := newFixture(t)
	from, to := testNow.Add(-6*time.Minute).Truncate(time.Minute), testNow.Add(-time.Minute).Truncate(time.Minute)
	entity := func(det, attrs string) string {
		return fmt.Sprintf(`{"id":"urn:ngsi-ld:TrafficFlowObserved:%s","type":"TrafficFlowObserved","dateObservedFrom":%q,"dateObservedTo":%q%s}`,
			det, from.Format(time.RFC3339), to.Format(time.RFC3339), attrs)
	}
	body := "[" + entity("D1", `,"averageVehicleSpeed":{"value":25,"unitCode":"MTS"}`) + "," + entity("D2", `,"intensity":-1`) + "]"
	code, _, out := f.post(routeUpsert, "application/json", tokenA, []byte(body))
	res := batchOperationResultOf(t, out)
	if code != http.StatusMultiStatus || !reflect.DeepEqual(res.Success, []string{"urn:ngsi-ld:TrafficFlowObserved:D1"}) || len(res.Errors) != 1 ||
		res.Errors[0].Error.Reason != "REJECT_REASON_MISSING_FIELD" || res.Errors[0].Error.Field != "[1].intensity" {
		t.Fatalf("status %d %s: want D1 taken and D2 refused (missing_field on [1].intensity)", code, out)
	}
	recs := f.records(f.names.Readings, 1)
	if len(recs) != 1 {
		t.Fatalf("%d readings in Kafka, want D1's", len(recs))
	}
	var r greenwavev1.TrafficReading
	if err := proto.Unmarshal(recs[0].Value, &r); err != nil {
		t.Fatal(err)
	}
	if !r.GetCountAbsent() || r.GetCount() != 0 || r.GetFlowVph() != 0 || r.SpeedKmh == nil || r.GetSpeedKmh() != 90 || r.OccupancyRatio != nil {
		t.Errorf("reading on the topic %v, want count_absent with speed 90 km/h", &r)
	}
}
