package collector

import (
	"context"
	"errors"
	"sync"

	"github.com/greenwave-city/greenwave/pkg/stream"
)

// A stream's batches are validated in parallel, but their records must reach Kafka in the order the gateway
// sent them: a gateway replaying history sends consecutive intervals in consecutive batches, and the cleaner
// dead-letters readings that arrive later than its allowed lateness. The sequencer keeps that order while
// still overlapping Kafka round trips: each batch waits for its turn (the previous batch has been handed
// over), then joins the current group; a group of consecutive batches is written with one Write call, whose
// records kafka-go keeps in order per partition (group commit).

// turn orders one batch after its predecessor.
type turn struct {
	prev <-chan struct{}
	done chan struct{}
	once sync.Once
}

func newTurn(prev <-chan struct{}) *turn { return &turn{prev: prev, done: make(chan struct{})} }

// finish releases the next batch; it is idempotent.
func (t *turn) finish() { t.once.Do(func() { close(t.done) }) }

type seqJob struct {
	outs []stream.Output
	done chan error
}

// sequencer writes a stream's batches in turn order, grouping those that are ready together.
type sequencer struct {
	pub     Publisher
	jobs    chan seqJob
	stopped chan struct{} // closed when run returns
}

// maxGroup bounds how many batches share one Write.
const maxGroup = 64

func newSequencer(pub Publisher) *sequencer {
	return &sequencer{pub: pub, jobs: make(chan seqJob, maxGroup), stopped: make(chan struct{})}
}

// run writes groups until ctx ends.
func (q *sequencer) run(ctx context.Context) {
	defer close(q.stopped)
	for {
		var j seqJob
		select {
		case j = <-q.jobs:
		case <-ctx.Done():
			return
		}
		group := []seqJob{j}
		outs := append([]stream.Output(nil), j.outs...)
	collect:
		for len(group) < maxGroup {
			select {
			case j := <-q.jobs:
				group = append(group, j)
				outs = append(outs, j.outs...)
			default:
				break collect
			}
		}
		err := q.pub.Write(ctx, outs...)
		for _, g := range group {
			g.done <- err
		}
	}
}

// publisher returns the publish function of the batch holding t: it waits for the batch's turn, hands the
// records over in order, releases the next batch and waits for Kafka's acknowledgement.
func (q *sequencer) publisher(t *turn) publishFunc {
	return func(ctx context.Context, outs ...stream.Output) error {
		select {
		case <-t.prev:
		case <-ctx.Done():
			return ctx.Err()
		}
		done := make(chan error, 1)
		select {
		case q.jobs <- seqJob{outs: outs, done: done}:
		case <-ctx.Done():
			return ctx.Err()
		}
		t.finish()
		// Handed over: the records are being written. Wait for the verdict even if ctx ends, so a batch is never
		// answered as failed and then written (the Publisher's write is bounded; see run.go). A sequencer that
		// stopped before taking the job never writes it.
		select {
		case err := <-done:
			return err
		case <-q.stopped:
			select {
			case err := <-done:
				return err
			default:
				return errors.New("the collector is stopping: the batch was not written")
			}
		}
	}
}
