package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/cli"
	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/gateway"
	"github.com/greenwave-city/greenwave/pkg/dataset"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// send dials the collector and runs the sender.
func send(ctx context.Context, in *input, o options, sum *Summary, stderr io.Writer, pp *printer) error {
	creds, err := cli.TLS{CA: o.tlsCA, Cert: o.tlsCert, Key: o.tlsKey}.Credentials()
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	token := o.token
	if o.tokenFile != "" {
		if token, err = cli.ReadTokenFile("--token-file", o.tokenFile); err != nil {
			return fmt.Errorf("replay: %w", err)
		}
	} else if token != "" {
		if err := cli.CheckToken("--token", token); err != nil {
			return fmt.Errorf("replay: %w", err)
		}
	}
	cc, err := grpc.NewClient(o.collector, grpc.WithTransportCredentials(creds))
	if err != nil {
		return fmt.Errorf("replay: dial %s: %w", o.collector, err)
	}
	defer cc.Close()
	s := &sender{
		client: greenwavev1.NewCollectorServiceClient(cc), src: in.src, token: token, sum: sum, printer: pp,
		batchSize: o.batch, window: o.window, speed: float64(o.speed), maxRetries: o.maxRetries,
		backoffMin: 200 * time.Millisecond, backoffMax: 10 * time.Second, drain: 5 * time.Second,
		progress: newProgress(stderr, in),
	}
	return s.run(ctx)
}

// sender sends a source's records over one StreamReadings stream at a time, reconnecting on transient
// failures. It is used by one goroutine.
type sender struct {
	client  greenwavev1.CollectorServiceClient
	src     dataset.Source
	token   string
	sum     *Summary
	printer *printer

	batchSize  int
	window     int
	speed      float64 // event seconds per wall second; 0 for as fast as acks allow
	maxRetries int
	// backoffMin doubles per failure in a row up to backoffMax (with ±20 % jitter so many replays do not
	// reconnect in step); a RetryInfo delay from the collector replaces it.
	backoffMin, backoffMax time.Duration
	// drain bounds the wait for outstanding acks after ctx ends.
	drain    time.Duration
	progress func(s *Summary, final bool)

	seq        int
	unacked    []*batch // sent, not acknowledged, in send order
	pending    *dataset.Record
	srcDone    bool
	wallStart  time.Time
	eventStart time.Time
}

// batch is a batch sent at least once.
type batch struct {
	msg               *greenwavev1.ReadingBatch
	readings, weather int
}

// run replays the whole source. It returns nil when every batch sent was acknowledged.
func (r *sender) run(ctx context.Context) error {
	defer func() {
		for _, b := range r.unacked {
			r.sum.Unaccounted += b.readings + b.weather
		}
		r.progress(r.sum, true)
	}()
	failures := 0
	for {
		c, err := gateway.Open(ctx, r.client, r.token, r.window)
		if err == nil {
			err = r.serve(ctx, c, &failures)
			c.Close(r.acked)
		}
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("replay: interrupted: %w", err)
		}
		delay, transient := r.retryable(err)
		if !transient {
			return fmt.Errorf("replay: %w", err)
		}
		failures++
		if failures > r.maxRetries {
			return fmt.Errorf("replay: giving up after %d failures in a row without an ack: %w", failures, err)
		}
		if delay == 0 {
			delay = r.backoff(failures)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("replay: interrupted while waiting to reconnect after: %w", err)
		case <-t.C:
		}
		r.sum.Reconnects++
	}
}

// finished reports whether the whole source was sent and acknowledged.
func (r *sender) finished() bool { return r.srcDone && r.pending == nil && len(r.unacked) == 0 }

// ended turns the end of a stream, with the acks it delivered accounted (gateway.Stream.Ended or Drain), into
// the result of serve: nil only for a clean end after everything was acknowledged.
func (r *sender) ended(err error) error {
	if err == nil && !r.finished() {
		return errStreamEnded
	}
	return err
}

// retryable classifies a stream failure: transient ones are retried after the returned delay (the collector's
// RetryInfo, or 0 for the caller's backoff).
func (r *sender) retryable(err error) (time.Duration, bool) {
	if errors.Is(err, errStreamEnded) {
		return 0, true
	}
	st, ok := status.FromError(err)
	if !ok {
		return 0, false
	}
	switch st.Code() {
	case codes.Unavailable, codes.ResourceExhausted, codes.Aborted, codes.Internal, codes.DeadlineExceeded:
	default:
		return 0, false
	}
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
			return ri.GetRetryDelay().AsDuration(), true
		}
	}
	return 0, true
}

func (r *sender) backoff(failures int) time.Duration {
	d := float64(r.backoffMin) * math.Pow(2, float64(failures-1))
	d = math.Min(d, float64(r.backoffMax))
	return time.Duration(d * (0.8 + 0.4*rand.Float64()))
}

// errStreamEnded is a stream the collector closed cleanly while batches still awaited their ack.
var errStreamEnded = errors.New("the collector ended the stream with batches unacknowledged")

// serve sends on one stream until the source is exhausted and every batch acknowledged (nil), or the stream
// fails (its error). It first resends every unacknowledged batch, in order.
func (r *sender) serve(ctx context.Context, c *gateway.Stream, failures *int) error {
	// Send fails when the stream broke; the acks keep arriving until the stream's end says why.
	for _, b := range r.unacked {
		if err := c.Send(b.msg); err != nil {
			return r.ended(c.Drain(0, r.acked))
		}
		r.sum.RetriedBatches++
	}
	for {
		// Send while the window has room and a record is due.
		var wait time.Duration
		for c.Room() {
			b, due, err := r.nextBatch()
			if err != nil {
				return err
			}
			if b == nil {
				wait = due
				break
			}
			r.unacked = append(r.unacked, b)
			r.count(b)
			if err := c.Send(b.msg); err != nil {
				return r.ended(c.Drain(0, r.acked))
			}
		}
		if r.finished() {
			c.CloseSend()
			return nil
		}
		switch ev, ack := c.Await(ctx, wait); ev {
		case gateway.Cancelled:
			// Stop sending; give the batches in flight a bounded time to be acknowledged.
			c.CloseSend()
			return r.drainAcks(c)
		case gateway.Acked:
			if err := r.acked(ack); err != nil {
				return err
			}
			*failures = 0
		case gateway.Ended:
			return r.ended(c.Ended(r.acked))
		}
	}
}

// drainAcks waits up to r.drain for the acks of the batches in flight after an interrupt.
func (r *sender) drainAcks(c *gateway.Stream) error {
	deadline := time.Now().Add(r.drain)
	for len(r.unacked) > 0 {
		wait := time.Until(deadline)
		if wait <= 0 {
			return fmt.Errorf("%d batches unacknowledged after waiting %s", len(r.unacked), r.drain)
		}
		switch ev, ack := c.Await(context.Background(), wait); ev {
		case gateway.Acked:
			if err := r.acked(ack); err != nil {
				return err
			}
		case gateway.Ended:
			if err := r.ended(c.Ended(r.acked)); len(r.unacked) > 0 {
				return fmt.Errorf("%d batches unacknowledged when the stream ended: %v", len(r.unacked), err)
			}
		default:
			return fmt.Errorf("%d batches unacknowledged after waiting %s", len(r.unacked), r.drain)
		}
	}
	return errors.New("stopped before the end of the file")
}

func (r *sender) count(b *batch) {
	r.sum.BatchesSent++
	r.sum.ReadingsSent += b.readings
	r.sum.WeatherSent += b.weather
}

// acked accounts for an ack. The collector acks in order; an ack for a batch not in flight is a protocol
// violation and ends the replay (its accounting could not be trusted).
func (r *sender) acked(ack *greenwavev1.BatchAck) error {
	i := 0
	for i < len(r.unacked) && r.unacked[i].msg.GetBatchId() != ack.GetBatchId() {
		i++
	}
	if i == len(r.unacked) {
		return fmt.Errorf("%w: the collector acknowledged batch %q, which is not in flight", errProtocol, ack.GetBatchId())
	}
	b := r.unacked[i]
	r.unacked = append(r.unacked[:i], r.unacked[i+1:]...)
	s := r.sum
	s.BatchesAcked++
	s.ReadingsAccepted += int(ack.GetAcceptedReadings())
	s.WeatherAccepted += int(ack.GetAcceptedWeather())
	rejR, rejW := 0, 0
	for _, rj := range ack.GetRejected() {
		if rj.GetKind() == greenwavev1.ReadingKind_READING_KIND_WEATHER {
			rejW++
		} else {
			rejR++
		}
		s.Rejected[gateway.RejectName(rj.GetReason())]++
		r.printer.reject(ack.GetBatchId(), rj)
	}
	s.ReadingsRejected += rejR
	s.WeatherRejected += rejW
	// An ack whose counts do not cover its batch leaves the difference unaccounted, so it shows.
	if miss := b.readings - int(ack.GetAcceptedReadings()) - rejR; miss > 0 {
		s.Unaccounted += miss
	}
	if miss := b.weather - int(ack.GetAcceptedWeather()) - rejW; miss > 0 {
		s.Unaccounted += miss
	}
	r.progress(s, false)
	return nil
}

var errProtocol = errors.New("protocol violation")

// nextBatch returns the next batch to send, or nil and how long to wait before a record is due (0 when the
// source is exhausted). A batch is cut when full, at the end of the source, or before a record that is not due
// yet, so paced replays never hold back due records.
func (r *sender) nextBatch() (*batch, time.Duration, error) {
	var b *batch
	for b == nil || b.readings+b.weather < r.batchSize {
		if r.pending == nil && !r.srcDone {
			rec, err := r.src.Next()
			switch {
			case errors.Is(err, io.EOF):
				r.srcDone = true
			case err != nil:
				return nil, 0, err
			default:
				r.pending = &rec
				r.sum.observe(rec)
			}
		}
		if r.pending == nil {
			break
		}
		if wait := r.due(r.pending.Time()); wait > 0 {
			if b != nil {
				break
			}
			return nil, wait, nil
		}
		if b == nil {
			r.seq++
			b = &batch{msg: &greenwavev1.ReadingBatch{BatchId: fmt.Sprintf("replay-%d", r.seq)}}
		}
		if rd := r.pending.Reading; rd != nil {
			b.msg.Readings = append(b.msg.Readings, wire.ReadingProto(*rd))
			b.readings++
		} else {
			b.msg.Weather = append(b.msg.Weather, wire.WeatherProto(*r.pending.Weather))
			b.weather++
		}
		r.pending = nil
	}
	return b, 0, nil
}

// due returns how long until event time t may be sent: (t − first event time) / speed after the first send.
func (r *sender) due(t time.Time) time.Duration {
	if r.speed == 0 {
		return 0
	}
	now := time.Now()
	if r.wallStart.IsZero() {
		r.wallStart, r.eventStart = now, t
	}
	return time.Until(r.wallStart.Add(time.Duration(float64(t.Sub(r.eventStart)) / r.speed)))
}
