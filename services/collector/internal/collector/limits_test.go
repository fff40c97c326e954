package collector

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/greenwave-city/greenwave/pkg/server/limitstest"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// TestManySlowAnonymousClients holds hundreds of slow or refused anonymous clients against the collector — the
// issue's exhaustion: stalled POST bodies, clients that never finish their headers, anonymous streams — and
// shows a valid gateway still publishing and /healthz answering. Every check is an effect of a limit (a 401
// answered before the body arrived, a connection closed by the server, a refusal), never a sleep.
func TestManySlowAnonymousClients(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zapcore.InfoLevel)
	f := newFixture(t, func(o *Options, sc *serverConfig) {
		o.Log = zap.New(core)
		sc.HTTPReadTimeout = 3 * time.Second // also bounds the headers: the half-sent ones are cut off after it
	})
	const clients = 200
	dial := func() net.Conn {
		c, err := net.Dial("tcp", f.addrs.HTTP)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// Half-sent headers: held open by the server until HTTP_READ_TIMEOUT.
	var slow []net.Conn
	for range clients {
		c := dial()
		if _, err := io.WriteString(c, "POST /v1/readings HTTP/1.1\r\nHost: collector\r\n"); err != nil {
			t.Fatal(err)
		}
		slow = append(slow, c)
	}
	// Stalled bodies: each is answered 401 at once and its connection closed.
	for i := range clients {
		c := dial()
		fmt.Fprintf(c, "POST /v1/readings HTTP/1.1\r\nHost: collector\r\nContent-Type: application/json\r\nAuthorization: Bearer wrong-token-%d\r\nContent-Length: 1048576\r\n\r\n{\"readings\":[", i)
		r := bufio.NewReader(c)
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatalf("stalled POST %d: %v", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !resp.Close {
			t.Fatalf("stalled POST %d: %d, Connection: close %v; want 401 and close", i, resp.StatusCode, resp.Close)
		}
		if _, err := io.Copy(io.Discard, r); err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
			t.Fatalf("stalled POST %d: connection not closed: %v", i, err)
		}
	}
	// Anonymous streams, many per connection: each is refused.
	got, release := limitstest.Hold(t, clients, func(ctx context.Context) error {
		st, err := f.client.StreamReadings(ctx)
		if err != nil {
			return err
		}
		_, err = st.Recv()
		return err
	})
	release()
	if got[codes.Unauthenticated] != clients {
		t.Errorf("anonymous streams by status %v, want %d UNAUTHENTICATED", got, clients)
	}

	// Meanwhile a valid gateway publishes on both APIs, and the probes answer.
	batch := &greenwavev1.ReadingBatch{Readings: []*greenwavev1.TrafficReading{reading("D1")}}
	if _, err := f.client.PublishReadings(withToken(testCtx(t), tokenA), &greenwavev1.PublishReadingsRequest{Batch: batch}); err != nil {
		t.Errorf("valid gateway publish: %v", err)
	}
	if code, _, out := f.postJSON("/v1/readings", "application/json", tokenA, []byte(`{"readings":[{"detector_id":"D2","observed_at":"2026-11-30T07:59:00Z","interval_s":60,"count":3}]}`)); code != http.StatusOK {
		t.Errorf("valid gateway HTTP publish: %d %v", code, out)
	}
	resp, err := http.Get("http://" + f.addrs.HTTP + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz while %d clients stall: %v %v", clients, resp, err)
	}
	resp.Body.Close()

	// The half-sent requests are cut off by the server.
	for i, c := range slow {
		if _, err := io.Copy(io.Discard, c); err != nil && !strings.Contains(err.Error(), "reset") {
			t.Fatalf("half-sent request %d: %v", i, err)
		}
	}

	// Failed authentication was logged with the caller's address, rate-limited, never with the token.
	lines := logs.FilterMessage("authentication failed").All()
	if len(lines) == 0 || len(lines) > 20 {
		t.Errorf("%d auth-failure lines for %d failures, want a few (rate-limited)", len(lines), 2*clients)
	}
	for _, l := range lines {
		if p, _ := l.ContextMap()["peer"].(string); !strings.HasPrefix(p, "127.0.0.1:") {
			t.Errorf("auth-failure line without the peer address: %v", l.ContextMap())
		}
	}
	for _, l := range logs.All() {
		if strings.Contains(fmt.Sprint(l.Message, l.ContextMap()), "wrong-token") {
			t.Fatalf("a log line holds a token: %v %v", l.Message, l.ContextMap())
		}
	}
}

func TestStreamIdleTimeout(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		idle     time.Duration
		batches  int
		closeAt  bool // the gateway half-closes after its batches
		wantCode codes.Code
	}{
		{"idle from the start", 50 * time.Millisecond, 0, false, codes.Unavailable},
		{"idle after a batch", 50 * time.Millisecond, 1, false, codes.Unavailable},
		{"disabled, gateway closes", 0, 2, true, codes.OK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, func(o *Options, _ *serverConfig) { o.StreamIdleTimeout = tt.idle })
			st, err := f.client.StreamReadings(withToken(testCtx(t), tokenA))
			if err != nil {
				t.Fatal(err)
			}
			for i := range tt.batches {
				if err := st.Send(&greenwavev1.StreamReadingsRequest{Batch: &greenwavev1.ReadingBatch{Readings: []*greenwavev1.TrafficReading{reading("D1")}}}); err != nil {
					t.Fatal(err)
				}
				if _, err := st.Recv(); err != nil {
					t.Fatalf("ack %d: %v", i, err)
				}
			}
			if tt.closeAt {
				if err := st.CloseSend(); err != nil {
					t.Fatal(err)
				}
			}
			_, err = st.Recv()
			if tt.wantCode == codes.OK {
				if !errors.Is(err, io.EOF) {
					t.Fatalf("end of stream: %v, want EOF", err)
				}
				return
			}
			if status.Code(err) != tt.wantCode || !strings.Contains(err.Error(), "COLLECTOR_STREAM_IDLE_TIMEOUT") {
				t.Fatalf("end of stream: %v, want %s naming COLLECTOR_STREAM_IDLE_TIMEOUT", err, tt.wantCode)
			}
		})
	}
}

// Client-supplied ids of any size are echoed at most clip.MaxID bytes long.
func TestHugeIDsClipped(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(o *Options, _ *serverConfig) { o.MaxMessageBytes = 4 << 20 })
	huge := strings.Repeat("h", 1<<20)
	unknown := reading("D1")
	unknown.DetectorId = huge
	longID := reading("D1")
	longID.ReadingId = huge
	resp, err := f.client.PublishReadings(withToken(testCtx(t), tokenA), &greenwavev1.PublishReadingsRequest{Batch: &greenwavev1.ReadingBatch{
		Readings: []*greenwavev1.TrafficReading{reading("D1"), unknown, longID}}})
	if err != nil {
		t.Fatal(err)
	}
	rej := resp.GetAck().GetRejected()
	if len(rej) != 2 {
		t.Fatalf("rejected %v, want 2", rej)
	}
	for _, r := range rej {
		if n := len(r.GetReadingId()) + len(r.GetDescription()); n > 400 {
			t.Errorf("rejection of reading %d echoes %d bytes (%.80s…)", r.GetIndex(), n, r.GetDescription())
		}
	}
	if id := rej[1].GetReadingId(); !strings.HasSuffix(id, "…") {
		t.Errorf("reading id %.40s… not marked as cut", id)
	}
	_, err = f.client.PublishReadings(withToken(testCtx(t), tokenA), &greenwavev1.PublishReadingsRequest{Batch: &greenwavev1.ReadingBatch{
		BatchId: huge, Readings: []*greenwavev1.TrafficReading{reading("D1")}}})
	if status.Code(err) != codes.InvalidArgument || len(err.Error()) > 400 {
		t.Errorf("huge batch id: %s, %d bytes", status.Code(err), len(err.Error()))
	}
}

// gRPC itself refuses a message above COLLECTOR_MAX_MESSAGE_BYTES (not pkg/server's larger default), before
// decoding it: docs/collector.md states this limit.
func TestGRPCMessageLimitIsTheCollectors(t *testing.T) {
	t.Parallel()
	f := newFixture(t) // MaxMessageBytes 64 KiB
	for _, tt := range []struct {
		name     string
		pad      int
		wantCode codes.Code
	}{
		{"below the limit", 1 << 10, codes.OK},
		{"above the limit", 100 << 10, codes.ResourceExhausted},
	} {
		r := reading("D1")
		r.ReadingId = "r1"
		batch := &greenwavev1.ReadingBatch{BatchId: strings.Repeat("b", 10), Readings: []*greenwavev1.TrafficReading{r}}
		batch.Weather = []*greenwavev1.WeatherReading{{StationId: strings.Repeat("s", tt.pad)}}
		_, err := f.client.PublishReadings(withToken(testCtx(t), tokenA), &greenwavev1.PublishReadingsRequest{Batch: batch})
		if tt.wantCode == codes.OK {
			if status.Code(err) == codes.ResourceExhausted {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		if status.Code(err) != tt.wantCode || !strings.Contains(err.Error(), "larger than max") {
			t.Errorf("%s: %v, want gRPC's own RESOURCE_EXHAUSTED", tt.name, err)
		}
	}
}
