package signalcontrol

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/wire"
)

// restorePartition rebuilds a partition's state: the newest changelog record of each intersection, then the
// plans issued since those records, read back from the plans topic (co-partitioned with the predictions). A
// plan read back becomes the intersection's current plan, its window the end of what is planned (replays up to
// it only learn, see partition), and its override the applied one; the overrides table gives the last expiry
// audit written. The result is the state of an uninterrupted run once the predictions since the last
// checkpoint (the committed offset) are replayed.
func restorePartition(ctx context.Context, svc *service, part int) (*partition, error) {
	p := newPartition(svc, part)
	marks := map[string]wire.SignalCheckpoint{}
	err := stream.ReadPartition(ctx, svc.kafkaConn, svc.names.SignalState, part, func(msg kafka.Message) error {
		st, mark, err := wire.DecodeSignalState(string(stream.Header(msg, stream.HeaderPayload)), msg.Value)
		if err != nil {
			return fmt.Errorf("state of %s: %w", msg.Key, err)
		}
		p.state[string(msg.Key)] = st
		marks[string(msg.Key)] = mark
		p.stateBytes[string(msg.Key)] = int64(stream.MessageBytes(msg))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("restore signal-control state: %w", err)
	}
	from := plansFrom(marks)
	if n := len(marks); n > 0 && from != marks[newestMarked(marks)].PlansOffset {
		svc.log.Warn("the newest state checkpoint is incomplete (the process ended while writing it): reading the plans topic from the oldest record's offset",
			zap.Int("partition", part), zap.Int64("from", from))
	}
	for _, mark := range marks {
		p.seq = max(p.seq, mark.Seq)
	}
	n := 0
	err = svc.readPlans(ctx, part, from, func(msg kafka.Message) error {
		id := string(msg.Key)
		if msg.Offset < marks[id].PlansOffset {
			return nil // already in the intersection's record
		}
		plan, err := wire.TopicPlans.Decode(msg)
		if err != nil || plan.GetIntersectionId() != id {
			// Not a plan this service wrote; it cannot have changed the state.
			svc.log.Warn("ignoring an undecodable record on the plans topic", zap.Int("partition", part), zap.Int64("offset", msg.Offset), zap.Error(err))
			return nil
		}
		n++
		st := p.stateOf(id)
		st.Plan = plan
		if plan.GetOverrideId() != "" {
			st.AppliedOverride = plan.GetOverrideId()
		}
		if plan.GetPlanId() != plan.GetOverrideId() {
			// A prediction's plan (an override's immediate plan is named after the override): valid from the end
			// of the window it planned.
			if vf := plan.GetValidFrom().AsTime(); vf.After(st.PlannedThrough) {
				st.PlannedThrough = vf
			}
		}
		p.dirty[id] = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("restore plans issued since the last checkpoint: %w", err)
	}
	svc.metrics.restoreReads.Add(float64(n))
	relearn := 0
	for id, st := range p.state {
		if e := svc.overrides.expiredOf(id); e != "" && st.ExpiredOverride != e {
			st.ExpiredOverride = e
			p.dirty[id] = true
		}
		if !st.WindowEnd.IsZero() {
			p.eventTime = max(p.eventTime, st.WindowEnd.Unix())
		}
		if st.PlannedThrough.After(st.WindowEnd) {
			relearn++
		}
	}
	p.checkpointed = p.eventTime
	svc.log.Info("partition state restored", zap.Int("partition", part), zap.Int("intersections", len(p.state)),
		zap.Int64("plans_from_offset", from), zap.Int("plans_read", n), zap.Int("intersections_with_windows_to_relearn", relearn))
	return p, nil
}

// newestMarked returns the intersection whose record has the newest checkpoint number.
func newestMarked(marks map[string]wire.SignalCheckpoint) string {
	best, bestSeq := "", uint64(0)
	for id, m := range marks {
		if best == "" || m.Seq > bestSeq || (m.Seq == bestSeq && id < best) {
			best, bestSeq = id, m.Seq
		}
	}
	return best
}

// plansFrom returns the plans offset a restore reads from. Every record covers the plans below its own
// PlansOffset, and an intersection missing from a checkpoint issued no plan between its record and that
// checkpoint; so when the newest checkpoint is complete (all of its records are there: a checkpoint is written
// whole before offsets are committed, but a process may end halfway), its offset covers every intersection.
// Otherwise the oldest record's offset does. No record (a first start, or a changelog from before any
// checkpoint) reads the partition from its start.
func plansFrom(marks map[string]wire.SignalCheckpoint) int64 {
	if len(marks) == 0 {
		return 0
	}
	newest := marks[newestMarked(marks)]
	n := uint32(0)
	oldest := newest.PlansOffset
	for _, m := range marks {
		if m.Seq == newest.Seq {
			n++
		}
		oldest = min(oldest, m.PlansOffset)
	}
	if newest.Seq > 0 && n == newest.Records {
		return newest.PlansOffset
	}
	return oldest
}

// plansBounds returns the first offset and the high watermark of a plans partition.
func (s *service) plansBounds(ctx context.Context, part int) (first, end int64, err error) {
	offsets, err := stream.ListOffsetsWait(ctx, s.kafkaConn, "restore "+s.names.Plans, s.client, map[string][]kafka.OffsetRequest{
		s.names.Plans: {kafka.FirstOffsetOf(part), kafka.LastOffsetOf(part)},
	})
	if err != nil {
		return 0, 0, err
	}
	for _, po := range offsets[s.names.Plans] {
		if po.Partition == part {
			return po.FirstOffset, po.LastOffset, nil
		}
	}
	return 0, 0, fmt.Errorf("list offsets of %s[%d]: partition missing from response", s.names.Plans, part)
}

// readPlans calls fn for every record of a plans partition from offset from (or its first, if later) up to
// its high watermark at the time of the call, in order.
func (s *service) readPlans(ctx context.Context, part int, from int64, fn func(kafka.Message) error) error {
	first, end, err := s.plansBounds(ctx, part)
	if err != nil {
		return err
	}
	from = max(from, first)
	if end <= from {
		return nil
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: s.kafkaConn.Brokers, Dialer: s.kafkaConn.Dialer(), Topic: s.names.Plans, Partition: part, MinBytes: 1, MaxBytes: 8 << 20, MaxWait: 250 * time.Millisecond})
	defer r.Close()
	if err := r.SetOffset(from); err != nil {
		return fmt.Errorf("seek %s[%d]: %w", s.names.Plans, part, err)
	}
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return fmt.Errorf("read %s[%d]: %w", s.names.Plans, part, err)
		}
		if err := fn(m); err != nil {
			return err
		}
		if m.Offset >= end-1 {
			return nil
		}
	}
}
