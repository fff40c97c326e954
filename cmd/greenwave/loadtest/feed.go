package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/gateway"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// readings makes one reading per detector of intersections [from, to) for the interval starting at start:
// counts that vary by intersection, approach and time (so no detector looks stuck to the cleaner), a plausible
// occupancy and speed.
func readings(from, to int, start time.Time, intervalS int) []*greenwavev1.TrafficReading {
	out := make([]*greenwavev1.TrafficReading, 0, 4*(to-from))
	at := timestamppb.New(start)
	tick := int(start.Unix() / int64(intervalS))
	for i := from; i < to; i++ {
		for k, a := range approachIDs {
			// 1..6 vehicles per 10 s: 360..2160 veh/h over one lane of 1 800 veh/h saturation flow, below the
			// cleaner's 1.5 × capacity bound.
			n := 1 + (i*7+k*3+tick*5)%6
			c := float64(n) * float64(intervalS) / 10
			occ, speed := 0.02+0.03*float64(n), 55-3*float64(n)
			out = append(out, &greenwavev1.TrafficReading{DetectorId: DetectorID(i, a), ObservedAt: at,
				IntervalS: uint32(intervalS), Count: c, OccupancyRatio: &occ, SpeedKmh: &speed})
		}
	}
	return out
}

// sender keeps a bounded number of batches in flight on one StreamReadings stream and counts the acks.
type sender struct {
	s        *gateway.Stream
	next     int
	sent     int
	accepted int
	rejected int
}

func newSender(ctx context.Context, e *testEnv, inFlight int) (*sender, error) {
	s, err := gateway.Open(ctx, greenwavev1.NewCollectorServiceClient(e.grpc), "", inFlight)
	if err != nil {
		return nil, fmt.Errorf("open StreamReadings: %w", err)
	}
	return &sender{s: s}, nil
}

// send sends one batch, first waiting for an ack when the window is full.
func (s *sender) send(ctx context.Context, rs []*greenwavev1.TrafficReading) error {
	for !s.s.Room() {
		if err := s.await(ctx, 0); err != nil {
			return err
		}
	}
	s.next++
	if err := s.s.Send(&greenwavev1.ReadingBatch{BatchId: "b" + strconv.Itoa(s.next), Readings: rs}); err != nil {
		return fmt.Errorf("send batch: %w", err)
	}
	s.sent += len(rs)
	return s.collect()
}

// collect takes the acks already received, without waiting.
func (s *sender) collect() error {
	for {
		select {
		case ack := <-s.s.Acks():
			s.count(ack)
		default:
			return nil
		}
	}
}

func (s *sender) count(ack *greenwavev1.BatchAck) {
	s.accepted += int(ack.GetAcceptedReadings())
	s.rejected += len(ack.GetRejected())
}

// await waits (d <= 0: without limit) for one ack.
func (s *sender) await(ctx context.Context, d time.Duration) error {
	switch ev, ack := s.s.Await(ctx, d); ev {
	case gateway.Acked:
		s.count(ack)
		return nil
	case gateway.Ended:
		return fmt.Errorf("StreamReadings ended: %v", s.s.Ended(func(a *greenwavev1.BatchAck) error { s.count(a); return nil }))
	case gateway.Cancelled:
		return ctx.Err()
	default:
		return nil
	}
}

// finish closes the sending side and waits (at most two minutes) for every batch in flight to be acknowledged.
func (s *sender) finish() error {
	s.s.CloseSend()
	onAck := func(a *greenwavev1.BatchAck) error { s.count(a); return nil }
	err := s.s.Drain(2*time.Minute, onAck)
	s.s.Close(onAck)
	if err != nil {
		return fmt.Errorf("StreamReadings: %w", err)
	}
	if s.rejected > 0 {
		return fmt.Errorf("the collector rejected %d of %d readings", s.rejected, s.sent)
	}
	return nil
}
