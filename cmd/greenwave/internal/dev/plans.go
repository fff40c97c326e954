package dev

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/greenwave-city/greenwave/pkg/kafkaconn"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/topics"
	"github.com/greenwave-city/greenwave/pkg/wire"
)

// planCounter counts the plans on the plans topic by reason for `greenwave dev`'s summaries. The counts come
// from the topic, not from the WatchPlans stream that prints the plan lines: a stream starts with the current
// plans (counted again on every reconnect) and, behind a slow terminal, coalesces under back-pressure, while
// the topic holds every plan signal-control published exactly once (the topics are created by this run).
type planCounter struct {
	conn       kafkaconn.Conn
	topic      string
	partitions int
	stats      *stats

	mu sync.Mutex
	// next is, per partition, the offset after the last record counted.
	next map[int]int64
	// skipBelow is, per partition, the first offset counted (earlier ones belong to earlier runs).
	skipBelow map[int]int64
	// changed is closed (and replaced) whenever a record is counted.
	changed chan struct{}
}

// newPlanCounter returns the counter of the plans on topic; with skipExisting, the plans already on the topic
// (an earlier run's) are passed over, not counted.
func newPlanCounter(ctx context.Context, conn kafkaconn.Conn, topic string, st *stats, skipExisting bool) (*planCounter, error) {
	n, err := topics.PartitionCount(ctx, conn, topic)
	if err != nil {
		return nil, fmt.Errorf("count plans on %s: %w", topic, err)
	}
	c := &planCounter{conn: conn, topic: topic, partitions: n, stats: st, next: map[int]int64{}, skipBelow: map[int]int64{}, changed: make(chan struct{})}
	if skipExisting {
		offsets, err := c.offsets(ctx)
		if err != nil {
			return nil, err
		}
		for _, po := range offsets {
			c.skipBelow[po.Partition] = po.LastOffset
		}
	}
	return c, nil
}

// offsets lists the first and end offsets of every partition of the topic.
func (c *planCounter) offsets(ctx context.Context) ([]kafka.PartitionOffsets, error) {
	tr := c.conn.NewTransport(10 * time.Second)
	defer tr.CloseIdleConnections()
	client := &kafka.Client{Addr: c.conn.Addr(), Timeout: 10 * time.Second, Transport: tr}
	req := make([]kafka.OffsetRequest, 0, 2*c.partitions)
	for p := range c.partitions {
		req = append(req, kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p))
	}
	offsets, err := stream.ListOffsets(ctx, client, map[string][]kafka.OffsetRequest{c.topic: req})
	if err != nil {
		return nil, fmt.Errorf("end offsets of %s: %w", c.topic, err)
	}
	return offsets[c.topic], nil
}

// run counts every plan on the topic, from its start, until ctx ends (nil) or reading fails. A record that is
// not a SignalPlan counts under the reason "unspecified".
func (c *planCounter) run(ctx context.Context) error {
	err := stream.Follow(ctx, c.conn, c.topic, c.partitions, func(m kafka.Message) error {
		if m.Offset >= c.skipBelow[m.Partition] {
			p, _ := wire.TopicPlans.Decode(m) // empty when it does not decode: counted as unspecified
			c.stats.plan(p.GetReason())
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		c.next[m.Partition] = m.Offset + 1
		close(c.changed)
		c.changed = make(chan struct{})
		return nil
	}, nil)
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("count plans on %s: %w", c.topic, err)
	}
	return nil
}

// catchUp returns once every plan on the topic at the time of the call has been counted, or with ctx's error.
func (c *planCounter) catchUp(ctx context.Context) error {
	offsets, err := c.offsets(ctx)
	if err != nil {
		return err
	}
	for {
		c.mu.Lock()
		behind := false
		for _, po := range offsets {
			if po.LastOffset > po.FirstOffset && c.next[po.Partition] < po.LastOffset {
				behind = true
			}
		}
		changed := c.changed
		c.mu.Unlock()
		if !behind {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// catchUpTimeout bounds how long the final count waits for the plans on the topic.
const catchUpTimeout = 5 * time.Second

// finish waits (at most catchUpTimeout) until the plans on the topic by now are counted, so that the final
// summary includes the last plans, and reports through progress a count it could not complete.
func (c *planCounter) finish(progress func(string, ...any)) {
	ctx, cancel := context.WithTimeout(context.Background(), catchUpTimeout)
	defer cancel()
	if err := c.catchUp(ctx); err != nil {
		progress("plan counts may miss the last plans: %v", err)
	}
}

// closeDefaultTransport closes the idle connections of kafka-go's default transport, which the partition
// lookups of topics.PartitionCount and stream.Follow use: it keeps them open for the life of the process, and
// `greenwave dev` also runs in-process (tests).
func closeDefaultTransport() {
	if t, ok := kafka.DefaultTransport.(*kafka.Transport); ok {
		t.CloseIdleConnections()
	}
}
