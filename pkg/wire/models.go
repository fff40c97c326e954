package wire

import (
	"context"
	"fmt"

	"github.com/segmentio/kafka-go"

	"github.com/greenwave-city/greenwave/pkg/kafkaconn"
	"github.com/greenwave-city/greenwave/pkg/models"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/train"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// EncodeModel returns the record of a model snapshot for topic (greenwave.models or the trainer's changelog):
// keyed by model id, with the event id "model_id@version", and the value deflated (a snapshot's history and
// covariances compress to about half).
func EncodeModel(topic string, s *train.Snapshot) (stream.Output, error) {
	return TopicModels.EncodeTo(topic, SnapshotProto(s))
}

// DecodeModel decodes a record EncodeModel made, or a plain one written before snapshots were compressed. A
// tombstone is an error; check m.Value first.
func DecodeModel(m kafka.Message) (*train.Snapshot, error) {
	s, err := TopicModels.Decode(m)
	if err != nil {
		return nil, fmt.Errorf("model record %q: %w", m.Key, err)
	}
	if s.GetModelId() == "" {
		return nil, fmt.Errorf("model record %q: no model_id", m.Key)
	}
	return Snapshot(s), nil
}

// ModelFilter converts a ModelService filter (nil matches every model). A target this build does not know
// matches no model.
func ModelFilter(f *greenwavev1.ModelFilter) models.Filter {
	out := models.Filter{IntersectionIDs: f.GetIntersectionIds(), ApproachIDs: f.GetApproachIds(), HorizonsS: f.GetHorizonsS()}
	if t := f.GetTarget(); t != greenwavev1.Target_TARGET_UNSPECIFIED {
		name, ok := Target(t)
		if !ok {
			name = t.String() // never a train target name
		}
		out.Target = name
	}
	return out
}

// ModelFollower is what FollowModels does with the models topic's records.
type ModelFollower struct {
	// Put receives every decoded snapshot, from one goroutine per partition.
	Put func(*train.Snapshot)
	// Undecodable, if not nil, is told of a record that is skipped because it does not decode: the trainer owns
	// the topic and the model's next snapshot replaces it.
	Undecodable func(m kafka.Message, err error)
	// CaughtUp, if not nil, is called once every partition was read up to the end it had when following began:
	// only then does a store hold every model whole.
	CaughtUp func()
}

// FollowModels reads the whole compacted models topic (partitions partitions), from the beginning and then as it
// grows, until ctx ends. Tombstones are skipped: compaction removes the model, and the last one is kept until
// replaced.
func FollowModels(ctx context.Context, conn kafkaconn.Conn, topic string, partitions int, f ModelFollower) error {
	return stream.Follow(ctx, conn, topic, partitions, func(msg kafka.Message) error {
		if msg.Value == nil {
			return nil
		}
		s, err := DecodeModel(msg)
		if err != nil {
			if f.Undecodable != nil {
				f.Undecodable(msg, err)
			}
			return nil
		}
		f.Put(s)
		return nil
	}, f.CaughtUp)
}
