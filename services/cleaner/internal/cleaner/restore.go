package cleaner

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/greenwave-city/greenwave/pkg/kafkaconn"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/wire"
)

// restoreFrom loads the partition's state from its partition of the changelog topic: the latest record of
// every intersection, in id order, skipping (with a warning) state the partition must not hold.
func (p *partition) restoreFrom(ctx context.Context, kafkaConn kafkaconn.Conn, topic string, log *zap.Logger) error {
	latest := map[string]kafka.Message{}
	err := stream.ReadPartition(ctx, kafkaConn, topic, p.id, func(msg kafka.Message) error {
		if msg.Value == nil {
			delete(latest, string(msg.Key))
		} else {
			latest[string(msg.Key)] = msg
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("restore cleaner state: %w", err)
	}
	for _, id := range slices.Sorted(maps.Keys(latest)) {
		skip, err := p.restore(id, latest[id])
		if err != nil {
			return err
		}
		if skip != "" {
			log.Warn("dropping restored state", zap.String("intersection", id), zap.Int("partition", p.id), zap.String("why", skip))
			continue
		}
		p.setStateBytes(id, stream.MessageBytes(latest[id]))
	}
	log.Info("partition state restored", zap.Int("partition", p.id), zap.Int("intersections", len(p.states)))
	return nil
}

// restore loads one changelog record (the latest for its key, id). State the partition must not hold — an
// intersection no longer in the topology, or one whose readings now go to another partition — is reported as
// a non-empty skip reason so the caller can log it and go on.
func (p *partition) restore(id string, rec kafka.Message) (skip string, err error) {
	in, ok := p.topo.Intersection(id)
	if !ok {
		return "the intersection is no longer in the topology", nil
	}
	if want, ok := p.home(id); !ok {
		// Its feature group changed: the state is stale here, and holding it would emit a second stream of
		// frames for the intersection from this partition.
		return fmt.Sprintf("the intersection's readings now go to partition %d (its feature group changed)", want), nil
	}
	snap, err := wire.DecodeCleanerRecord(rec)
	if err != nil {
		return "", fmt.Errorf("restore state of %s: %w", id, err)
	}
	s, err := wire.RestoreCleaner(in, p.cfg, snap.State)
	if err != nil {
		return "", fmt.Errorf("restore state of %s: %w", id, err)
	}
	s.SetUpstream(p.states)
	p.states[id] = s
	if snap.SourceOffset >= 0 && snap.SourcePartition == p.id {
		p.applied[id] = snap.SourceOffset
	}
	return "", nil
}
