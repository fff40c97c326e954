// Package gateway is the client side of CollectorService.StreamReadings as Greenwave's own gateways drive it:
// `greenwave replay` sending a data file and `greenwave dev`'s simulator feed. Both keep a bounded number of
// batches awaiting their ack on one long-lived stream.
package gateway

import (
	"context"
	"errors"
	"io"
	"strings"
	"time"

	"google.golang.org/grpc/metadata"

	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// ErrWindowFull is returned by Send when Room is false.
var ErrWindowFull = errors.New("gateway: every batch of the window awaits its ack")

// ErrStillOpen is returned by Drain when the stream has not ended within its time.
var ErrStillOpen = errors.New("gateway: the stream is still open")

// Stream is one StreamReadings call: batches go out with Send, at most the window of them awaiting their ack,
// and the acks come back on Acks in the order the collector sends them. One goroutine sends and takes the acks;
// a second one, started by Open, reads them off the stream until it ends. Close must be called.
type Stream struct {
	stream greenwavev1.CollectorService_StreamReadingsClient
	cancel context.CancelFunc
	// slots holds one token per batch sent and not yet acknowledged.
	slots chan struct{}
	// acks has room for every ack the window allows, so the receive loop never blocks while the sender sends.
	acks chan *greenwavev1.BatchAck
	// done is closed when the receive loop ends, after its last ack is on acks; err is then why.
	done chan struct{}
	err  error
}

// Open starts a StreamReadings call with at most window batches awaiting their ack, sending token (unless empty)
// as "authorization: Bearer". The call is detached from ctx's cancellation: when ctx ends, the caller stops
// sending, and the acks of the batches in flight still arrive until Close.
func Open(ctx context.Context, client greenwavev1.CollectorServiceClient, token string, window int) (*Stream, error) {
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	if token != "" {
		sctx = metadata.AppendToOutgoingContext(sctx, "authorization", "Bearer "+token)
	}
	stream, err := client.StreamReadings(sctx)
	if err != nil {
		cancel()
		return nil, err
	}
	s := &Stream{
		stream: stream, cancel: cancel,
		slots: make(chan struct{}, window), acks: make(chan *greenwavev1.BatchAck, window+1), done: make(chan struct{}),
	}
	go s.receive()
	return s, nil
}

func (s *Stream) receive() {
	defer close(s.done)
	for {
		resp, err := s.stream.Recv()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				s.err = err
			}
			return
		}
		select {
		case <-s.slots: // the ack frees its batch's place in the window
		default: // an ack for no batch in flight frees nothing
		}
		s.acks <- resp.GetAck()
	}
}

// Room reports whether the window has room for another batch. An ack makes room before it is on Acks.
func (s *Stream) Room() bool { return len(s.slots) < cap(s.slots) }

// Send sends a batch, taking a place in the window (ErrWindowFull when there is none). When the stream has
// broken, Send fails with io.EOF: why it broke comes from Done and Ended, or Drain.
func (s *Stream) Send(b *greenwavev1.ReadingBatch) error {
	select {
	case s.slots <- struct{}{}:
	default:
		return ErrWindowFull
	}
	return s.stream.Send(&greenwavev1.StreamReadingsRequest{Batch: b})
}

// CloseSend tells the collector that no more batches follow; it acknowledges those in flight and ends the stream.
func (s *Stream) CloseSend() { _ = s.stream.CloseSend() }

// Acks delivers the acks.
func (s *Stream) Acks() <-chan *greenwavev1.BatchAck { return s.acks }

// Done is closed when the stream has ended; Ended then says why.
func (s *Stream) Done() <-chan struct{} { return s.done }

// Ended is called once Done is closed: it hands the acks still on Acks to onAck, stopping at its first error,
// and returns that error, or why the stream ended: nil for a clean end.
func (s *Stream) Ended(onAck func(*greenwavev1.BatchAck) error) error {
	for {
		select {
		case ack := <-s.acks:
			if err := onAck(ack); err != nil {
				return err
			}
		default:
			return s.err
		}
	}
}

// Event is what Await returned on.
type Event int

// The events of Await.
const (
	// Acked: an ack arrived.
	Acked Event = iota
	// Ended: the stream ended (Done is closed); Ended says why.
	Ended
	// Cancelled: the context ended.
	Cancelled
	// TimedOut: the time to wait passed.
	TimedOut
)

// Await waits up to d (d <= 0: no limit) for an ack, which it returns, the end of the stream, or the end of ctx.
func (s *Stream) Await(ctx context.Context, d time.Duration) (Event, *greenwavev1.BatchAck) {
	var expired <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		expired = t.C
	}
	select {
	case ack := <-s.acks:
		return Acked, ack
	case <-s.done:
		return Ended, nil
	case <-ctx.Done():
		return Cancelled, nil
	case <-expired:
		return TimedOut, nil
	}
}

// Drain waits until the stream ends, handing the acks to onAck, and returns what Ended returns; ErrStillOpen
// when it has not ended within timeout (0: no limit).
func (s *Stream) Drain(timeout time.Duration, onAck func(*greenwavev1.BatchAck) error) error {
	deadline := time.Now().Add(timeout)
	for {
		var d time.Duration
		if timeout > 0 {
			if d = time.Until(deadline); d <= 0 {
				return ErrStillOpen
			}
		}
		switch ev, ack := s.Await(context.Background(), d); ev {
		case Acked:
			if err := onAck(ack); err != nil {
				return err
			}
		case Ended:
			return s.Ended(onAck)
		default:
			return ErrStillOpen
		}
	}
}

// Close ends the call and waits for the receive loop, handing the acks it still delivers to onAck: they are
// real, and the batches they acknowledge are not to be sent again.
func (s *Stream) Close(onAck func(*greenwavev1.BatchAck) error) {
	s.cancel()
	_ = s.Drain(0, func(ack *greenwavev1.BatchAck) error {
		_ = onAck(ack)
		return nil
	})
}

// RejectName is how the CLI names a reject reason: REJECT_REASON_UNKNOWN_DETECTOR is unknown_detector.
func RejectName(r greenwavev1.RejectReason) string {
	return strings.ToLower(strings.TrimPrefix(r.String(), "REJECT_REASON_"))
}
