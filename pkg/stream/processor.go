package stream

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/greenwave-city/greenwave/pkg/kafkaconn"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

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

// DeadLetterFunc builds the dead-letter record of an input record m that service rejected, for dlqTopic
// (pkg/wire's DeadLetter).
type DeadLetterFunc func(service, dlqTopic string, m kafka.Message, rej *RejectError) Output

// ProcessorConfig configures a Processor.
type ProcessorConfig struct {
	// Conn is the Kafka connection (brokers and security).
	Conn kafkaconn.Conn
	// GroupID is the consumer group; every instance of a service shares it.
	GroupID string
	// Topic is the input topic.
	Topic string
	// DeadLetterTopic receives rejected records.
	DeadLetterTopic string
	// Service names the service in dead letters and metrics.
	Service string
	// DeadLetter builds the dead letters of rejected records (required).
	DeadLetter DeadLetterFunc
	// MaxBatch bounds how many records are handled before outputs are flushed and offsets committed
	// (default 500). A batch also ends whenever the partition has no more records ready.
	MaxBatch int
	// MaxWait bounds a fetch's wait for new data (default 250ms; kafka-go's default is 10s).
	MaxWait time.Duration
	// IdleTick is the processing-time interval at which handlers with WithTick are ticked (0 disables ticks).
	IdleTick time.Duration
	// SessionTimeout is how long the group waits for a silent member before rebalancing (default 10s).
	SessionTimeout time.Duration
	// LeaveTimeout bounds how long Run waits, once ctx ends, for the partitions to stop and the group to be left
	// (default 5s). kafka-go cannot interrupt a JoinGroup in flight, which the broker may hold for a whole
	// rebalance while other members shut down too; past the bound Run returns anyway. That is safe: offsets
	// are committed only after their outputs are acknowledged, so the partitions' next owner redoes at most
	// the uncommitted records, exactly as after a crash, and the broker drops the member after SessionTimeout.
	LeaveTimeout time.Duration
}

// Processor runs the consume → handle → produce → wait for ack → commit loop for one input topic, one
// goroutine per assigned partition, so records of one key are always handled in order.
type Processor struct {
	cfg        ProcessorConfig
	producer   *Producer
	newHandler func(ctx context.Context, partition int) (*Handler, error)
	log        *zap.Logger
	metrics    *Metrics
	joined     atomic.Bool
	now        func() time.Time
}

// NewProcessor returns a Processor. newHandler is called on every assignment of a partition and must restore
// that partition's state before returning.
func NewProcessor(cfg ProcessorConfig, producer *Producer, newHandler func(ctx context.Context, partition int) (*Handler, error), log *zap.Logger, metrics *Metrics) *Processor {
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 500
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 250 * time.Millisecond
	}
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = 10 * time.Second
	}
	if cfg.LeaveTimeout <= 0 {
		cfg.LeaveTimeout = 5 * time.Second
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
	if p.cfg.DeadLetter == nil {
		return fmt.Errorf("run processor of %s: no DeadLetter in the config", p.cfg.Topic)
	}
	group, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                p.cfg.GroupID,
		Brokers:           p.cfg.Conn.Brokers,
		Dialer:            p.cfg.Conn.Dialer(),
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
	defer p.leave(group)

	errc := make(chan error, 1)
	fail := func(err error) {
		select {
		case errc <- err:
		default:
		}
	}
	go func() {
		failures := 0
		for {
			gen, err := group.Next(ctx)
			if err != nil {
				if ctx.Err() != nil || errors.Is(err, kafka.ErrGroupClosed) {
					return
				}
				// Wrong credentials or missing ACLs never heal by rejoining: stop with the setting to fix.
				if fatal := p.cfg.Conn.Classify(err); fatal != nil {
					fail(fmt.Errorf("join consumer group %s: %w", p.cfg.GroupID, fatal))
					return
				}
				// Once, then every 20th failure: an outage of minutes must not flood the log.
				if failures%20 == 0 {
					p.log.Warn("consumer group generation failed; rejoining", zap.Error(err), zap.Int("failures", failures+1))
				}
				failures++
				p.cfg.Conn.Health().Failed("consumer-group "+p.cfg.Topic, err)
				continue
			}
			if failures > 0 {
				p.log.Info("consumer group joined again", zap.Int("failures", failures))
			}
			failures = 0
			p.cfg.Conn.Health().Recovered("consumer-group " + p.cfg.Topic)
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

// leave closes the group (stopping its partitions and leaving it), waiting at most LeaveTimeout.
func (p *Processor) leave(group *kafka.ConsumerGroup) {
	left := make(chan struct{})
	go func() {
		_ = group.Close() // always nil
		close(left)
	}()
	t := time.NewTimer(p.cfg.LeaveTimeout)
	defer t.Stop()
	select {
	case <-left:
	case <-t.C:
		p.metrics.unfinishedLeaves.Inc()
		p.log.Warn("consumer group not left in time; exiting without it (the broker drops this member after the session timeout)",
			zap.String("group", p.cfg.GroupID), zap.Duration("leave_timeout", p.cfg.LeaveTimeout))
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
	if h.close != nil {
		defer h.close()
	}
	state := p.metrics.partitionState(p.cfg, a.ID, h)
	defer state.done()
	start := a.Offset
	if start < 0 {
		start = kafka.FirstOffset
	}
	r := newPartReader(p.cfg.Conn, kafka.ReaderConfig{
		Brokers:   p.cfg.Conn.Brokers,
		Dialer:    p.cfg.Conn.Dialer(),
		Topic:     p.cfg.Topic,
		Partition: a.ID,
		MinBytes:  1,
		MaxBytes:  8 << 20,
		MaxWait:   p.cfg.MaxWait,
	}, p.component(), start)
	defer r.close()
	log.Info("partition started", zap.Int64("offset", a.Offset))
	now := p.now()
	l := &partitionLoop{p: p, gen: gen, id: a.ID, h: h, handle: p.middleware(h.handle, log), r: r, lag: lag, state: state,
		last: -1, lastTick: now, lastCheckpoint: now, lastRecord: now}
	return l.run(ctx)
}

// partitionLoop is the consume → handle → flush loop of one assigned partition, run from its goroutine.
type partitionLoop struct {
	p      *Processor
	gen    *kafka.Generation
	id     int
	h      *Handler
	handle HandleFunc
	r      *partReader
	lag    *lagSeries
	state  *stateSeries

	pending        []Output
	last           int64 // offset of the last record handled and not yet committed (-1: none)
	handled        int
	lastTick       time.Time
	lastCheckpoint time.Time
	deferred       bool // outputs published since the last checkpoint, state not yet snapshotted
	lastRecord     time.Time
	lastIdleAsk    time.Time // when the decider was last asked while idle
	idle           bool      // the flush follows a fetch that timed out
}

func (l *partitionLoop) run(ctx context.Context) error {
	for {
		fetchCtx, cancel := ctx, context.CancelFunc(func() {})
		if wait := l.wait(); wait > 0 {
			fetchCtx, cancel = context.WithTimeout(ctx, wait)
		}
		m, err := l.r.fetchOnce(fetchCtx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, context.DeadlineExceeded) {
				if err := l.idleFlush(ctx); err != nil {
					return err
				}
				continue
			}
			if kafkaconn.IsTransient(err) {
				// The broker went away: wait for it, then read on from the record after the last one handled.
				if err := l.r.reconnect(ctx, err); err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return fmt.Errorf("fetch partition %d: %w", l.id, err)
				}
				continue
			}
			return fmt.Errorf("fetch partition %d: %w", l.id, err)
		}
		l.lastRecord = l.p.now()
		outs, err := l.handle(ctx, m)
		if err != nil {
			return err
		}
		l.pending = append(l.pending, outs...)
		l.last = m.Offset
		l.handled++
		l.lag.set(l.r.lag())
		if l.handled >= l.p.cfg.MaxBatch || l.r.lag() <= 0 {
			if l.p.cfg.IdleTick > 0 && l.p.now().Sub(l.lastTick) >= l.p.cfg.IdleTick {
				if err := l.tick(ctx); err != nil {
					return err
				}
			}
			if err := l.flush(ctx); err != nil {
				return err
			}
		}
	}
}

// wait is how long to wait for the next record: no longer than the next tick or the deferred checkpoint is
// due (0: no bound).
func (l *partitionLoop) wait() time.Duration {
	var wait time.Duration
	if l.h.tick != nil && l.p.cfg.IdleTick > 0 {
		wait = l.p.cfg.IdleTick
	}
	if l.deferred && (l.h.due == nil || l.h.interval > 0) {
		since := l.lastCheckpoint
		if l.h.due != nil {
			// A decider is asked after interval of silence, and again every interval while it declines.
			since = l.lastRecord
			if l.lastIdleAsk.After(since) {
				since = l.lastIdleAsk
			}
		}
		due := max(time.Millisecond, l.h.interval-l.p.now().Sub(since))
		if wait == 0 || due < wait {
			wait = due
		}
	}
	return wait
}

// idleFlush ticks when a tick is due and flushes after a fetch that timed out.
func (l *partitionLoop) idleFlush(ctx context.Context) error {
	if l.h.tick != nil && l.p.cfg.IdleTick > 0 && l.p.now().Sub(l.lastTick) >= l.p.cfg.IdleTick {
		if err := l.tick(ctx); err != nil {
			return err
		}
	}
	l.idle = true
	defer func() { l.idle = false }()
	return l.flush(ctx)
}

func (l *partitionLoop) checkpointDue() bool {
	if l.h.due != nil {
		var d time.Duration
		if l.idle {
			l.lastIdleAsk = l.p.now()
			d = l.lastIdleAsk.Sub(l.lastRecord)
		}
		return l.h.due(l.p.now(), d)
	}
	return l.h.interval <= 0 || l.p.now().Sub(l.lastCheckpoint) >= l.h.interval
}

// flush publishes the pending outputs and, when a checkpoint is due, the state, then commits the offsets.
func (l *partitionLoop) flush(ctx context.Context) error {
	if l.handled == 0 && len(l.pending) == 0 && !(l.deferred && l.checkpointDue()) {
		return nil
	}
	began := l.p.now()
	if err := l.write(ctx, l.pending); err != nil {
		return fmt.Errorf("publish outputs of partition %d: %w", l.id, err)
	}
	if l.h.acked != nil {
		if err := l.h.acked(ctx); err != nil {
			return fmt.Errorf("acknowledged outputs of partition %d: %w", l.id, err)
		}
	}
	if !l.checkpointDue() {
		l.p.metrics.observeFlush(l.p.cfg.Topic, l.handled, len(l.pending), l.p.now().Sub(began))
		l.pending, l.handled, l.deferred = l.pending[:0], 0, true // last stays: the next checkpoint commits it
		return nil
	}
	if l.h.checkpoint != nil {
		state, err := l.h.checkpoint(ctx)
		if err != nil {
			return fmt.Errorf("checkpoint partition %d: %w", l.id, err)
		}
		if err := l.write(ctx, state); err != nil {
			return fmt.Errorf("publish state of partition %d: %w", l.id, err)
		}
		l.state.update()
	}
	if l.last >= 0 {
		commit := func(context.Context) error {
			return l.gen.CommitOffsets(map[string]map[int]int64{l.p.cfg.Topic: {l.id: l.last + 1}})
		}
		// A commit that fails while the broker is away is retried until it lands or the generation ends (ctx).
		if err := l.p.cfg.Conn.Health().Retry(ctx, l.component(), commit); err != nil {
			return fmt.Errorf("commit offset %d of partition %d: %w", l.last+1, l.id, err)
		}
	}
	l.p.metrics.observeFlush(l.p.cfg.Topic, l.handled, len(l.pending), l.p.now().Sub(began))
	l.pending, l.handled, l.last, l.deferred, l.lastCheckpoint = l.pending[:0], 0, -1, false, l.p.now()
	return nil
}

// write publishes outs, retrying while the brokers cannot be reached. A retried batch may be written twice (a
// write that failed may have landed in part): every record carries its event id, so consumers drop the replay,
// as they do after a restart.
func (l *partitionLoop) write(ctx context.Context, outs []Output) error {
	if len(outs) == 0 {
		return nil
	}
	return l.p.cfg.Conn.Health().Retry(ctx, l.component(), func(ctx context.Context) error {
		return l.p.producer.Write(ctx, outs...)
	})
}

// component names the processor in greenwave_kafka_retries_total and readiness.
func (p *Processor) component() string { return "processor " + p.cfg.Topic }

// component names the partition's loop in readiness (and the processor in greenwave_kafka_retries_total).
func (l *partitionLoop) component() string { return fmt.Sprintf("%s[%d]", l.p.component(), l.id) }

func (l *partitionLoop) tick(ctx context.Context) error {
	if l.h.tick == nil {
		return nil
	}
	l.lastTick = l.p.now()
	outs, err := l.h.tick(ctx, l.lastTick)
	if err != nil {
		return fmt.Errorf("tick partition %d: %w", l.id, err)
	}
	l.pending = append(l.pending, outs...)
	return nil
}

// middleware wraps a partition's HandleFunc: rejected records become dead letters, and a record that makes
// the handler panic is dead-lettered rather than crash-looping the service on the same offset forever.
func (p *Processor) middleware(h HandleFunc, log *zap.Logger) HandleFunc {
	return p.deadLetters(p.recoverPanics(p.countRecords(h), log))
}

// countRecords counts the records handled (not those that made the handler panic).
func (p *Processor) countRecords(next HandleFunc) HandleFunc {
	return func(ctx context.Context, m kafka.Message) ([]Output, error) {
		outs, err := next(ctx, m)
		p.metrics.records.WithLabelValues(p.cfg.Topic).Inc()
		return outs, err
	}
}

// recoverPanics turns a panic of the handler into a rejection of the record, whose outputs are dropped.
func (p *Processor) recoverPanics(next HandleFunc, log *zap.Logger) HandleFunc {
	return func(ctx context.Context, m kafka.Message) (outs []Output, err error) {
		defer func() {
			if rec := recover(); rec != nil {
				log.Error("handler panicked; dead-lettering record", zap.Int64("offset", m.Offset), zap.Any("panic", rec), zap.ByteString("stack", debug.Stack()))
				outs, err = nil, &RejectError{Reason: greenwavev1.RejectReason_REJECT_REASON_MALFORMED, Detail: fmt.Sprintf("handler panic: %v", rec)}
			}
		}()
		return next(ctx, m)
	}
}

// deadLetters appends the dead letter of a rejected record to its outputs and wraps every other error with the
// record's position.
func (p *Processor) deadLetters(next HandleFunc) HandleFunc {
	return func(ctx context.Context, m kafka.Message) ([]Output, error) {
		outs, err := next(ctx, m)
		var rej *RejectError
		if errors.As(err, &rej) {
			p.metrics.rejected.WithLabelValues(p.cfg.Topic, ReasonLabel(rej.Reason)).Inc()
			return append(outs, p.cfg.DeadLetter(p.cfg.Service, p.cfg.DeadLetterTopic, m, rej)), nil
		}
		if err != nil {
			return nil, fmt.Errorf("handle %s[%d]@%d: %w", m.Topic, m.Partition, m.Offset, err)
		}
		return outs, nil
	}
}

// Metrics are the processor's Prometheus metrics.
type Metrics struct {
	records  *prometheus.CounterVec
	rejected *prometheus.CounterVec
	outputs  *prometheus.CounterVec
	flush    *prometheus.HistogramVec
	lag      *prometheus.GaugeVec
	// stateKeys and stateBytes are the state sizes of handlers built WithStateSize.
	stateKeys, stateBytes *prometheus.GaugeVec
	// unfinishedLeaves counts shutdowns that did not leave the consumer group within LeaveTimeout.
	unfinishedLeaves prometheus.Counter
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
		unfinishedLeaves: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "greenwave", Subsystem: "stream", Name: "unfinished_leaves_total",
			Help: "Shutdowns that did not leave the consumer group within the leave timeout (the broker rebalances after the session timeout instead).",
		}),
	}
	m.lag = newLagGauge()
	m.stateKeys, m.stateBytes = newStateGauges()
	reg.MustRegister(m.records, m.rejected, m.outputs, m.flush, m.lag, m.stateKeys, m.stateBytes, m.unfinishedLeaves)
	return m
}

func (m *Metrics) observeFlush(topic string, _ int, outputs int, d time.Duration) {
	m.outputs.WithLabelValues(topic).Add(float64(outputs))
	m.flush.WithLabelValues(topic).Observe(d.Seconds())
}
