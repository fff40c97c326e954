package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/stack"
	"github.com/greenwave-city/greenwave/pkg/server/limitstest"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// TestEveryServiceUnderSlowClients is the exhaustion against all five services at once, as processes:
// on every HTTP port, slow anonymous clients that never finish their headers and clients whose POST body stalls;
// on every streaming gRPC method, more unread anonymous streams than the service's cap. While they are held,
// every /healthz and /readyz answers 200, a gateway's batch is acknowledged, each capped service serves exactly its
// cap and refuses the rest with RESOURCE_EXHAUSTED, and idle StreamReadings streams are ended by the collector.
// Once the clients go away the subscriber gauges return to 0, and the stalled connections are all closed by the
// servers (HTTP_READ_TIMEOUT), not by the test. Every check is an effect of a limit, never a sleep.
func TestEveryServiceUnderSlowClients(t *testing.T) {
	parallelStack(t)
	const (
		slowPerService = 100 // half-sent headers, and as many stalled bodies, per HTTP port
		streamCap      = 20  // *_MAX_SUBSCRIBERS of the trainer, predictor and signal-control
		streams        = 60  // unread streams opened per capped method
		idleStreams    = 100 // idle StreamReadings streams against the collector
	)
	env := map[string][]string{}
	for _, svc := range stack.Services {
		env[svc] = []string{"HTTP_READ_TIMEOUT=3s"}
	}
	env["trainer"] = append(env["trainer"], fmt.Sprint("TRAINER_MAX_SUBSCRIBERS=", streamCap))
	env["predictor"] = append(env["predictor"], fmt.Sprint("PREDICTOR_MAX_SUBSCRIBERS=", streamCap))
	env["signalcontrol"] = append(env["signalcontrol"], fmt.Sprint("SIGNAL_MAX_SUBSCRIBERS=", streamCap))
	env["collector"] = append(env["collector"], "COLLECTOR_STREAM_IDLE_TIMEOUT=5s")
	p := startPipelineWith(t, env)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// Give every stream something to send first: plans, predictions and models exist.
	s := newSender(ctx, t, p.stack.Addrs("collector").GRPC)
	p.flush(s, p.feed(ctx, s, 90, nil))
	plansCtx, plansDone := context.WithCancel(ctx)
	p.waitPlans(plansCtx)
	plansDone()
	models := greenwavev1.NewModelServiceClient(dial(t, p.stack.Addrs("trainer").GRPC))
	limitstest.WaitFor(t, "a model trained", func() bool {
		r, err := models.ListModels(ctx, &greenwavev1.ListModelsRequest{PageSize: 1})
		return err == nil && len(r.GetModels()) > 0
	})
	gauges := map[string]string{
		"trainer":       "greenwave_trainer_watchers",
		"predictor":     "greenwave_predictor_subscribers",
		"signalcontrol": "greenwave_signal_watchers",
	}
	waitGauges := func(what string, want float64) {
		t.Helper()
		for svc, g := range gauges {
			limitstest.WaitFor(t, fmt.Sprintf("%s: %s %v", what, g, want), func() bool {
				n, err := metricSum(ctx, p.stack.Addrs(svc).HTTP, g)
				return err == nil && n == want
			})
		}
	}
	waitGauges("before the clients", 0)

	// The slow HTTP clients, on every service's port.
	type slowConn struct {
		svc, kind string
		conn      net.Conn
	}
	var slow []slowConn
	for _, svc := range stack.Services {
		addr := p.stack.Addrs(svc).HTTP
		for i := range 2 * slowPerService {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatalf("%s: slow client %d: %v", svc, i, err)
			}
			t.Cleanup(func() { c.Close() })
			kind, req := "half-sent headers", "POST /v1/readings HTTP/1.1\r\nHost: greenwave\r\n"
			if i%2 == 1 {
				kind = "stalled body"
				req = "POST /v1/readings HTTP/1.1\r\nHost: greenwave\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n{\"readings\":["
			}
			if _, err := io.WriteString(c, req); err != nil {
				t.Fatalf("%s: %s client %d: %v", svc, kind, i, err)
			}
			slow = append(slow, slowConn{svc, kind, c})
		}
	}

	// The unread streams, held while the probes and the gateway are checked.
	clients := map[string]func(context.Context) error{
		"trainer": func(ctx context.Context) error {
			st, err := models.WatchModels(ctx, &greenwavev1.WatchModelsRequest{})
			if err == nil {
				_, err = st.Recv()
			}
			return err
		},
		"predictor": func(ctx context.Context) error {
			st, err := greenwavev1.NewPredictionServiceClient(dial(t, p.stack.Addrs("predictor").GRPC)).Subscribe(ctx, &greenwavev1.SubscribeRequest{})
			if err == nil {
				_, err = st.Recv()
			}
			return err
		},
		"signalcontrol": func(ctx context.Context) error {
			st, err := greenwavev1.NewSignalControlServiceClient(dial(t, p.stack.Addrs("signalcontrol").GRPC)).WatchPlans(ctx, &greenwavev1.WatchPlansRequest{})
			if err == nil {
				_, err = st.Recv()
			}
			return err
		},
	}
	var releases []func()
	for svc, open := range clients {
		got, release := limitstest.Hold(t, streams, open)
		releases = append(releases, release)
		if got[codes.OK] != streamCap || got[codes.ResourceExhausted] != streams-streamCap {
			t.Errorf("%s: %d unread streams by status %v, want %d OK and %d RESOURCE_EXHAUSTED", svc, streams, got, streamCap, streams-streamCap)
		}
	}
	waitGauges("while the unread streams are held", streamCap)
	collector := greenwavev1.NewCollectorServiceClient(dial(t, p.stack.Addrs("collector").GRPC))
	idle, releaseIdle := limitstest.Hold(t, idleStreams, func(ctx context.Context) error {
		st, err := collector.StreamReadings(ctx)
		if err != nil {
			return err
		}
		_, err = st.Recv()
		if status.Code(err) == codes.Unavailable && !strings.Contains(err.Error(), "COLLECTOR_STREAM_IDLE_TIMEOUT") {
			return fmt.Errorf("idle stream ended with %w, not naming COLLECTOR_STREAM_IDLE_TIMEOUT", err)
		}
		return err
	})
	releases = append(releases, releaseIdle)
	if idle[codes.Unavailable] != idleStreams {
		t.Errorf("%d idle StreamReadings streams ended by status %v, want all UNAVAILABLE by COLLECTOR_STREAM_IDLE_TIMEOUT", idleStreams, idle)
	}

	for _, svc := range stack.Services {
		for _, probe := range []string{"/healthz", "/readyz"} {
			resp, err := http.Get("http://" + p.stack.Addrs(svc).HTTP + probe)
			if err != nil {
				t.Errorf("%s %s with %d slow clients and the unread streams held: %v", svc, probe, 2*slowPerService, err)
				continue
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%s %s with %d slow clients and the unread streams held: %d", svc, probe, 2*slowPerService, resp.StatusCode)
			}
		}
	}
	ack, err := collector.PublishReadings(ctx, &greenwavev1.PublishReadingsRequest{Batch: &greenwavev1.ReadingBatch{BatchId: "during-the-flood",
		Readings: []*greenwavev1.TrafficReading{{DetectorId: p.topo.Intersections[0].Approaches[0].Detectors[0], ObservedAt: timestampOf(time.Now()), IntervalS: 60, Count: 5}}}})
	if err != nil || ack.GetAck().GetAcceptedReadings() != 1 {
		t.Errorf("a gateway's batch while the clients are held: ack %v, %v; want 1 accepted", ack, err)
	}

	for _, release := range releases {
		release()
	}
	waitGauges("after the clients went away", 0)

	// Every stalled connection is closed by its server: the half-sent ones at HTTP_READ_TIMEOUT, the stalled
	// bodies by then too (or at once, where the route refuses before reading). The deadline only turns a server
	// that never closes into a failure instead of a hung test.
	for _, c := range slow {
		if err := c.conn.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, c.conn); err != nil && !strings.Contains(err.Error(), "reset") {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("%s: a %s connection was not closed by the server", c.svc, c.kind)
			}
			t.Fatalf("%s: %s connection: %v", c.svc, c.kind, err)
		}
	}
}
