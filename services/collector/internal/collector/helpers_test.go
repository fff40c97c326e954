package collector

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/greenwave-city/greenwave/pkg/ingest"
	"github.com/greenwave-city/greenwave/pkg/ingest/gateways"
	"github.com/greenwave-city/greenwave/pkg/kafkaconn"
	"github.com/greenwave-city/greenwave/pkg/kafkatest"
	"github.com/greenwave-city/greenwave/pkg/server"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/topics"
	"github.com/greenwave-city/greenwave/pkg/topology"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

const testTopology = `
version: 1
revision: test
intersections:
  - id: I-1
    weather_station: STN-1
    approaches:
      - {id: N, lanes: 2, saturation_flow_vph_per_lane: 1800, detectors: [D1, D2]}
      - {id: E, lanes: 1, saturation_flow_vph_per_lane: 1800, detectors: [D3]}
    phases:
      - {id: P1, approaches: [N], min_green_s: 10, max_green_s: 60, yellow_s: 4, all_red_s: 2, lost_time_s: 4}
      - {id: P2, approaches: [E], min_green_s: 10, max_green_s: 60, yellow_s: 4, all_red_s: 2, lost_time_s: 4}
    timing: {min_cycle_s: 40, max_cycle_s: 150}
  - id: I-2
    weather_station: STN-2
    approaches:
      - {id: N, lanes: 1, saturation_flow_vph_per_lane: 1800, detectors: [X1], upstream: [I-1/N]}
      - {id: E, lanes: 1, saturation_flow_vph_per_lane: 1800, detectors: [X2]}
    phases:
      - {id: P1, approaches: [N], min_green_s: 10, max_green_s: 60, yellow_s: 4, all_red_s: 2, lost_time_s: 4}
      - {id: P2, approaches: [E], min_green_s: 10, max_green_s: 60, yellow_s: 4, all_red_s: 2, lost_time_s: 4}
    timing: {min_cycle_s: 40, max_cycle_s: 150}
`

// Tokens of the test registry: gw-a may publish intersection I-1 (and STN-1), gw-b only detector X1 and is
// rate limited to 10 readings/s with a burst of 5.
const (
	tokenA = "token-a-0123456789"
	tokenB = "token-b-0123456789"
)

var testNow = time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)

func testIndex(t testing.TB) *topology.Index {
	t.Helper()
	topo, err := topology.Parse([]byte(testTopology))
	if err != nil {
		t.Fatal(err)
	}
	return topology.NewIndex(topo)
}

func testRegistry(t testing.TB, ix *topology.Index) *gateways.Registry {
	t.Helper()
	reg, err := gateways.Parse([]byte(`
version: 1
gateways:
  - id: gw-a
    token_sha256: `+gateways.HashToken(tokenA)+`
    intersections: [I-1]
  - id: gw-b
    token_sha256: `+gateways.HashToken(tokenB)+`
    detectors: [X1]
    rate_limit: {readings_per_second: 10, burst: 5}
`), ix)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// switchPublisher fails every write while fail is set, otherwise delegates.
type switchPublisher struct {
	next Publisher
	mu   sync.Mutex
	fail error
}

func (p *switchPublisher) Write(ctx context.Context, outs ...stream.Output) error {
	p.mu.Lock()
	err := p.fail
	p.mu.Unlock()
	if err != nil {
		return err
	}
	return p.next.Write(ctx, outs...)
}

func (p *switchPublisher) setFail(err error) { p.mu.Lock(); p.fail = err; p.mu.Unlock() }

// fixture is a running collector on a fresh Kafka.
type fixture struct {
	t         *testing.T
	kafkaConn kafkaconn.Conn
	names     topics.Names
	svc       *Service
	pub       *switchPublisher
	clock     *clock
	addrs     server.Addrs
	reg       *prometheus.Registry
	conn      *grpc.ClientConn
	client    greenwavev1.CollectorServiceClient
}

type serverConfig = server.Config

type fixtureOption func(*Options, *serverConfig)

func newFixture(t *testing.T, opts ...fixtureOption) *fixture {
	t.Helper()
	kafkaConn, names := kafkatest.Setup(t, 2)
	prod := stream.NewProducer(kafkaConn, stream.ProducerConfig{})
	t.Cleanup(func() { prod.Close() })
	ix := testIndex(t)
	f := &fixture{t: t, kafkaConn: kafkaConn, names: names, pub: &switchPublisher{next: prod}, clock: &clock{t: testNow}, reg: prometheus.NewRegistry()}
	o := Options{
		Publisher: f.pub, Topology: ix, Names: names, Gateways: testRegistry(t, ix), Limits: ingest.DefaultLimits(),
		MaxBatch: 50, MaxMessageBytes: 64 << 10, StreamInFlight: 4, MaxInFlight: 16, Now: f.clock.Now, Log: zap.NewNop(), Registry: f.reg,
	}
	sc := server.Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", ShutdownTimeout: 5 * time.Second}
	for _, opt := range opts {
		opt(&o, &sc)
	}
	svc, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	srv, err := server.New(sc, zap.NewNop(), f.reg, svc.ServerOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	svc.Register(srv)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	actx, acancel := context.WithTimeout(ctx, 10*time.Second)
	defer acancel()
	if f.addrs, err = srv.Addrs(actx); err != nil {
		t.Fatal(err)
	}
	if sc.TLSCertFile == "" {
		f.conn, err = grpc.NewClient(f.addrs.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.conn.Close() })
		f.client = greenwavev1.NewCollectorServiceClient(f.conn)
	}
	return f
}

func withToken(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// reading is a valid reading of detector at testNow minus a minute.
func reading(detector string) *greenwavev1.TrafficReading {
	return &greenwavev1.TrafficReading{DetectorId: detector, ObservedAt: timestamppb.New(testNow.Add(-time.Minute)), IntervalS: 60, Count: 10, OccupancyRatio: proto.Float64(0.2), SpeedKmh: proto.Float64(45)}
}

// postJSON posts body to path with the token ("" for none) and returns status, headers and decoded body.
func (f *fixture) postJSON(path, contentType, token string, body []byte) (int, http.Header, map[string]any) {
	f.t.Helper()
	status, header, raw := f.post(path, contentType, token, body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		f.t.Fatalf("response %d is not JSON: %s", status, raw)
	}
	return status, header, out
}

// records reads every record of a topic with the given number of partitions.
func (f *fixture) records(topic string, partitions int) []kafka.Message {
	f.t.Helper()
	var out []kafka.Message
	for p := range partitions {
		err := stream.ReadPartition(testCtx(f.t), f.kafkaConn, topic, p, func(m kafka.Message) error {
			out = append(out, m)
			return nil
		})
		if err != nil {
			f.t.Fatal(err)
		}
	}
	return out
}

func (f *fixture) counter(c prometheus.Collector) float64 { return testutil.ToFloat64(c) }
