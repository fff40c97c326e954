package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// Handler processes the records of one assigned partition, in offset order, from one goroutine. A new Handler
// is built (and its state restored) every time the partition is assigned.
type Handler interface {
	// Handle processes one record and returns the records to publish for it. A *RejectError dead-letters the
	// record and processing continues; any other error stops the processor (the record is retried after a
	// restart, from the last committed offset).
	Handle(ctx context.Context, m kafka.Message) ([]Output, error)
	// Checkpoint returns the state records (changelog snapshots) that cover everything handled so far. They are
	// published after the outputs are acknowledged and before the input offsets are committed.
	Checkpoint(ctx context.Context) ([]Output, error)
}

// Ticker is implemented by handlers that act on processing time, such as closing the windows of a partition
// that went quiet. Tick is called from the partition's goroutine.
type Ticker interface {
	Tick(ctx context.Context, now time.Time) ([]Output, error)
}

// CheckpointPolicy is implemented by handlers whose state snapshots are expensive: outputs are still published
// batch by batch, but the state is snapshotted — and the input offsets committed — at most once per
// CheckpointInterval (and after the partition has been idle that long). A crash in between replays the records
// since the last checkpoint, which the handler's restored state must recognise as not yet applied, exactly as
// after any restart; outputs published for them are published again with the same event ids.
type CheckpointPolicy interface {
	CheckpointInterval() time.Duration
}

// CheckpointDecider is implemented by handlers that decide from their own state when it is snapshotted, for
// example on event time, so that the cost of the changelog follows the input rather than the wall clock or the
// batching. CheckpointDue is asked at the end of every batch (idle 0) and, while handled records are not yet
// covered by a snapshot, whenever the partition has had no record for the CheckpointPolicy interval (idle is
// then the time since the last record; without a CheckpointPolicy, or with interval 0, it is never asked while
// idle). Offsets are committed only with a checkpoint, so a crash replays the records since the last one, exactly
// as with CheckpointPolicy. A CheckpointDecider takes precedence over the interval of CheckpointPolicy, which
// then only paces the idle question.
type CheckpointDecider interface {
	CheckpointDue(now time.Time, idle time.Duration) bool
}

// AckObserver is implemented by handlers that act once the outputs of the records they handled are acknowledged
// by Kafka, such as handing results to in-process subscribers, which must never see a record that a Kafka
// consumer might not. Acknowledged is called from the partition's goroutine after every successful write of a
// batch's outputs, also when a CheckpointPolicy defers the checkpoint, and before Checkpoint when that is due. An
// error stops the processor, like a Checkpoint error.
type AckObserver interface {
	Acknowledged(ctx context.Context) error
}

// HandlerFunc adapts a stateless function to Handler.
type HandlerFunc func(ctx context.Context, m kafka.Message) ([]Output, error)

// Handle implements Handler.
func (f HandlerFunc) Handle(ctx context.Context, m kafka.Message) ([]Output, error) { return f(ctx, m) }

// Checkpoint implements Handler; a stateless handler has nothing to snapshot.
func (f HandlerFunc) Checkpoint(context.Context) ([]Output, error) { return nil, nil }

// RejectError marks a record as bad input: it goes to the dead-letter topic with the reason.
type RejectError struct {
	Reason greenwavev1.RejectReason
	Detail string
	// EventID is the rejected record's own id, when it could be read.
	EventID    string
	ObservedAt time.Time
}

// Error implements error.
func (e *RejectError) Error() string {
	return fmt.Sprintf("rejected (%s): %s", ReasonLabel(e.Reason), e.Detail)
}

// Reject returns a *RejectError.
func Reject(reason greenwavev1.RejectReason, format string, args ...any) *RejectError {
	return &RejectError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// ReasonLabel is the short metric label of a reason ("out_of_range").
func ReasonLabel(r greenwavev1.RejectReason) string {
	const prefix = "REJECT_REASON_"
	s := r.String()
	if len(s) > len(prefix) {
		s = s[len(prefix):]
	}
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// DeadLetter builds the dead-letter record for m. Its event id is deterministic, so a replayed rejection
// produces the same dead letter.
func DeadLetter(service, dlqTopic string, m kafka.Message, rej *RejectError) Output {
	dl := &greenwavev1.DeadLetter{
		SchemaVersion:   1,
		EventId:         fmt.Sprintf("%s/%d/%d/%s", m.Topic, m.Partition, m.Offset, ReasonLabel(rej.Reason)),
		Service:         service,
		SourceTopic:     m.Topic,
		SourcePartition: int32(m.Partition),
		SourceOffset:    m.Offset,
		Key:             m.Key,
		Payload:         m.Value,
		Reason:          rej.Reason,
		Detail:          rej.Detail,
		SourceEventId:   rej.EventID,
	}
	if rej.EventID == "" {
		dl.SourceEventId = string(Header(m, HeaderEventID))
	}
	if !rej.ObservedAt.IsZero() {
		dl.ObservedAt = timestamppb.New(rej.ObservedAt)
	}
	b, _ := proto.Marshal(dl) // a DeadLetter built from valid fields always marshals
	return Output{Topic: dlqTopic, Key: m.Key, Value: b, EventID: dl.EventId, Payload: "greenwave.v1.DeadLetter"}
}

// ProcessorConfig configures a Processor.
type ProcessorConfig struct {
	Brokers []string
	// GroupID is the consumer group; every instance of a service shares it.
	GroupID string
	// Topic is the input topic.
	Topic string
	// DeadLetterTopic receives rejected records.
	DeadLetterTopic string
	// Service names the service in dead letters and metrics.
	Service string
	// MaxBatch bounds how many records are handled before outputs are flushed and offsets committed
	// (default 500). A batch also ends whenever the partition has no more records ready.
	MaxBatch int
	// MaxWait bounds a fetch's wait for new data (default 250ms; kafka-go's default is 10s).
	MaxWait time.Duration
	// IdleTick is the processing-time interval at which Ticker handlers are ticked (0 disables ticks).
	IdleTick time.Duration
	// SessionTimeout is how long the group waits for a silent member before rebalancing (default 10s).
	SessionTimeout time.Duration
}

// Processor runs the consume → handle → produce → wait for ack → commit loop for one input topic, one
// goroutine per assigned partition, so records of one key are always handled in order.
type Processor struct {
	cfg        ProcessorConfig
	producer   *Producer
	newHandler func(ctx context.Context, partition int) (Handler, error)
	log        *zap.Logger
	metrics    *Metrics
	joined     atomic.Bool
	now        func() time.Time
}

// NewProcessor returns a Processor. newHandler is called on every assignment of a partition and must restore
// that partition's state before returning.
func NewProcessor(cfg ProcessorConfig, producer *Producer, newHandler func(ctx context.Context, partition int) (Handler, error), log *zap.Logger, metrics *Metrics) *Processor {
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 500
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 250 * time.Millisecond
	}
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = 10 * time.Second
	}
	return &Processor{cfg: cfg, producer: producer, newHandler: newHandler, log: log, metrics: metrics, now: time.Now}
}

// Joined reports whether the processor has joined its consumer group at least once (a readiness signal).
func (p *Processor) Joined() bool { return p.joined.Load() }

// ReadyCheck is a readiness check: it fails until the processor has joined its consumer group.
func (p *Processor) ReadyCheck() error {
	if !p.Joined() {
		return errors.New("joining the consumer group")
	}
	return nil
}

// Run consumes until ctx ends (returning nil) or a partition fails (returning its error).
func (p *Processor) Run(ctx context.Context) error {
	group, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                p.cfg.GroupID,
		Brokers:           p.cfg.Brokers,
		Topics:            []string{p.cfg.Topic},
		StartOffset:       kafka.FirstOffset,
		SessionTimeout:    p.cfg.SessionTimeout,
		RebalanceTimeout:  p.cfg.SessionTimeout,
		HeartbeatInterval: p.cfg.SessionTimeout / 10,
		JoinGroupBackoff:  500 * time.Millisecond,
		ErrorLogger:       kafka.LoggerFunc(p.log.Sugar().Named("kafka-group").Debugf),
	})
	if err != nil {
		return fmt.Errorf("join consumer group %s: %w", p.cfg.GroupID, err)
	}
	defer group.Close()

	errc := make(chan error, 1)
	fail := func(err error) {
		select {
		case errc <- err:
		default:
		}
	}
	go func() {
		for {
			gen, err := group.Next(ctx)
			if err != nil {
				if ctx.Err() != nil || errors.Is(err, kafka.ErrGroupClosed) {
					return
				}
				p.log.Warn("consumer group generation failed; rejoining", zap.Error(err))
				continue
			}
			assigned := gen.Assignments[p.cfg.Topic]
			p.log.Info("partitions assigned", zap.Int32("generation", gen.ID), zap.Int("count", len(assigned)))
			p.joined.Store(true)
			for _, a := range assigned {
				gen.Start(func(ctx context.Context) {
					if err := p.runPartition(ctx, gen, a); err != nil && ctx.Err() == nil {
						fail(err)
					}
				})
			}
		}
	}()
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		return err
	}
}

func (p *Processor) runPartition(ctx context.Context, gen *kafka.Generation, a kafka.PartitionAssignment) error {
	log := p.log.With(zap.String("topic", p.cfg.Topic), zap.Int("partition", a.ID))
	lag := p.metrics.partitionLag(ctx, p.cfg, a, log)
	defer lag.done()
	h, err := p.newHandler(ctx, a.ID)
	if err != nil {
		return fmt.Errorf("restore partition %d: %w", a.ID, err)
	}
	if c, ok := h.(io.Closer); ok {
		defer c.Close()
	}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:   p.cfg.Brokers,
		Topic:     p.cfg.Topic,
		Partition: a.ID,
		MinBytes:  1,
		MaxBytes:  8 << 20,
		MaxWait:   p.cfg.MaxWait,
	})
	defer r.Close()
	start := a.Offset
	if start < 0 {
		start = kafka.FirstOffset
	}
	if err := r.SetOffset(start); err != nil {
		return fmt.Errorf("seek partition %d to %d: %w", a.ID, start, err)
	}
	log.Info("partition started", zap.Int64("offset", a.Offset))

	ticker, _ := h.(Ticker)
	acked, _ := h.(AckObserver)
	decider, _ := h.(CheckpointDecider)
	var interval time.Duration
	if policy, ok := h.(CheckpointPolicy); ok {
		interval = policy.CheckpointInterval()
	}
	var (
		pending        []Output
		last           int64 = -1
		handled        int
		lastTick       = p.now()
		lastCheckpoint = p.now()
		deferred       bool // outputs published since the last checkpoint, state not yet snapshotted
		lastRecord     = p.now()
		lastIdleAsk    time.Time // when the decider was last asked while idle
		idle           bool      // the flush follows a fetch that timed out
	)
	checkpointDue := func() bool {
		if decider != nil {
			var d time.Duration
			if idle {
				lastIdleAsk = p.now()
				d = lastIdleAsk.Sub(lastRecord)
			}
			return decider.CheckpointDue(p.now(), d)
		}
		return interval <= 0 || p.now().Sub(lastCheckpoint) >= interval
	}
	flush := func() error {
		if handled == 0 && len(pending) == 0 && !(deferred && checkpointDue()) {
			return nil
		}
		began := p.now()
		if err := p.producer.Write(ctx, pending...); err != nil {
			return fmt.Errorf("publish outputs of partition %d: %w", a.ID, err)
		}
		if acked != nil {
			if err := acked.Acknowledged(ctx); err != nil {
				return fmt.Errorf("acknowledged outputs of partition %d: %w", a.ID, err)
			}
		}
		if !checkpointDue() {
			p.metrics.observeFlush(p.cfg.Topic, handled, len(pending), p.now().Sub(began))
			pending, handled, deferred = pending[:0], 0, true // last stays: the next checkpoint commits it
			return nil
		}
		state, err := h.Checkpoint(ctx)
		if err != nil {
			return fmt.Errorf("checkpoint partition %d: %w", a.ID, err)
		}
		if err := p.producer.Write(ctx, state...); err != nil {
			return fmt.Errorf("publish state of partition %d: %w", a.ID, err)
		}
		if last >= 0 {
			if err := gen.CommitOffsets(map[string]map[int]int64{p.cfg.Topic: {a.ID: last + 1}}); err != nil {
				return fmt.Errorf("commit offset %d of partition %d: %w", last+1, a.ID, err)
			}
		}
		p.metrics.observeFlush(p.cfg.Topic, handled, len(pending), p.now().Sub(began))
		pending, handled, last, deferred, lastCheckpoint = pending[:0], 0, -1, false, p.now()
		return nil
	}
	tick := func() error {
		if ticker == nil {
			return nil
		}
		lastTick = p.now()
		outs, err := ticker.Tick(ctx, lastTick)
		if err != nil {
			return fmt.Errorf("tick partition %d: %w", a.ID, err)
		}
		pending = append(pending, outs...)
		return nil
	}
	for {
		// Wait for the next record no longer than the next tick or the deferred checkpoint is due.
		var wait time.Duration
		if ticker != nil && p.cfg.IdleTick > 0 {
			wait = p.cfg.IdleTick
		}
		if deferred && (decider == nil || interval > 0) {
			since := lastCheckpoint
			if decider != nil {
				// A decider is asked after interval of silence, and again every interval while it declines.
				since = lastRecord
				if lastIdleAsk.After(since) {
					since = lastIdleAsk
				}
			}
			due := max(time.Millisecond, interval-p.now().Sub(since))
			if wait == 0 || due < wait {
				wait = due
			}
		}
		fetchCtx, cancel := ctx, context.CancelFunc(func() {})
		if wait > 0 {
			fetchCtx, cancel = context.WithTimeout(ctx, wait)
		}
		m, err := r.FetchMessage(fetchCtx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, context.DeadlineExceeded) {
				if ticker != nil && p.cfg.IdleTick > 0 && p.now().Sub(lastTick) >= p.cfg.IdleTick {
					if err := tick(); err != nil {
						return err
					}
				}
				idle = true
				err := flush()
				idle = false
				if err != nil {
					return err
				}
				continue
			}
			return fmt.Errorf("fetch partition %d: %w", a.ID, err)
		}
		lastRecord = p.now()
		outs, err := p.handle(ctx, h, m, log)
		if err != nil {
			return err
		}
		pending = append(pending, outs...)
		last = m.Offset
		handled++
		lag.set(r.Lag())
		if handled >= p.cfg.MaxBatch || r.Lag() <= 0 {
			if p.cfg.IdleTick > 0 && p.now().Sub(lastTick) >= p.cfg.IdleTick {
				if err := tick(); err != nil {
					return err
				}
			}
			if err := flush(); err != nil {
				return err
			}
		}
	}
}

// handle runs the handler with panic recovery: a record that makes the handler panic is dead-lettered rather
// than crash-looping the service on the same offset forever.
func (p *Processor) handle(ctx context.Context, h Handler, m kafka.Message, log *zap.Logger) (outs []Output, err error) {
	defer func() {
		if rec := recover(); rec != nil {
			log.Error("handler panicked; dead-lettering record", zap.Int64("offset", m.Offset), zap.Any("panic", rec), zap.ByteString("stack", debug.Stack()))
			outs, err = p.reject(m, &RejectError{Reason: greenwavev1.RejectReason_REJECT_REASON_MALFORMED, Detail: fmt.Sprintf("handler panic: %v", rec)}), nil
		}
	}()
	outs, err = h.Handle(ctx, m)
	p.metrics.records.WithLabelValues(p.cfg.Topic).Inc()
	var rej *RejectError
	if errors.As(err, &rej) {
		return append(outs, p.reject(m, rej)...), nil
	}
	if err != nil {
		return nil, fmt.Errorf("handle %s[%d]@%d: %w", m.Topic, m.Partition, m.Offset, err)
	}
	return outs, nil
}

func (p *Processor) reject(m kafka.Message, rej *RejectError) []Output {
	p.metrics.rejected.WithLabelValues(p.cfg.Topic, ReasonLabel(rej.Reason)).Inc()
	return []Output{DeadLetter(p.cfg.Service, p.cfg.DeadLetterTopic, m, rej)}
}

// Metrics are the processor's Prometheus metrics.
type Metrics struct {
	records  *prometheus.CounterVec
	rejected *prometheus.CounterVec
	outputs  *prometheus.CounterVec
	flush    *prometheus.HistogramVec
	lag      *prometheus.GaugeVec
}

// NewMetrics registers the stream metrics in reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "greenwave", Subsystem: "stream", Name: "records_total",
			Help: "Input records handled, by topic.",
		}, []string{"topic"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "greenwave", Subsystem: "stream", Name: "dead_letters_total",
			Help: "Input records sent to the dead-letter topic, by topic and reason.",
		}, []string{"topic", "reason"}),
		outputs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "greenwave", Subsystem: "stream", Name: "outputs_total",
			Help: "Records published for the input of a topic (excluding state snapshots).",
		}, []string{"topic"}),
		flush: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "greenwave", Subsystem: "stream", Name: "flush_seconds",
			Help:    "Time to publish a batch's outputs and state and commit its offsets.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"topic"}),
	}
	m.lag = newLagGauge()
	reg.MustRegister(m.records, m.rejected, m.outputs, m.flush, m.lag)
	return m
}

func (m *Metrics) observeFlush(topic string, _ int, outputs int, d time.Duration) {
	m.outputs.WithLabelValues(topic).Add(float64(outputs))
	m.flush.WithLabelValues(topic).Observe(d.Seconds())
}
