package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

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
	client   greenwavev1.CollectorServiceClient
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
	sctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := f.client.StreamReadings(sctx)
	if err != nil {
		return fmt.Errorf("open StreamReadings: %w", err)
	}
	window := make(chan struct{}, maxInFlight)
	acksDone := make(chan error, 1)
	go func() {
		for {
			resp, err := stream.Recv()
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				acksDone <- err
				return
			}
			f.stats.ack(resp.GetAck())
			select {
			case <-window:
			default: // an ack we did not wait for; count it and carry on
			}
		}
	}()
	stop := func() error {
		_ = stream.CloseSend()
		select {
		case err := <-acksDone:
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("receive acks: %w", err)
			}
		case <-time.After(drainTimeout):
		}
		return nil
	}

	wallStart := f.now()
	var simStart time.Time
	timer := time.NewTimer(0)
	defer timer.Stop()
	for seq := 0; ; seq++ {
		tick := f.sim.Next()
		if seq == 0 {
			simStart = tick.At
		}
		if wait := f.dueAt(wallStart, simStart, tick.At).Sub(f.now()); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return stop()
			case err := <-acksDone:
				return fmt.Errorf("collector closed the stream: %v", orEOF(err))
			case <-timer.C:
			}
		}
		select {
		case <-ctx.Done():
			return stop()
		case err := <-acksDone:
			return fmt.Errorf("collector closed the stream: %v", orEOF(err))
		case window <- struct{}{}:
		}
		batch := wire.SimBatch(fmt.Sprintf("dev-%d-%s", seq, tick.At.UTC().Format("20060102T1504Z")), tick)
		if err := stream.Send(&greenwavev1.StreamReadingsRequest{Batch: batch}); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// Send reports io.EOF when the stream broke; the receiver has the real status.
			select {
			case rerr := <-acksDone:
				return fmt.Errorf("send batch: %v", orEOF(rerr))
			case <-time.After(drainTimeout):
				return fmt.Errorf("send batch: %w", err)
			}
		}
		f.stats.sent(len(tick.Readings), len(tick.Weather), tick.At)
	}
}

func orEOF(err error) error {
	if err == nil {
		return io.EOF
	}
	return err
}
