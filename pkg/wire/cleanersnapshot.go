package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/greenwave-city/greenwave/pkg/clean"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/topics"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// CleanerSnapshotVersion is the version of the changelog envelope written by EncodeCleanerSnapshot: a
// greenwave.v1.CleanerSnapshot. Version 1 was JSON; DecodeCleanerSnapshot still reads it (and the bare JSON
// state from before the envelope) so that an upgrade restores its state once.
const CleanerSnapshotVersion = 2

// cleanerSnapshotPayload is the greenwave-payload header of a changelog record, so that tools (greenwave tail)
// decode the envelope.
var cleanerSnapshotPayload = string((&greenwavev1.CleanerSnapshot{}).ProtoReflect().Descriptor().FullName())

// ErrBadCleanerSnapshot is wrapped by DecodeCleanerSnapshot when changelog bytes are not a usable envelope.
var ErrBadCleanerSnapshot = errors.New("bad cleaner snapshot")

// CleanerSnapshot is the value of a greenwave.cleaner.state record: one intersection's clean.Intersection
// state plus the input position it covers.
//
// Why the position: the state and the committed input offset are published in two steps (state first), so a
// crash between them restarts from an offset the state has already applied. pkg/clean drops an accepted
// reading's identical replay while its window is open, but a rejected reading is not remembered and would be
// judged again against the newer state — a "late" verdict's detail names the watermark. Skipping every record
// at or below SourceOffset makes the continuation apply exactly the records the state has not seen, so it
// equals an uninterrupted run.
type CleanerSnapshot struct {
	Version int
	// SourcePartition and SourceOffset are the input partition and the offset of the last record of this
	// intersection applied to State (-1: none recorded).
	SourcePartition int
	SourceOffset    int64
	// State is the intersection's MarshalCleaner bytes, or a JSON state from an older cleaner (envelope
	// version 1 or none); RestoreCleaner reads both.
	State []byte
}

// EncodeCleanerSnapshot builds the changelog value of an intersection's MarshalCleaner bytes and the input
// position they cover.
func EncodeCleanerSnapshot(partition int, offset int64, state []byte) ([]byte, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(&greenwavev1.CleanerSnapshot{
		SchemaVersion: CleanerSnapshotVersion, SourcePartition: int32(partition), SourceOffset: offset, State: state})
	if err != nil {
		return nil, fmt.Errorf("encode snapshot: %w", err)
	}
	return b, nil
}

// EncodeCleanerRecord returns the changelog record of an intersection's state covering the input through
// offset of partition (-1: none recorded): keyed by the intersection id and, like the readings it is
// co-partitioned with, placed by partitionKey (its feature group), with the envelope's payload header.
func EncodeCleanerRecord(n topics.Names, id, partitionKey string, s *clean.Intersection, partition int, offset int64) (stream.Output, error) {
	st, err := MarshalCleaner(s)
	if err != nil {
		return stream.Output{}, fmt.Errorf("marshal state of %s: %w", id, err)
	}
	b, err := EncodeCleanerSnapshot(partition, offset, st)
	if err != nil {
		return stream.Output{}, fmt.Errorf("snapshot %s: %w", id, err)
	}
	return stream.Output{Topic: n.CleanerState, Key: []byte(id), Value: b, PartitionKey: partitionKey, Payload: cleanerSnapshotPayload}, nil
}

// DecodeCleanerRecord reads a changelog record (DecodeCleanerSnapshot of its value). A payload header naming
// another message is an error wrapping ErrBadCleanerSnapshot; records of older cleaners carry none.
func DecodeCleanerRecord(m kafka.Message) (CleanerSnapshot, error) {
	if p := stream.Header(m, stream.HeaderPayload); p != nil && string(p) != cleanerSnapshotPayload {
		return CleanerSnapshot{}, fmt.Errorf("%w: payload %q, want %s", ErrBadCleanerSnapshot, p, cleanerSnapshotPayload)
	}
	return DecodeCleanerSnapshot(m.Value)
}

// DecodeCleanerSnapshot reads a changelog value: the protobuf envelope, or a JSON one (version 1) or a bare
// JSON state written by older cleaners (offset -1: an upgrade restores its state and merely loses the replay
// skip once). It fails with an error wrapping ErrBadCleanerSnapshot.
func DecodeCleanerSnapshot(b []byte) (CleanerSnapshot, error) {
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) > 0 && t[0] == '{' {
		return decodeJSONCleanerSnapshot(b)
	}
	var m greenwavev1.CleanerSnapshot
	if err := proto.Unmarshal(b, &m); err != nil {
		return CleanerSnapshot{}, fmt.Errorf("%w: %v", ErrBadCleanerSnapshot, err)
	}
	s := CleanerSnapshot{Version: int(m.GetSchemaVersion()), SourcePartition: int(m.GetSourcePartition()), SourceOffset: m.GetSourceOffset(), State: m.GetState()}
	if s.Version != CleanerSnapshotVersion {
		return s, fmt.Errorf("%w: envelope version %d, want %d", ErrBadCleanerSnapshot, s.Version, CleanerSnapshotVersion)
	}
	if s.SourceOffset < -1 || s.SourcePartition < 0 {
		return s, fmt.Errorf("%w: source position %d@%d out of range", ErrBadCleanerSnapshot, s.SourcePartition, s.SourceOffset)
	}
	if len(s.State) == 0 {
		return s, fmt.Errorf("%w: no state", ErrBadCleanerSnapshot)
	}
	return s, nil
}

// jsonCleanerSnapshot is envelope version 1.
type jsonCleanerSnapshot struct {
	Version         int             `json:"snapshot_version"`
	SourcePartition int             `json:"source_partition"`
	SourceOffset    int64           `json:"source_offset"`
	State           json.RawMessage `json:"state"`
}

func decodeJSONCleanerSnapshot(b []byte) (CleanerSnapshot, error) {
	var j jsonCleanerSnapshot
	if err := json.Unmarshal(b, &j); err != nil {
		return CleanerSnapshot{}, fmt.Errorf("%w: %v", ErrBadCleanerSnapshot, err)
	}
	if j.Version == 0 && j.State == nil {
		return CleanerSnapshot{Version: 0, SourcePartition: -1, SourceOffset: -1, State: b}, nil
	}
	s := CleanerSnapshot{Version: j.Version, SourcePartition: j.SourcePartition, SourceOffset: j.SourceOffset, State: j.State}
	if j.Version != 1 {
		return s, fmt.Errorf("%w: JSON envelope version %d, want 1", ErrBadCleanerSnapshot, j.Version)
	}
	if s.SourceOffset < -1 || s.SourcePartition < 0 {
		return s, fmt.Errorf("%w: source position %d@%d out of range", ErrBadCleanerSnapshot, s.SourcePartition, s.SourceOffset)
	}
	if len(bytes.TrimSpace(j.State)) == 0 || bytes.Equal(j.State, []byte("null")) {
		return s, fmt.Errorf("%w: no state", ErrBadCleanerSnapshot)
	}
	return s, nil
}
