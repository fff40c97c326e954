package collector

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

func TestAuthentication(t *testing.T) {
	f := newFixture(t)
	batch := &greenwavev1.ReadingBatch{Readings: []*greenwavev1.TrafficReading{reading("D1")}}
	forbidden := &greenwavev1.ReadingBatch{Readings: []*greenwavev1.TrafficReading{reading("D3")}}
	body, _ := protojson.Marshal(batch)
	forbiddenBody, _ := protojson.Marshal(forbidden)
	cases := []struct {
		name     string
		token    string
		batch    *greenwavev1.ReadingBatch
		body     []byte
		grpcCode codes.Code
		httpCode int
	}{
		{"missing token", "", batch, body, codes.Unauthenticated, 401},
		{"unknown token", "not-a-token", batch, body, codes.Unauthenticated, 401},
		{"nothing allowed", tokenB, forbidden, forbiddenBody, codes.PermissionDenied, 403},
		{"allowed", tokenA, batch, body, codes.OK, 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f.clock.Advance(time.Minute) // refill gw-b's bucket: this test is about permissions, not rates
			ctx := testCtx(t)
			if c.token != "" {
				ctx = withToken(ctx, c.token)
			}
			_, err := f.client.PublishReadings(ctx, &greenwavev1.PublishReadingsRequest{Batch: c.batch})
			if status.Code(err) != c.grpcCode {
				t.Errorf("gRPC: %v, want %v", err, c.grpcCode)
			}
			stream, err := f.client.StreamReadings(ctx)
			if err == nil {
				_ = stream.Send(&greenwavev1.StreamReadingsRequest{Batch: c.batch})
				_ = stream.CloseSend()
				_, err = stream.Recv()
			}
			if status.Code(err) != c.grpcCode {
				t.Errorf("gRPC stream: %v, want %v", err, c.grpcCode)
			}
			code, hdr, out := f.postJSON("/v1/readings", "application/json", c.token, c.body)
			if code != c.httpCode {
				t.Errorf("HTTP %d, want %d: %v", code, c.httpCode, out)
			}
			if code == 401 && hdr.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	// Health stays open: probes carry no gateway token.
	if _, err := healthpb.NewHealthClient(f.conn).Check(testCtx(t), &healthpb.HealthCheckRequest{}); err != nil {
		t.Errorf("health check: %v", err)
	}
	if got := f.counter(f.svc.metrics.authDenied.WithLabelValues("gw-b", "forbidden")); got != 3 {
		t.Errorf("forbidden denials of gw-b counted %v, want 3", got)
	}
	if got := f.counter(f.svc.metrics.authDenied.WithLabelValues("unknown", "unknown_token")); got != 3 {
		t.Errorf("unknown-token denials counted %v, want 3", got)
	}
}

func TestAnonymous(t *testing.T) {
	f := newFixture(t, func(o *Options, _ *serverConfig) { o.Gateways, o.AllowAnonymous = nil, true })
	resp, err := f.client.PublishReadings(testCtx(t), &greenwavev1.PublishReadingsRequest{Batch: &greenwavev1.ReadingBatch{Readings: []*greenwavev1.TrafficReading{reading("X1")}}})
	if err != nil || resp.GetAck().GetAcceptedReadings() != 1 {
		t.Fatalf("anonymous publish: %v, %v", resp, err)
	}
	if _, err := f.client.PublishReadings(withToken(testCtx(t), "whatever"), &greenwavev1.PublishReadingsRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("a token that cannot be verified: %v, want Unauthenticated", err)
	}
	if _, err := New(Options{Publisher: f.pub, Topology: testIndex(t), Log: f.svc.log, Registry: f.reg}); err == nil {
		t.Error("New without registry or anonymous mode succeeded")
	}
}
