package predictor

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/greenwave-city/greenwave/pkg/broadcast"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/topics"
	"github.com/greenwave-city/greenwave/pkg/train"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// partition predicts frames of one partition; the predictor's only state is the shared model store.
type partition struct {
	pred       *Predictor
	rejections *rejections // nil: not counted (tests)
	names      topics.Names
	hub        *broadcast.Hub[*greenwavev1.IntersectionPrediction]
	metrics    *metrics
	now        func() time.Time
	// commitInterval is the stream.WithCheckpointInterval (0: commit after every batch).
	commitInterval time.Duration
	// waiter holds frames whose models are stale until the trainer catches up (nil: never wait); gaveUp is
	// this partition's given-up models (modelWaiter.await).
	waiter *modelWaiter
	gaveUp map[string]time.Time
	// batch holds the predictions handled but not yet acknowledged by Kafka, began when their frames were
	// consumed.
	batch []*greenwavev1.IntersectionPrediction
	began []time.Time
	// published returns the predictions on this partition's predictions topic computed from frames at offset
	// from or later (nil: no Kafka, as in unit tests). It is read at the partition's first frame: what a previous
	// owner published for frames it never committed, to be handed on as published instead of predicted again
	// with models that may have changed since (one event id, one content).
	published func(ctx context.Context, partition int, from int64) (map[string]*greenwavev1.IntersectionPrediction, error)
	prior     map[string]*greenwavev1.IntersectionPrediction
	priorRead bool
}

// handler is the stream handler of the partition: frames decoded by the features topic's declaration,
// predictions handed to subscribers once acknowledged, and input offsets committed at most every
// commitInterval rather than after every batch, saving a synchronous round trip per batch. The predictor has no
// state of its own to snapshot (the models come from the models topic), so a checkpoint only commits the input
// offsets. A crash replays the frames since the last commit; those whose predictions were published are kept as
// published (partition.published), not predicted again.
func (p *partition) handler() *stream.Handler {
	return stream.NewHandler(p.Handle, stream.WithAcknowledged(p.Acknowledged),
		stream.WithCheckpointInterval(p.commitInterval))
}

// Handle is the partition's stream.HandleFunc: frames decoded by the features topic's declaration.
func (p *partition) Handle(ctx context.Context, m kafka.Message) ([]stream.Output, error) {
	return stream.Decoded(wire.TopicFeatures, p.predict)(ctx, m)
}

// predict predicts one decoded frame.
func (p *partition) predict(ctx context.Context, m kafka.Message, fp *greenwavev1.IntersectionFeatures) ([]stream.Output, error) {
	began := p.now()
	if fp.GetIntersectionId() == "" || fp.GetWindowStart() == nil || fp.GetWindowEnd() == nil {
		return nil, stream.Reject(greenwavev1.RejectReason_REJECT_REASON_MALFORMED, "features without intersection_id, window_start or window_end")
	}
	if !p.priorRead && p.published != nil {
		prior, err := p.published(ctx, m.Partition, m.Offset)
		if err != nil {
			return nil, fmt.Errorf("read the predictions published for uncommitted frames: %w", err)
		}
		p.prior, p.priorRead = prior, true
	}
	if pred, ok := p.prior[fp.GetEventId()]; ok {
		delete(p.prior, fp.GetEventId())
		p.metrics.republishSkipped.Inc()
		p.batch = append(p.batch, pred) // to subscribers, as published
		p.began = append(p.began, began)
		return nil, nil
	}
	f := wire.Frame(fp)
	horizons, err := p.pred.horizons.of(f)
	if err != nil {
		cause, key := causeBadWindow, ""
		if ws := f.WindowEnd.Sub(f.WindowStart); train.CheckWindow(int(ws/time.Second)) == nil {
			cause, key = causeHorizons, ws.String()
		}
		p.rejections.add(cause, key, f.IntersectionID, err.Error())
		rej := stream.Reject(greenwavev1.RejectReason_REJECT_REASON_INCONSISTENT, "frame %s: %v", fp.GetEventId(), err)
		rej.EventID = fp.GetEventId()
		return nil, rej
	}
	// Hold the frame while the trainer is behind it (a blocked partition goroutine: kafka-go heartbeats the
	// group on a goroutine of its own, and ctx ends the wait on shutdown or rebalance).
	if err := p.waiter.await(ctx, p.pred, f, horizons, p.gaveUp); err != nil {
		return nil, err
	}
	pred := p.pred.Predict(f)
	out, err := wire.TopicPredictions.Encode(p.names, pred)
	if err != nil {
		return nil, err
	}
	out.SourceOffset, out.HasSourceOffset = m.Offset, true
	for _, ap := range pred.GetApproaches() {
		for _, h := range ap.GetHorizons() {
			if h.GetFallback() {
				p.metrics.fallbacks.Inc()
			}
			if h.GetStale() {
				p.metrics.stale.Inc()
			}
		}
	}
	p.batch = append(p.batch, pred)
	p.began = append(p.began, began)
	return []stream.Output{out}, nil
}

// Acknowledged is the partition's stream.WithAcknowledged: the predictions handled since the last call are on the
// topic now, so subscribers get them — Kafka and gRPC subscribers see the same content. This happens after every write
// of outputs, independently of the (possibly deferred) offset commit.
func (p *partition) Acknowledged(context.Context) error {
	now := p.now()
	for i, pred := range p.batch {
		p.hub.Publish(pred.GetIntersectionId(), pred)
		p.metrics.predictions.Inc()
		p.metrics.latency.Observe(now.Sub(p.began[i]).Seconds())
	}
	clear(p.batch) // let the hub own the predictions
	p.batch, p.began = p.batch[:0], p.began[:0]
	return nil
}
