package wire

import (
	"fmt"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/greenwave-city/greenwave/pkg/models"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/train"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// MaxModelBytes bounds a decompressed model snapshot: far above any model (a complete snapshot of 64 inputs at
// one-minute windows is under 1 MB), and a limit on what a corrupt record can allocate.
const MaxModelBytes = 32 << 20

// EncodeModel returns the record of a model snapshot for topic (greenwave.models or the trainer's changelog):
// keyed by model id, with the event id "model_id@version", and the value deflated (a snapshot's history and
// covariances compress to about half).
func EncodeModel(topic string, s *train.Snapshot) (stream.Output, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(SnapshotProto(s))
	if err != nil {
		return stream.Output{}, fmt.Errorf("encode snapshot %s: %w", s.ModelID, err)
	}
	if b, err = stream.Deflate(b); err != nil {
		return stream.Output{}, fmt.Errorf("compress snapshot %s: %w", s.ModelID, err)
	}
	return stream.Output{Topic: topic, Key: []byte(s.ModelID), Value: b, ContentEncoding: stream.EncodingDeflate,
		EventID: fmt.Sprintf("%s@%d", s.ModelID, s.Version), Payload: PayloadModel, SchemaVersion: s.SchemaVersion}, nil
}

// DecodeModel decodes a record EncodeModel made, or a plain one written before snapshots were compressed. A
// tombstone is an error; check m.Value first.
func DecodeModel(m kafka.Message) (*train.Snapshot, error) {
	b, err := stream.Value(m, MaxModelBytes)
	if err != nil {
		return nil, fmt.Errorf("model record %q: %w", m.Key, err)
	}
	var s greenwavev1.ModelSnapshot
	if err := proto.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("model record %q: decode %s: %w", m.Key, PayloadModel, err)
	}
	if s.GetModelId() == "" {
		return nil, fmt.Errorf("model record %q: no model_id", m.Key)
	}
	return Snapshot(&s), nil
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
