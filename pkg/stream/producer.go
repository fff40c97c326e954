// Package stream is Greenwave's Kafka plumbing: a synchronous, acks=all producer; the consume → handle → produce
// → wait for ack → commit loop with DLQ routing, per-partition state and ordered processing; and readers that load
// a topic whole (changelogs, compacted tables).
//
// It encodes DESIGN.md's correctness rules so services cannot get them wrong: FetchMessage/CommitMessages only,
// RequiredAcks=RequireAll, key-hash partitioning compatible with Java clients, a BatchTimeout of milliseconds, a
// bounded MaxWait, and offsets committed only after every output of the records they cover is acknowledged.
package stream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/greenwave-city/greenwave/pkg/kafkaconn"
)

// Header names carried by every Greenwave record.
const (
	HeaderEventID       = "greenwave-event-id"
	HeaderSchemaVersion = "greenwave-schema-version"
	HeaderPayload       = "greenwave-payload"
	// HeaderPartitionKey, when present, is what IntersectionBalancer hashes instead of the record key.
	HeaderPartitionKey = "greenwave-partition-key"
	// HeaderSourceOffset is the offset of the input record an output was computed from, in the input's partition
	// of the same number (the topics are co-partitioned). The predictor sends it so that the next owner of a
	// partition can find the predictions already published for input it has not committed.
	HeaderSourceOffset = "greenwave-source-offset"
)

// Output is one record to publish.
type Output struct {
	Topic string
	Key   []byte
	Value []byte
	// EventID is the stable id consumers use to drop replays; it is sent as a header.
	EventID string
	// Payload names the protobuf message type, sent as a header for tools.
	Payload string
	// SchemaVersion is the payload's schema_version, sent with Payload as the HeaderSchemaVersion header; 0
	// means 1.
	SchemaVersion uint32
	// PartitionKey, when set, places the record instead of the key: it is sent as the HeaderPartitionKey
	// header (omitted when it equals the key's intersection part, which places the record the same way),
	// which IntersectionBalancer hashes. The cleaner's input and changelog use it to keep a group of
	// intersections (topology.Topology.PartitionKeys) in one partition while each record keeps its own key.
	PartitionKey string
	// ContentEncoding, when set (EncodingDeflate), says how Value is compressed; it is sent as the
	// HeaderContentEncoding header.
	ContentEncoding string
	// SourceOffset, when HasSourceOffset, is sent as the HeaderSourceOffset header.
	SourceOffset    int64
	HasSourceOffset bool
}

// Message converts the output to a kafka-go message with Greenwave's headers.
func (o Output) Message() kafka.Message {
	m := kafka.Message{Topic: o.Topic, Key: o.Key, Value: o.Value}
	if o.EventID != "" {
		m.Headers = append(m.Headers, kafka.Header{Key: HeaderEventID, Value: []byte(o.EventID)})
	}
	if o.Payload != "" {
		v := max(o.SchemaVersion, 1)
		m.Headers = append(m.Headers, kafka.Header{Key: HeaderPayload, Value: []byte(o.Payload)},
			kafka.Header{Key: HeaderSchemaVersion, Value: strconv.AppendUint(nil, uint64(v), 10)})
	}
	if o.ContentEncoding != "" {
		m.Headers = append(m.Headers, kafka.Header{Key: HeaderContentEncoding, Value: []byte(o.ContentEncoding)})
	}
	// The header is sent only when it changes the placement, which keeps the common record small.
	if o.PartitionKey != "" && o.PartitionKey != string(intersectionPart(o.Key)) {
		m.Headers = append(m.Headers, kafka.Header{Key: HeaderPartitionKey, Value: []byte(o.PartitionKey)})
	}
	if o.HasSourceOffset {
		m.Headers = append(m.Headers, kafka.Header{Key: HeaderSourceOffset, Value: strconv.AppendInt(nil, o.SourceOffset, 10)})
	}
	return m
}

// Header returns the value of a record header, or nil.
func Header(m kafka.Message, key string) []byte {
	for _, h := range m.Headers {
		if h.Key == key {
			return h.Value
		}
	}
	return nil
}

// IntersectionBalancer partitions by the part of the key before the first '/', hashed with murmur2 exactly like
// Java's default partitioner. Keys "I-100" and "I-100/N/900/flow" land in the same partition, which is what keeps
// every record about an intersection — readings, state, models — co-partitioned. A record with a
// HeaderPartitionKey header is placed by that header's value instead (hashed whole), so a Java producer that
// uses the header's value as its key reaches the same partition.
type IntersectionBalancer struct{}

// Balance implements kafka.Balancer.
func (IntersectionBalancer) Balance(msg kafka.Message, partitions ...int) int {
	key := Header(msg, HeaderPartitionKey)
	if key == nil {
		key = intersectionPart(msg.Key)
	}
	return kafka.Murmur2Balancer{Consistent: true}.Balance(kafka.Message{Key: key}, partitions...)
}

// intersectionPart is the part of a record key before the first '/': the intersection of compound keys.
func intersectionPart(key []byte) []byte {
	if i := bytes.IndexByte(key, '/'); i >= 0 {
		return key[:i]
	}
	return key
}

// PartitionFor returns the partition an intersection's records go to, for n partitions.
func PartitionFor(intersection string, n int) int {
	ps := make([]int, n)
	for i := range ps {
		ps[i] = i
	}
	return IntersectionBalancer{}.Balance(kafka.Message{Key: []byte(intersection)}, ps...)
}

// Home returns the partition, out of n, that records of partition key key belong in, and whether that is
// partition: whether the instance that holds partition owns the key. With n unknown (0), every key is owned.
func Home(key string, partition, n int) (int, bool) {
	if n <= 0 {
		return partition, true
	}
	want := PartitionFor(key, n)
	return want, want == partition
}

// ProducerConfig tunes a Producer; zero values take the defaults noted.
type ProducerConfig struct {
	// BatchTimeout bounds how long a write waits for more records to batch with (default 2ms; kafka-go's own
	// default of 1s would make every synchronous write take a second).
	BatchTimeout time.Duration
	// BatchSize is the maximum records per batch (default 1000).
	BatchSize int
	// BatchBytes is the maximum batch size in bytes (default 1 000 000: a batch larger than the broker's
	// message.max.bytes, 1 MiB by default on Apache Kafka and kfake, is refused whole as "Message Size Too Large").
	BatchBytes int64
	// WriteTimeout bounds one write round trip (default 30s).
	WriteTimeout time.Duration
	// MaxAttempts is how many times kafka-go tries a batch before failing it (default 10).
	MaxAttempts int
	// FinalFailures makes a failed Write final: Write returns only once kafka-go is done with every record it
	// was given — acknowledged, or failed after its last attempt — even when ctx ends first. Without it, a Write
	// whose ctx ends returns at once while kafka-go's writer goes on trying the batch in the background (its
	// WriteMessages stops waiting, not writing), so records reported as failed may still be written later. With
	// it, nothing of a failed Write is written after Write returns; the wait is bounded by MaxAttempts ×
	// (2 × WriteTimeout) plus the backoffs instead of by ctx. The collector sets it: it answers a gateway
	// "UNAVAILABLE, resend" only for a batch it will not write behind its back.
	FinalFailures bool
	// Component, when set, names the producer in the connection's Health: a Write failing with a transient
	// error marks it unreachable (failing readiness) until a Write succeeds.
	Component string
	// Registerer, when set, receives the producer's counters of acknowledged records and bytes per topic
	// (greenwave_produced_records_total, greenwave_produced_bytes_total). Operators compare the state
	// changelogs' bytes with the readings' bytes through them.
	Registerer prometheus.Registerer
}

// Producer writes records synchronously with acks from all in-sync replicas. It is safe for concurrent use;
// concurrent writes are batched together.
type Producer struct {
	conn    kafkaconn.Conn
	cfg     ProducerConfig
	w       *kafka.Writer
	records *prometheus.CounterVec
	bytes   *prometheus.CounterVec
}

// NewProducer returns a Producer for the connection. Topics must already exist: it never auto-creates.
func NewProducer(conn kafkaconn.Conn, cfg ProducerConfig) *Producer {
	if cfg.BatchTimeout <= 0 {
		cfg.BatchTimeout = 2 * time.Millisecond
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 1000
	}
	if cfg.BatchBytes <= 0 {
		cfg.BatchBytes = 1_000_000
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 30 * time.Second
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 10
	}
	p := &Producer{conn: conn, cfg: cfg, w: &kafka.Writer{
		Addr:                   conn.Addr(),
		Transport:              conn.Transport(),
		Balancer:               IntersectionBalancer{},
		RequiredAcks:           kafka.RequireAll,
		BatchTimeout:           cfg.BatchTimeout,
		BatchSize:              cfg.BatchSize,
		BatchBytes:             cfg.BatchBytes,
		WriteTimeout:           cfg.WriteTimeout,
		ReadTimeout:            cfg.WriteTimeout,
		MaxAttempts:            cfg.MaxAttempts,
		WriteBackoffMin:        20 * time.Millisecond,
		WriteBackoffMax:        time.Second,
		AllowAutoTopicCreation: false,
	}}
	if cfg.Registerer != nil {
		p.records = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "greenwave_produced_records_total",
			Help: "Records this process wrote to Kafka and Kafka acknowledged, by topic.",
		}, []string{"topic"})
		p.bytes = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "greenwave_produced_bytes_total",
			Help: "Bytes of the records (key, value and headers) this process wrote to Kafka and Kafka acknowledged, by topic.",
		}, []string{"topic"})
		cfg.Registerer.MustRegister(p.records, p.bytes)
	}
	return p
}

// MessageBytes is the size of a record as counted by greenwave_produced_bytes_total: key, value, and header
// keys and values. Kafka's own framing is left out, so figures compare across brokers.
func MessageBytes(m kafka.Message) int {
	n := len(m.Key) + len(m.Value)
	for _, h := range m.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

// Write publishes the outputs and returns once every one is acknowledged, or with an error. On error some
// records may have been written (a partial batch, or an attempt whose answer was lost): callers treat the whole
// call as failed and retry or restart, which is safe because every record carries a stable event id. With
// FinalFailures, none is written after Write returned.
func (p *Producer) Write(ctx context.Context, outs ...Output) error {
	if len(outs) == 0 {
		return nil
	}
	msgs := make([]kafka.Message, len(outs))
	for i, o := range outs {
		msgs[i] = o.Message()
	}
	err := p.write(ctx, msgs)
	if p.cfg.Component != "" {
		switch {
		case err == nil:
			p.conn.Health().Recovered(p.cfg.Component)
		case kafkaconn.IsTransient(err):
			p.conn.Health().Failed(p.cfg.Component, err)
		}
	}
	return err
}

func (p *Producer) write(ctx context.Context, msgs []kafka.Message) error {
	wctx := ctx
	if p.cfg.FinalFailures {
		// kafka-go's WriteMessages stops waiting when its ctx ends, not writing: wait for its verdict instead.
		wctx = context.WithoutCancel(ctx)
	}
	if err := p.w.WriteMessages(wctx, msgs...); err != nil {
		if denied := p.deniedTopic(ctx, msgs, err); denied != nil {
			return fmt.Errorf("write %d records: %w", len(msgs), denied)
		}
		var we kafka.WriteErrors
		if errors.As(err, &we) {
			return fmt.Errorf("write %d records (%d failed): %w", len(msgs), we.Count(), err)
		}
		return fmt.Errorf("write %d records: %w", len(msgs), err)
	}
	if p.records != nil {
		for _, m := range msgs {
			p.records.WithLabelValues(m.Topic).Inc()
			p.bytes.WithLabelValues(m.Topic).Add(float64(MessageBytes(m)))
		}
	}
	return nil
}

// deniedTopic tells a topic the user may not see from one that does not exist: kafka-go's writer reports both
// as UNKNOWN_TOPIC_OR_PARTITION, while the metadata of a topic without the Describe ACL says
// TOPIC_AUTHORIZATION_FAILED. It returns the classified security error, or nil.
func (p *Producer) deniedTopic(ctx context.Context, msgs []kafka.Message, err error) error {
	if !errors.Is(err, kafka.UnknownTopicOrPartition) {
		return nil
	}
	seen := map[string]bool{}
	for _, m := range msgs {
		if seen[m.Topic] {
			continue
		}
		seen[m.Topic] = true
		if denied := p.conn.TopicDenied(ctx, m.Topic); denied != nil {
			return denied
		}
	}
	return nil
}

// Close flushes and closes the producer.
func (p *Producer) Close() error {
	if err := p.w.Close(); err != nil {
		return fmt.Errorf("close producer: %w", err)
	}
	return nil
}
