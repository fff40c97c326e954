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

// PartitionBounds returns the first offset and the high watermark (next offset to be written) of a partition.
func PartitionBounds(ctx context.Context, conn kafkaconn.Conn, topic string, partition int) (first, end int64, err error) {
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

// ReadPartition calls fn for every record of one partition from its first offset up to the high watermark at the
// time of the call, in order. Stateful services use it to restore a changelog partition before processing.
func ReadPartition(ctx context.Context, conn kafkaconn.Conn, topic string, partition int, fn func(kafka.Message) error) error {
	first, end, err := PartitionBounds(ctx, conn, topic, partition)
	if err != nil {
		return err
	}
	return ReadRange(ctx, conn, topic, partition, first, end, fn)
}

// ReadRange calls fn for every record of one partition with an offset in [from, end), in order. from and end
// lie within the bounds PartitionBounds returned (from at least the first offset the partition still holds).
func ReadRange(ctx context.Context, conn kafkaconn.Conn, topic string, partition int, from, end int64, fn func(kafka.Message) error) error {
	if end <= from {
		return nil
	}
	r := kafka.NewReader(conn.ReaderConfig(topic, partition))
	defer r.Close()
	if err := r.SetOffset(from); err != nil {
		return fmt.Errorf("seek %s[%d]: %w", topic, partition, err)
	}
	for {
		m, err := r.FetchMessage(ctx)
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
// built from the topic is complete enough to serve.
func Follow(ctx context.Context, conn kafkaconn.Conn, topic string, partitions int, fn func(kafka.Message) error, caughtUp func()) error {
	var wg sync.WaitGroup
	wg.Add(partitions)
	go func() {
		wg.Wait()
		if caughtUp != nil && ctx.Err() == nil {
			caughtUp()
		}
	}()
	g, ctx := errgroup.WithContext(ctx)
	for p := range partitions {
		g.Go(func() error {
			first, end, err := PartitionBounds(ctx, conn, topic, p)
			if err != nil {
				wg.Done()
				return err
			}
			done := end <= first
			if done {
				wg.Done()
			}
			r := kafka.NewReader(conn.ReaderConfig(topic, p))
			defer r.Close()
			if err := r.SetOffset(first); err != nil {
				if !done {
					wg.Done()
				}
				return fmt.Errorf("seek %s[%d]: %w", topic, p, err)
			}
			for {
				m, err := r.FetchMessage(ctx)
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
