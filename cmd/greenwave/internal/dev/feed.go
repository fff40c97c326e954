package dev

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/gateway"
	"github.com/greenwave-city/greenwave/pkg/sim"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// maxInFlight bounds the batches sent on the stream and not yet acknowledged.
const maxInFlight = 16

// drainTimeout bounds how long a stopping feeder waits for the acks of batches in flight.
const drainTimeout = time.Second

// feeder sends the simulator's ticks to the collector on one StreamReadings stream, paced on an accelerated
// clock that never runs ahead of the wall clock.
type feeder struct {
	client greenwavev1.CollectorServiceClient
	// token is the gateway token sent to the collector ("": anonymous, dev's default).
	token    string
	sim      *sim.Simulator
	speed    float64       // simulated seconds per wall second; 0 for as fast as acks come back
	interval time.Duration // the simulator's IntervalS
	stats    *stats
	now      func() time.Time
}

// dueAt returns when the tick starting at simAt may be sent: after its accelerated wall-clock time (simulated
// time since simStart divided by speed, after wallStart), and never before its interval is over on the wall
// clock, so no reading is from the future.
func (f *feeder) dueAt(wallStart, simStart, simAt time.Time) time.Time {
	due := wallStart
	if f.speed > 0 {
		due = wallStart.Add(time.Duration(float64(simAt.Sub(simStart)) / f.speed))
	}
	if end := simAt.Add(f.interval); end.After(due) {
		due = end
	}
	return due
}

// run feeds until ctx ends (then it waits up to drainTimeout for outstanding acks and returns nil) or the stream
// fails (returning why).
func (f *feeder) run(ctx context.Context) error {
	// The stream outlives ctx by the drain: cancelling it at once would lose the acks of batches in flight.
	st, err := gateway.Open(ctx, f.client, f.token, maxInFlight)
	if err != nil {
		return fmt.Errorf("open StreamReadings: %w", err)
	}
	defer st.Close(f.ack)
	stop := func() error {
		st.CloseSend()
		_ = st.Drain(drainTimeout, f.ack)
		return nil
	}

	wallStart := f.now()
	var simStart time.Time
	for seq := 0; ; seq++ {
		tick := f.sim.Next()
		if seq == 0 {
			simStart = tick.At
		}
		due := f.dueAt(wallStart, simStart, tick.At)
		// Wait until the tick is due and the window has room, taking the acks meanwhile.
		for {
			if ctx.Err() != nil {
				return stop()
			}
			wait := due.Sub(f.now())
			if wait <= 0 && st.Room() {
				break
			}
			switch ev, ack := st.Await(ctx, max(wait, 0)); ev {
			case gateway.Cancelled:
				return stop()
			case gateway.Ended:
				return fmt.Errorf("collector closed the stream: %v", orEOF(st.Ended(f.ack)))
			case gateway.Acked:
				_ = f.ack(ack)
			}
		}
		batch := wire.SimBatch(fmt.Sprintf("dev-%d-%s", seq, tick.At.UTC().Format("20060102T1504Z")), tick)
		if err := st.Send(batch); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// Send reports io.EOF when the stream broke; the receiver has the real status.
			if rerr := st.Drain(drainTimeout, f.ack); !errors.Is(rerr, gateway.ErrStillOpen) {
				return fmt.Errorf("send batch: %v", orEOF(rerr))
			}
			return fmt.Errorf("send batch: %w", err)
		}
		f.stats.sent(len(tick.Readings), len(tick.Weather), tick.At)
	}
}

// ack counts an ack; an ack the feed did not wait for is counted too.
func (f *feeder) ack(a *greenwavev1.BatchAck) error {
	f.stats.ack(a)
	return nil
}

func orEOF(err error) error {
	if err == nil {
		return io.EOF
	}
	return err
}
