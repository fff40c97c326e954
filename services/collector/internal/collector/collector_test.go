package collector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/greenwave-city/greenwave/pkg/stream"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

type rejectionCase struct {
	name    string
	traffic *greenwavev1.TrafficReading
	weather *greenwavev1.WeatherReading
	reason  greenwavev1.RejectReason
	field   string
}

func rejectionCases() []rejectionCase {
	mod := func(f func(r *greenwavev1.TrafficReading)) *greenwavev1.TrafficReading {
		r := reading("D2")
		f(r)
		return r
	}
	w := func(f func(w *greenwavev1.WeatherReading)) *greenwavev1.WeatherReading {
		x := &greenwavev1.WeatherReading{StationId: "STN-1", ObservedAt: timestamppb.New(testNow.Add(-time.Minute)), TemperatureC: proto.Float64(4)}
		f(x)
		return x
	}
	return []rejectionCase{
		{"missing detector", mod(func(r *greenwavev1.TrafficReading) { r.DetectorId = "" }), nil, greenwavev1.RejectReason_REJECT_REASON_MISSING_FIELD, "readings[1].detector_id"},
		{"unknown detector", mod(func(r *greenwavev1.TrafficReading) { r.DetectorId = "NOPE" }), nil, greenwavev1.RejectReason_REJECT_REASON_UNKNOWN_DETECTOR, "readings[1].detector_id"},
		{"wrong intersection", mod(func(r *greenwavev1.TrafficReading) { r.IntersectionId = "I-2" }), nil, greenwavev1.RejectReason_REJECT_REASON_INCONSISTENT, "readings[1].intersection_id"},
		{"forbidden detector", mod(func(r *greenwavev1.TrafficReading) { r.DetectorId = "X1" }), nil, greenwavev1.RejectReason_REJECT_REASON_PERMISSION_DENIED, "readings[1].detector_id"},
		{"missing time", mod(func(r *greenwavev1.TrafficReading) { r.ObservedAt = nil }), nil, greenwavev1.RejectReason_REJECT_REASON_MISSING_FIELD, "readings[1].observed_at"},
		{"future", mod(func(r *greenwavev1.TrafficReading) { r.ObservedAt = timestamppb.New(testNow.Add(time.Hour)) }), nil, greenwavev1.RejectReason_REJECT_REASON_FUTURE_TIMESTAMP, "readings[1].observed_at"},
		{"too old", mod(func(r *greenwavev1.TrafficReading) { r.ObservedAt = timestamppb.New(testNow.AddDate(0, -2, 0)) }), nil, greenwavev1.RejectReason_REJECT_REASON_TOO_OLD, "readings[1].observed_at"},
		{"missing interval", mod(func(r *greenwavev1.TrafficReading) { r.IntervalS = 0 }), nil, greenwavev1.RejectReason_REJECT_REASON_MISSING_FIELD, "readings[1].interval_s"},
		{"interval too long", mod(func(r *greenwavev1.TrafficReading) { r.IntervalS = 7200 }), nil, greenwavev1.RejectReason_REJECT_REASON_OUT_OF_RANGE, "readings[1].interval_s"},
		{"negative count", mod(func(r *greenwavev1.TrafficReading) { r.Count = -3 }), nil, greenwavev1.RejectReason_REJECT_REASON_OUT_OF_RANGE, "readings[1].count"},
		{"flow above capacity", mod(func(r *greenwavev1.TrafficReading) { r.Count = 500 }), nil, greenwavev1.RejectReason_REJECT_REASON_OUT_OF_RANGE, "readings[1].count"},
		{"occupancy above 1", mod(func(r *greenwavev1.TrafficReading) { r.OccupancyRatio = proto.Float64(7) }), nil, greenwavev1.RejectReason_REJECT_REASON_OUT_OF_RANGE, "readings[1].occupancy_ratio"},
		{"speed too high", mod(func(r *greenwavev1.TrafficReading) { r.SpeedKmh = proto.Float64(900) }), nil, greenwavev1.RejectReason_REJECT_REASON_OUT_OF_RANGE, "readings[1].speed_kmh"},
		{"no quantity", mod(func(r *greenwavev1.TrafficReading) {
			r.Count, r.CountAbsent, r.OccupancyRatio, r.SpeedKmh = 0, true, nil, nil
		}), nil, greenwavev1.RejectReason_REJECT_REASON_MISSING_FIELD, "readings[1].count"},
		{"count marked absent", mod(func(r *greenwavev1.TrafficReading) { r.Count, r.CountAbsent, r.SpeedKmh = 4, true, proto.Float64(80) }), nil, greenwavev1.RejectReason_REJECT_REASON_INCONSISTENT, "readings[1].count"},
		{"newer schema", mod(func(r *greenwavev1.TrafficReading) { r.SchemaVersion = 9 }), nil, greenwavev1.RejectReason_REJECT_REASON_UNSUPPORTED_SCHEMA, "readings[1].schema_version"},
		{"id too long", mod(func(r *greenwavev1.TrafficReading) { r.ReadingId = strings.Repeat("x", 200) }), nil, greenwavev1.RejectReason_REJECT_REASON_OUT_OF_RANGE, "readings[1].reading_id"},
		{"weather missing station", nil, w(func(w *greenwavev1.WeatherReading) { w.StationId = "" }), greenwavev1.RejectReason_REJECT_REASON_MISSING_FIELD, "weather[0].station_id"},
		{"weather forbidden station", nil, w(func(w *greenwavev1.WeatherReading) { w.StationId = "STN-2" }), greenwavev1.RejectReason_REJECT_REASON_PERMISSION_DENIED, "weather[0].station_id"},
		{"weather temperature", nil, w(func(w *greenwavev1.WeatherReading) { w.TemperatureC = proto.Float64(300) }), greenwavev1.RejectReason_REJECT_REASON_OUT_OF_RANGE, "weather[0].temperature_c"},
		{"weather future", nil, w(func(w *greenwavev1.WeatherReading) { w.ObservedAt = timestamppb.New(testNow.Add(time.Hour)) }), greenwavev1.RejectReason_REJECT_REASON_FUTURE_TIMESTAMP, "weather[0].observed_at"},
	}
}

// batch is a batch holding one good reading (D1) and the case's bad reading.
func (c rejectionCase) batch() *greenwavev1.ReadingBatch {
	b := &greenwavev1.ReadingBatch{BatchId: "b-" + c.name, Readings: []*greenwavev1.TrafficReading{reading("D1")}}
	if c.traffic != nil {
		b.Readings = append(b.Readings, c.traffic)
	}
	if c.weather != nil {
		b.Weather = append(b.Weather, c.weather)
	}
	return b
}

func checkRejected(t *testing.T, ack *greenwavev1.BatchAck, c rejectionCase) {
	t.Helper()
	if ack.GetAcceptedReadings() != 1 || len(ack.GetRejected()) != 1 {
		t.Fatalf("ack = %v, want 1 accepted and 1 rejected", ack)
	}
	r := ack.GetRejected()[0]
	if r.GetReason() != c.reason || r.GetField() != c.field || r.GetDescription() == "" {
		t.Errorf("rejected = %v, want reason %v on %s with a description", r, c.reason, c.field)
	}
}

func TestRejectionReasons(t *testing.T) {
	f := newFixture(t)
	t.Run("grpc", func(t *testing.T) {
		for _, c := range rejectionCases() {
			t.Run(c.name, func(t *testing.T) {
				resp, err := f.client.PublishReadings(withToken(testCtx(t), tokenA), &greenwavev1.PublishReadingsRequest{Batch: c.batch()})
				if err != nil {
					t.Fatal(err)
				}
				checkRejected(t, resp.GetAck(), c)
			})
		}
	})
	t.Run("http", func(t *testing.T) {
		for _, c := range rejectionCases() {
			t.Run(c.name, func(t *testing.T) {
				body, _ := protojson.Marshal(c.batch())
				code, _, out := f.postJSON("/v1/readings", "application/json", tokenA, body)
				if code != http.StatusMultiStatus {
					t.Fatalf("status %d, want 207: %v", code, out)
				}
				var ack greenwavev1.BatchAck
				raw, _ := jsonMarshal(out)
				if err := protojson.Unmarshal(raw, &ack); err != nil {
					t.Fatal(err)
				}
				checkRejected(t, &ack, c)
			})
		}
	})
	if got := f.counter(f.svc.metrics.rejected.WithLabelValues("traffic", "permission_denied", "gw-a")); got != 2 {
		t.Errorf("permission_denied rejections counted %v, want 2", got)
	}
}

func badRequestFields(t *testing.T, err error) []string {
	t.Helper()
	var fields []string
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				fields = append(fields, v.GetField())
			}
		}
	}
	return fields
}

func TestWhollyInvalidRequests(t *testing.T) {
	f := newFixture(t, func(o *Options, _ *serverConfig) { o.MaxMessageBytes = 16384 })
	many := &greenwavev1.ReadingBatch{}
	for range 51 {
		many.Readings = append(many.Readings, reading("D1"))
	}
	huge := &greenwavev1.ReadingBatch{Readings: []*greenwavev1.TrafficReading{reading("D1")}, BatchId: strings.Repeat("x", 100)}
	huge.Readings[0].LaneId = strings.Repeat("l", 20000)
	grpcCases := []struct {
		name  string
		batch *greenwavev1.ReadingBatch
		code  codes.Code
		field string
	}{
		{"empty", &greenwavev1.ReadingBatch{}, codes.InvalidArgument, "readings"},
		{"nil batch", nil, codes.InvalidArgument, "readings"},
		{"too many readings", many, codes.InvalidArgument, "readings"},
		{"message too large", huge, codes.ResourceExhausted, ""},
	}
	for _, c := range grpcCases {
		t.Run("grpc/"+c.name, func(t *testing.T) {
			_, err := f.client.PublishReadings(withToken(testCtx(t), tokenA), &greenwavev1.PublishReadingsRequest{Batch: c.batch})
			if status.Code(err) != c.code {
				t.Fatalf("err = %v, want %v", err, c.code)
			}
			if c.field != "" {
				if got := badRequestFields(t, err); len(got) != 1 || got[0] != c.field {
					t.Errorf("field violations %v, want [%s]", got, c.field)
				}
			}
		})
	}
	manyJSON, _ := protojson.Marshal(many)
	httpCases := []struct {
		name, path, contentType, body string
		code                          int
		field                         string
	}{
		{"malformed", "/v1/readings", "application/json", `{"readings": [`, 400, "body"},
		{"unknown field", "/v1/readings", "application/json", `{"readings": [{"speed_kph": 3}]}`, 400, "readings[0].speed_kph"},
		{"wrong type", "/v1/readings", "application/json", `{"readings": [{"detector_id": "D1"}, {"speed_kmh": "fast"}]}`, 400, "readings[1].speed_kmh"},
		{"empty", "/v1/readings", "application/json", `{}`, 400, "readings"},
		{"too many readings", "/v1/readings", "application/json", string(manyJSON), 413, "readings"},
		{"body too large", "/v1/readings", "application/json", `{"batch_id": "` + strings.Repeat("x", 20000) + `"}`, 413, "body"},
		{"wrong content type", "/v1/readings", "text/csv", `a,b`, 415, "Content-Type"},
		// The NGSI-LD routes answer these as application/problem+json: TestNGSIProblems.
	}
	for _, c := range httpCases {
		t.Run("http/"+c.name, func(t *testing.T) {
			code, header, out := f.postJSON(c.path, c.contentType, tokenA, []byte(c.body))
			if code != c.code {
				t.Fatalf("status %d, want %d: %v", code, c.code, out)
			}
			if code == http.StatusUnsupportedMediaType && !strings.Contains(header.Get("Accept-Post"), "application/json") {
				t.Errorf("415 without Accept-Post naming application/json: %q", header.Get("Accept-Post"))
			}
			e, _ := out["error"].(map[string]any)
			fv, _ := e["field_violations"].([]any)
			if len(fv) != 1 || fv[0].(map[string]any)["field"] != c.field || e["message"] == "" {
				t.Errorf("error body %v, want one violation of %q", out, c.field)
			}
		})
	}
	if got := f.counter(f.svc.metrics.invalid.WithLabelValues("http", "unsupported_media_type")); got != 1 {
		t.Errorf("unsupported_media_type counted %v, want 1", got)
	}
}

func TestRateLimit(t *testing.T) {
	f := newFixture(t)
	batchOf := func(n int, from int) *greenwavev1.ReadingBatch {
		b := &greenwavev1.ReadingBatch{}
		for i := range n {
			r := reading("X1")
			r.ObservedAt = timestamppb.New(testNow.Add(-time.Duration(from+i+1) * time.Minute))
			b.Readings = append(b.Readings, r)
		}
		return b
	}
	ctx := withToken(testCtx(t), tokenB)
	if _, err := f.client.PublishReadings(ctx, &greenwavev1.PublishReadingsRequest{Batch: batchOf(5, 0)}); err != nil {
		t.Fatalf("burst of 5: %v", err)
	}
	_, err := f.client.PublishReadings(ctx, &greenwavev1.PublishReadingsRequest{Batch: batchOf(1, 5)})
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("over the limit: %v, want ResourceExhausted", err)
	}
	var retry *errdetails.RetryInfo
	for _, d := range status.Convert(err).Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			retry = ri
		}
	}
	if retry == nil || retry.GetRetryDelay().AsDuration() != 100*time.Millisecond {
		t.Fatalf("retry info %v, want 100ms (one reading at 10/s)", retry)
	}
	body, _ := protojson.Marshal(batchOf(1, 5))
	code, hdr, _ := f.postJSON("/v1/readings", "application/json", tokenB, body)
	if code != http.StatusTooManyRequests || hdr.Get("Retry-After") != "1" {
		t.Errorf("HTTP over the limit: %d Retry-After %q, want 429 and 1", code, hdr.Get("Retry-After"))
	}
	f.clock.Advance(100 * time.Millisecond)
	if _, err := f.client.PublishReadings(ctx, &greenwavev1.PublishReadingsRequest{Batch: batchOf(1, 5)}); err != nil {
		t.Errorf("after the retry delay: %v", err)
	}
	if _, err := f.client.PublishReadings(ctx, &greenwavev1.PublishReadingsRequest{Batch: batchOf(6, 10)}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("batch above the burst: %v, want InvalidArgument", err)
	}
	if got := f.counter(f.svc.metrics.rateLimited.WithLabelValues("gw-b")); got != 2 {
		t.Errorf("rate-limited batches counted %v, want 2", got)
	}
}

// TestAcceptedReadingsOnTopic reads the topics back: right key, id header and content, and the same ids when
// the gateway resends a batch (after a lost ack).
func TestAcceptedReadingsOnTopic(t *testing.T) {
	f := newFixture(t)
	r1, r2 := reading("D1"), reading("D3")
	r2.ReadingId = "client-chosen-1"
	batch := &greenwavev1.ReadingBatch{BatchId: "b1", Readings: []*greenwavev1.TrafficReading{r1, r2},
		Weather: []*greenwavev1.WeatherReading{{StationId: "STN-1", ObservedAt: timestamppb.New(testNow.Add(-time.Minute)), TemperatureC: proto.Float64(3)}}}
	for range 2 { // the second send is a resend
		resp, err := f.client.PublishReadings(withToken(testCtx(t), tokenA), &greenwavev1.PublishReadingsRequest{Batch: batch})
		if err != nil || resp.GetAck().GetAcceptedReadings() != 2 || resp.GetAck().GetAcceptedWeather() != 1 || resp.GetAck().GetBatchId() != "b1" {
			t.Fatalf("publish: %v %v", resp, err)
		}
	}
	wantID := fmt.Sprintf("D1@%d", testNow.Add(-time.Minute).Unix())
	recs := f.records(f.names.Readings, 2)
	if len(recs) != 4 {
		t.Fatalf("%d records on the readings topic, want 4", len(recs))
	}
	ids := map[string]int{}
	for _, m := range recs {
		var r greenwavev1.TrafficReading
		if err := proto.Unmarshal(m.Value, &r); err != nil {
			t.Fatal(err)
		}
		if string(m.Key) != "I-1" || r.GetIntersectionId() != "I-1" || r.GetGatewayId() != "gw-a" || r.GetSchemaVersion() != 1 {
			t.Errorf("record key %q reading %v", m.Key, &r)
		}
		if got := string(stream.Header(m, stream.HeaderEventID)); got != r.GetReadingId() {
			t.Errorf("event id header %q, reading id %q", got, r.GetReadingId())
		}
		if p, v := string(stream.Header(m, stream.HeaderPayload)), string(stream.Header(m, stream.HeaderSchemaVersion)); p != "greenwave.v1.TrafficReading" || v != "1" {
			t.Errorf("payload header %q schema version %q, want greenwave.v1.TrafficReading 1", p, v)
		}
		if r.GetDetectorId() == "D1" && r.GetFlowVph() != 600 {
			t.Errorf("flow %v, want 600 veh/h from 10 in 60 s", r.GetFlowVph())
		}
		ids[r.GetReadingId()]++
	}
	if ids[wantID] != 2 || ids["client-chosen-1"] != 2 {
		t.Errorf("ids %v: want %s and client-chosen-1 twice each (a resend keeps its ids)", ids, wantID)
	}
	weather := f.records(f.names.Weather, 1)
	if len(weather) != 2 || string(weather[0].Key) != "STN-1" {
		t.Errorf("weather records %v", weather)
	}
}

func TestStreamPipelinesAndAcksInOrder(t *testing.T) {
	f := newFixture(t)
	ctx := withToken(testCtx(t), tokenA)
	st, err := f.client.StreamReadings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	go func() {
		for i := range n {
			r := reading("D1")
			r.ObservedAt = timestamppb.New(testNow.Add(-time.Duration(i+1) * time.Minute))
			if err := st.Send(&greenwavev1.StreamReadingsRequest{Batch: &greenwavev1.ReadingBatch{BatchId: fmt.Sprint(i), Readings: []*greenwavev1.TrafficReading{r}}}); err != nil {
				return
			}
		}
		_ = st.CloseSend()
	}()
	for i := range n {
		resp, err := st.Recv()
		if err != nil {
			t.Fatalf("ack %d: %v", i, err)
		}
		if resp.GetAck().GetBatchId() != fmt.Sprint(i) || resp.GetAck().GetAcceptedReadings() != 1 {
			t.Fatalf("ack %d = %v, want batch %d", i, resp.GetAck(), i)
		}
	}
	if _, err := st.Recv(); err == nil {
		t.Error("stream did not end after the last ack")
	}
	recs := f.records(f.names.Readings, 2)
	if len(recs) != n {
		t.Fatalf("%d records, want %d", len(recs), n)
	}
	// Batches are validated concurrently, but their records reach Kafka in the order the gateway sent them
	// (all of one intersection, so one partition): a replayed history stays in event-time order.
	for i, m := range recs {
		var r greenwavev1.TrafficReading
		if err := proto.Unmarshal(m.Value, &r); err != nil {
			t.Fatal(err)
		}
		if want := testNow.Add(-time.Duration(i+1) * time.Minute); !r.GetObservedAt().AsTime().Equal(want) {
			t.Fatalf("record %d observed at %s, want %s: batches reached Kafka out of order", i, r.GetObservedAt().AsTime(), want)
		}
	}
}

func TestKafkaFailureAcknowledgesNothing(t *testing.T) {
	f := newFixture(t)
	f.pub.setFail(errors.New("broker down"))
	batch := &greenwavev1.ReadingBatch{BatchId: "b", Readings: []*greenwavev1.TrafficReading{reading("D1")}}
	ctx := withToken(testCtx(t), tokenA)
	if _, err := f.client.PublishReadings(ctx, &greenwavev1.PublishReadingsRequest{Batch: batch}); status.Code(err) != codes.Unavailable {
		t.Errorf("unary: %v, want Unavailable", err)
	}
	st, err := f.client.StreamReadings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = st.Send(&greenwavev1.StreamReadingsRequest{Batch: batch})
	if resp, err := st.Recv(); status.Code(err) != codes.Unavailable {
		t.Errorf("stream: %v %v, want Unavailable and no ack", resp, err)
	}
	body, _ := protojson.Marshal(batch)
	if code, hdr, _ := f.postJSON("/v1/readings", "application/json", tokenA, body); code != 503 || hdr.Get("Retry-After") == "" {
		t.Errorf("HTTP %d, want 503 with Retry-After", code)
	}
	if got := f.counter(f.svc.metrics.produceErrors); got != 3 {
		t.Errorf("produce errors %v, want 3", got)
	}
	if got := len(f.records(f.names.Readings, 2)); got != 0 {
		t.Errorf("%d records after failed writes, want 0", got)
	}
}

// blockingPublisher holds every write until released, announcing each on entered.
type blockingPublisher struct {
	entered chan struct{}
	release chan struct{}
}

func (p *blockingPublisher) Write(ctx context.Context, _ ...stream.Output) error {
	p.entered <- struct{}{}
	select {
	case <-p.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func TestOverloadRefusesInsteadOfQueueing(t *testing.T) {
	bp := &blockingPublisher{entered: make(chan struct{}, 1), release: make(chan struct{})}
	f := newFixture(t, func(o *Options, _ *serverConfig) { o.Publisher, o.MaxInFlight = bp, 1 })
	batch := &greenwavev1.ReadingBatch{Readings: []*greenwavev1.TrafficReading{reading("D1")}}
	first := make(chan error, 1)
	go func() {
		_, err := f.client.PublishReadings(withToken(testCtx(t), tokenA), &greenwavev1.PublishReadingsRequest{Batch: batch})
		first <- err
	}()
	<-bp.entered // the first batch holds the only slot
	if _, err := f.client.PublishReadings(withToken(testCtx(t), tokenA), &greenwavev1.PublishReadingsRequest{Batch: batch}); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("second batch: %v, want ResourceExhausted", err)
	}
	body, _ := protojson.Marshal(batch)
	if code, hdr, _ := f.postJSON("/v1/readings", "application/json", tokenA, body); code != 503 || hdr.Get("Retry-After") != "1" {
		t.Errorf("HTTP %d Retry-After %q, want 503 and 1", code, hdr.Get("Retry-After"))
	}
	close(bp.release)
	if err := <-first; err != nil {
		t.Errorf("first batch: %v", err)
	}
}

// jsonMarshal re-encodes a decoded JSON body (tests compare through protojson).
func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// TestFeatureGroupPlacement checks that a reading of an intersection whose approach names an upstream approach
// of another intersection lands in that feature group's partition, so one cleaner holds both.
func TestFeatureGroupPlacement(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		token, detector string
	}{{tokenA, "D1"}, {tokenB, "X1"}} {
		batch := &greenwavev1.ReadingBatch{BatchId: tc.detector, Readings: []*greenwavev1.TrafficReading{reading(tc.detector)}}
		resp, err := f.client.PublishReadings(withToken(testCtx(t), tc.token), &greenwavev1.PublishReadingsRequest{Batch: batch})
		if err != nil || resp.GetAck().GetAcceptedReadings() != 1 {
			t.Fatalf("publish %s: %v %v", tc.detector, resp, err)
		}
	}
	want := stream.PartitionFor("I-1", 2) // I-2/N names I-1/N upstream: the group's key is I-1
	recs := f.records(f.names.Readings, 2)
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2", len(recs))
	}
	for _, m := range recs {
		if m.Partition != want {
			t.Errorf("reading keyed %s in partition %d, want the group's partition %d", m.Key, m.Partition, want)
		}
		wantHeader := map[string]string{"I-1": "", "I-2": "I-1"}[string(m.Key)]
		if h := string(stream.Header(m, stream.HeaderPartitionKey)); h != wantHeader {
			t.Errorf("reading keyed %s has partition key header %q, want %q", m.Key, h, wantHeader)
		}
	}
}
