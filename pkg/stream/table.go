package stream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/greenwave-city/greenwave/pkg/kafkaconn"
)

// ListOffsets asks the brokers for the offsets in req and returns them per topic, failing if any partition
// answered with an error. Right after a topic is created, a broker may answer "not leader" or "leader not
// available" for a moment, and a loaded Apache Kafka 4.1 was seen to answer UNKNOWN_SERVER_ERROR for a partition
// of a topic created moments before. Such errors are retried with backoff for up to 30 s, as the Java consumer
// retries every per-partition ListOffsets error it does not know.
func ListOffsets(ctx context.Context, client *kafka.Client, req map[string][]kafka.OffsetRequest) (map[string][]kafka.PartitionOffsets, error) {
	backoff := 50 * time.Millisecond
	deadline := time.Now().Add(30 * time.Second)
	for {
		offsets, err := listOffsetsOnce(ctx, client, req)
		if err == nil || !retriableListOffsets(err) || time.Now().After(deadline) {
			return offsets, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (while retrying: %w)", ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// retriableListOffsets reports whether a ListOffsets failure may go away by asking again.
func retriableListOffsets(err error) bool {
	var kerr kafka.Error
	return errors.As(err, &kerr) && (kerr.Temporary() || kerr == kafka.Unknown)
}

func listOffsetsOnce(ctx context.Context, client *kafka.Client, req map[string][]kafka.OffsetRequest) (map[string][]kafka.PartitionOffsets, error) {
	resp, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: req})
	if err != nil {
		return nil, fmt.Errorf("list offsets: %w", err)
	}
	for topic, parts := range resp.Topics {
		for _, po := range parts {
			if po.Error != nil {
				return nil, fmt.Errorf("list offsets of %s[%d]: %w", topic, po.Partition, po.Error)
			}
		}
	}
	return resp.Topics, nil
}

// ListOffsetsWait is ListOffsets for services: a transient failure (the brokers unreachable or restarting) is
// retried until ctx ends, counted and reported to conn's Health as component, so a broker outage delays the
// answer instead of failing it. Errors that are not transient come back at once.
func ListOffsetsWait(ctx context.Context, conn kafkaconn.Conn, component string, client *kafka.Client, req map[string][]kafka.OffsetRequest) (map[string][]kafka.PartitionOffsets, error) {
	var offsets map[string][]kafka.PartitionOffsets
	err := conn.Health().Retry(ctx, component, func(ctx context.Context) error {
		var err error
		offsets, err = ListOffsets(ctx, client, req)
		return err
	})
	return offsets, err
}

// PartitionBounds returns the first offset and the high watermark (next offset to be written) of a partition.
// While the brokers cannot be reached it waits for them (until ctx ends), reporting to conn's Health.
func PartitionBounds(ctx context.Context, conn kafkaconn.Conn, topic string, partition int) (first, end int64, err error) {
	return partitionBounds(ctx, conn, fmt.Sprintf("bounds %s[%d]", topic, partition), topic, partition)
}

// partitionBounds is PartitionBounds reporting its retries as component.
func partitionBounds(ctx context.Context, conn kafkaconn.Conn, component, topic string, partition int) (first, end int64, err error) {
	err = conn.Health().Retry(ctx, component, func(ctx context.Context) error {
		var err error
		first, end, err = partitionBoundsOnce(ctx, conn, topic, partition)
		return err
	})
	return first, end, err
}

func partitionBoundsOnce(ctx context.Context, conn kafkaconn.Conn, topic string, partition int) (first, end int64, err error) {
	client := conn.Client(30 * time.Second)
	offsets, err := ListOffsets(ctx, client, map[string][]kafka.OffsetRequest{
		topic: {kafka.FirstOffsetOf(partition), kafka.LastOffsetOf(partition)},
	})
	if err != nil {
		return 0, 0, err
	}
	for _, po := range offsets[topic] {
		if po.Partition == partition {
			return po.FirstOffset, po.LastOffset, nil
		}
	}
	return 0, 0, fmt.Errorf("list offsets of %s[%d]: partition missing from response", topic, partition)
}

// partReader reads one partition in order from an offset and survives broker outages: after a transient
// failure it closes its kafka-go reader, waits (reporting to the Health as component) until the partition's
// offsets can be listed again, and opens a new reader at the offset after the last record it delivered. A record
// is thus never skipped nor delivered twice, whatever kafka-go's reader had buffered.
type partReader struct {
	conn      kafkaconn.Conn
	cfg       kafka.ReaderConfig
	component string
	next      int64 // offset of the next record to deliver (or kafka.FirstOffset before the first)
	r         *kafka.Reader
}

func newPartReader(conn kafkaconn.Conn, cfg kafka.ReaderConfig, component string, from int64) *partReader {
	return &partReader{conn: conn, cfg: cfg, component: fmt.Sprintf("%s[%d]", component, cfg.Partition), next: from}
}

// fetch returns the next record, waiting through transient failures until ctx ends.
func (p *partReader) fetch(ctx context.Context) (kafka.Message, error) {
	for {
		m, err := p.fetchOnce(ctx)
		if err == nil || ctx.Err() != nil || !kafkaconn.IsTransient(err) {
			return m, err
		}
		if err := p.reconnect(ctx, err); err != nil {
			return kafka.Message{}, err
		}
	}
}

// fetchOnce returns the next record or the reader's error as it is.
func (p *partReader) fetchOnce(ctx context.Context) (kafka.Message, error) {
	if p.r == nil {
		p.r = kafka.NewReader(p.cfg)
		if err := p.r.SetOffset(p.next); err != nil {
			return kafka.Message{}, fmt.Errorf("seek %s[%d] to %d: %w", p.cfg.Topic, p.cfg.Partition, p.next, err)
		}
	}
	m, err := p.r.FetchMessage(ctx)
	if err != nil {
		return m, err
	}
	p.next = m.Offset + 1
	return m, nil
}

// reconnect handles the transient failure err: it drops the reader and waits until the brokers answer again.
func (p *partReader) reconnect(ctx context.Context, err error) error {
	h := p.conn.Health()
	h.Failed(p.component, err)
	p.close()
	if err := kafkaconn.Sleep(ctx, h.Backoff().Min); err != nil {
		return err
	}
	return h.Retry(ctx, p.component, func(ctx context.Context) error {
		_, _, err := partitionBoundsOnce(ctx, p.conn, p.cfg.Topic, p.cfg.Partition)
		return err
	})
}

// lag is the reader's lag after the last record (0 without a reader).
func (p *partReader) lag() int64 {
	if p.r == nil {
		return 0
	}
	return p.r.Lag()
}

func (p *partReader) close() {
	if p.r != nil {
		_ = p.r.Close()
		p.r = nil
	}
}

// ReadPartition calls fn for every record of one partition from its first offset up to the high watermark at the
// time of the call, in order. Stateful services use it to restore a changelog partition before processing. A
// broker outage makes it wait (see ReadRange).
func ReadPartition(ctx context.Context, conn kafkaconn.Conn, topic string, partition int, fn func(kafka.Message) error) error {
	first, end, err := partitionBounds(ctx, conn, fmt.Sprintf("read %s[%d]", topic, partition), topic, partition)
	if err != nil {
		return err
	}
	return ReadRange(ctx, conn, topic, partition, first, end, fn)
}

// ReadRange calls fn for every record of one partition with an offset in [from, end), in order. from and end
// lie within the bounds PartitionBounds returned (from at least the first offset the partition still holds).
// While the brokers cannot be reached it waits for them, then goes on from the next record: each record is
// passed to fn once.
func ReadRange(ctx context.Context, conn kafkaconn.Conn, topic string, partition int, from, end int64, fn func(kafka.Message) error) error {
	if end <= from {
		return nil
	}
	r := newPartReader(conn, conn.ReaderConfig(topic, partition), "read "+topic, from)
	defer r.close()
	for {
		m, err := r.fetch(ctx)
		if err != nil {
			return fmt.Errorf("read %s[%d]: %w", topic, partition, err)
		}
		if err := fn(m); err != nil {
			return err
		}
		if m.Offset >= end-1 {
			return nil
		}
	}
}

// Follow reads every partition of topic from the beginning and keeps following it until ctx ends, calling fn for
// each record (from several goroutines: one per partition; fn must be safe for that). caughtUp, if not nil, is
// called once every partition has been read up to its high watermark as of the start — the moment a table
// built from the topic is complete enough to serve. A broker outage makes it wait, reporting to conn's Health,
// and go on from the next record when the brokers are back: it returns only when ctx ends, fn fails, or a
// failure is not transient (a security error, say).
func Follow(ctx context.Context, conn kafkaconn.Conn, topic string, partitions int, fn func(kafka.Message) error, caughtUp func()) error {
	var wg sync.WaitGroup
	wg.Add(partitions)
	go func() {
		wg.Wait()
		if caughtUp != nil && ctx.Err() == nil {
			caughtUp()
		}
	}()
	component := "follow " + topic
	g, ctx := errgroup.WithContext(ctx)
	for p := range partitions {
		g.Go(func() error {
			first, end, err := partitionBounds(ctx, conn, fmt.Sprintf("%s[%d]", component, p), topic, p)
			if err != nil {
				wg.Done()
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			done := end <= first
			if done {
				wg.Done()
			}
			r := newPartReader(conn, conn.ReaderConfig(topic, p), component, first)
			defer r.close()
			for {
				m, err := r.fetch(ctx)
				if err != nil {
					if !done {
						wg.Done()
					}
					if ctx.Err() != nil {
						return nil
					}
					return fmt.Errorf("follow %s[%d]: %w", topic, p, err)
				}
				if err := fn(m); err != nil {
					if !done {
						wg.Done()
					}
					return err
				}
				if !done && m.Offset >= end-1 {
					done = true
					wg.Done()
				}
			}
		})
	}
	err := g.Wait()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
