package gateway

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/greenwave-city/greenwave/pkg/kafkatest"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

func TestMain(m *testing.M) { os.Exit(kafkatest.Main(m)) }

// collector acks a batch when told to on release (one ack per value received), and ends the stream with end
// once the client has closed its side; without release, it ends the stream with end at once.
type collector struct {
	greenwavev1.UnimplementedCollectorServiceServer
	release chan struct{}
	end     error
	token   chan string
}

func (c *collector) StreamReadings(st grpc.BidiStreamingServer[greenwavev1.StreamReadingsRequest, greenwavev1.StreamReadingsResponse]) error {
	md, _ := metadata.FromIncomingContext(st.Context())
	c.token <- append(md.Get("authorization"), "")[0]
	if c.release == nil {
		return c.end
	}
	var ids []string
	received := make(chan string, 16)
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		for {
			req, err := st.Recv()
			if err != nil {
				return
			}
			received <- req.GetBatch().GetBatchId()
		}
	}()
	for {
		select {
		case id := <-received:
			ids = append(ids, id)
		case <-c.release:
			if len(ids) == 0 {
				ids = append(ids, <-received)
			}
			if err := st.Send(&greenwavev1.StreamReadingsResponse{Ack: &greenwavev1.BatchAck{BatchId: ids[0]}}); err != nil {
				return err
			}
			ids = ids[1:]
		case <-closed:
			for len(received) > 0 {
				ids = append(ids, <-received)
			}
			for _, id := range ids {
				if err := st.Send(&greenwavev1.StreamReadingsResponse{Ack: &greenwavev1.BatchAck{BatchId: id}}); err != nil {
					return err
				}
			}
			return c.end
		}
	}
}

func start(t *testing.T, c *collector) greenwavev1.CollectorServiceClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	greenwavev1.RegisterCollectorServiceServer(srv, c)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return greenwavev1.NewCollectorServiceClient(cc)
}

// TestStreamWindow: at most the window of batches await their ack; an ack makes room; CloseSend makes the
// collector ack the rest and end the stream, whose status Drain returns.
func TestStreamWindow(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		end  error
	}{
		{name: "clean end"},
		{name: "failure", end: status.Error(codes.Unavailable, "going away")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := &collector{release: make(chan struct{}), end: tc.end, token: make(chan string, 1)}
			ctx, cancel := context.WithCancel(context.Background())
			st, err := Open(ctx, start(t, c), "s3cret", 2)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close(func(*greenwavev1.BatchAck) error { return nil })
			for _, id := range []string{"a", "b"} {
				if !st.Room() {
					t.Fatalf("no room before %s", id)
				}
				if err := st.Send(&greenwavev1.ReadingBatch{BatchId: id}); err != nil {
					t.Fatal(err)
				}
			}
			if st.Room() || !errors.Is(st.Send(&greenwavev1.ReadingBatch{BatchId: "c"}), ErrWindowFull) {
				t.Fatal("window of 2 has room for a third batch")
			}
			if tok := <-c.token; tok != "Bearer s3cret" {
				t.Errorf("authorization %q", tok)
			}
			// Cancelling the caller's context leaves the stream open: the acks of the batches in flight still come.
			cancel()
			c.release <- struct{}{}
			if ev, ack := st.Await(context.Background(), time.Minute); ev != Acked || ack.GetBatchId() != "a" || !st.Room() {
				t.Fatalf("Await = %v %v, room %v; want the ack of a and room", ev, ack, st.Room())
			}
			if ev, _ := st.Await(context.Background(), time.Millisecond); ev != TimedOut {
				t.Fatalf("Await = %v, want TimedOut", ev)
			}
			st.CloseSend()
			var acked []string
			err = st.Drain(time.Minute, func(a *greenwavev1.BatchAck) error {
				acked = append(acked, a.GetBatchId())
				return nil
			})
			if status.Code(err) != status.Code(tc.end) || len(acked) != 1 || acked[0] != "b" {
				t.Fatalf("Drain = %v, acked %v; want %v after the ack of b", err, acked, tc.end)
			}
			if ev, _ := st.Await(context.Background(), 0); ev != Ended {
				t.Errorf("Await after the end = %v", ev)
			}
		})
	}
}

// TestStreamSendAfterBreak: Send on a broken stream fails with io.EOF; the status comes from Drain.
func TestStreamSendAfterBreak(t *testing.T) {
	t.Parallel()
	c := &collector{end: status.Error(codes.ResourceExhausted, "full"), token: make(chan string, 1)}
	st, err := Open(context.Background(), start(t, c), "", 4)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(func(*greenwavev1.BatchAck) error { return nil })
	if err := st.Drain(0, func(*greenwavev1.BatchAck) error { return nil }); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("Drain = %v", err)
	}
	if tok := <-c.token; tok != "" {
		t.Errorf("authorization %q without a token", tok)
	}
	if err := st.Send(&greenwavev1.ReadingBatch{BatchId: "late"}); !errors.Is(err, io.EOF) {
		t.Errorf("Send after the end = %v, want io.EOF", err)
	}
}

func TestRejectName(t *testing.T) {
	t.Parallel()
	if got := RejectName(greenwavev1.RejectReason_REJECT_REASON_UNKNOWN_DETECTOR); got != "unknown_detector" {
		t.Errorf("RejectName = %q", got)
	}
}
