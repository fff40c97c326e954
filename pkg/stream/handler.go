package stream

import (
	"context"
	"time"

	"github.com/segmentio/kafka-go"
)

// HandleFunc processes one record and returns the records to publish for it. A *RejectError dead-letters the
// record and processing continues; any other error stops the processor (the record is retried after a restart,
// from the last committed offset).
type HandleFunc func(ctx context.Context, m kafka.Message) ([]Output, error)

// Decoder reads the value of a record; an error (a *RejectError) dead-letters the record. pkg/wire's topic
// declarations are Decoders.
type Decoder[T any] interface {
	Decode(m kafka.Message) (T, error)
}

// DecoderFunc adapts a function to Decoder.
type DecoderFunc[T any] func(m kafka.Message) (T, error)

// Decode implements Decoder.
func (f DecoderFunc[T]) Decode(m kafka.Message) (T, error) { return f(m) }

// Decoded returns the HandleFunc that decodes every record with d and hands the value to h with the record. A
// record d rejects never reaches h: its error is returned for the processor to dead-letter.
func Decoded[T any](d Decoder[T], h func(ctx context.Context, m kafka.Message, v T) ([]Output, error)) HandleFunc {
	return func(ctx context.Context, m kafka.Message) ([]Output, error) {
		v, err := d.Decode(m)
		if err != nil {
			return nil, err
		}
		return h(ctx, m, v)
	}
}

// Handler processes the records of one assigned partition, in offset order, from one goroutine: a HandleFunc
// and the optional behaviours given as HandlerOptions. A new Handler is built (and its state restored) every
// time the partition is assigned.
type Handler struct {
	handle     HandleFunc
	checkpoint func(ctx context.Context) ([]Output, error)
	tick       func(ctx context.Context, now time.Time) ([]Output, error)
	interval   time.Duration
	due        func(now time.Time, idle time.Duration) bool
	acked      func(ctx context.Context) error
	close      func() error
	stateSize  func() StateSize
}

// HandlerOption adds an optional behaviour to a Handler.
type HandlerOption func(*Handler)

// NewHandler returns the Handler of handle with opts. Without options it is stateless: nothing to snapshot,
// offsets committed after every batch.
func NewHandler(handle HandleFunc, opts ...HandlerOption) *Handler {
	h := &Handler{handle: handle}
	for _, o := range opts {
		o(h)
	}
	return h
}

// WithCheckpoint gives the state records (changelog snapshots) that cover everything handled so far. They are
// published after the outputs are acknowledged and before the input offsets are committed.
func WithCheckpoint(f func(ctx context.Context) ([]Output, error)) HandlerOption {
	return func(h *Handler) { h.checkpoint = f }
}

// WithTick acts on processing time, such as closing the windows of a partition that went quiet: f is called
// from the partition's goroutine every ProcessorConfig.IdleTick.
func WithTick(f func(ctx context.Context, now time.Time) ([]Output, error)) HandlerOption {
	return func(h *Handler) { h.tick = f }
}

// WithCheckpointInterval is for handlers whose state snapshots are expensive: outputs are still published batch
// by batch, but the state is snapshotted — and the input offsets committed — at most once per interval (and
// after the partition has been idle that long). A crash in between replays the records since the last
// checkpoint, which the handler's restored state must recognise as not yet applied, exactly as after any
// restart; outputs published for them are published again with the same event ids.
func WithCheckpointInterval(interval time.Duration) HandlerOption {
	return func(h *Handler) { h.interval = interval }
}

// WithCheckpointDue lets the handler decide from its own state when it is snapshotted, for example on event
// time, so that the cost of the changelog follows the input rather than the wall clock or the batching. due is
// asked at the end of every batch (idle 0) and, while handled records are not yet covered by a snapshot,
// whenever the partition has had no record for the WithCheckpointInterval interval (idle is then the time since
// the last record; without an interval it is never asked while idle). Offsets are committed only with a
// checkpoint, so a crash replays the records since the last one. due takes precedence over the interval, which
// then only paces the idle question.
func WithCheckpointDue(due func(now time.Time, idle time.Duration) bool) HandlerOption {
	return func(h *Handler) { h.due = due }
}

// WithAcknowledged acts once the outputs of the records handled are acknowledged by Kafka, such as handing
// results to in-process subscribers, which must never see a record that a Kafka consumer might not. f is called
// from the partition's goroutine after every successful write of a batch's outputs, also when the checkpoint is
// deferred, and before the checkpoint when that is due. An error stops the processor, like a checkpoint error.
func WithAcknowledged(f func(ctx context.Context) error) HandlerOption {
	return func(h *Handler) { h.acked = f }
}

// WithClose releases what the handler holds when its partition is revoked or the processor stops.
func WithClose(f func() error) HandlerOption {
	return func(h *Handler) { h.close = f }
}
