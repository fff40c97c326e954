package cleaner

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// snapshotVersion is the version of the changelog envelope written by encodeSnapshot.
const snapshotVersion = 1

// ErrBadSnapshot is wrapped by decodeSnapshot when changelog bytes are not a usable snapshot envelope.
var ErrBadSnapshot = errors.New("bad cleaner snapshot")

// snapshot is the value of a greenwave.cleaner.state record: one intersection's clean.Intersection state plus
// the input position it covers.
//
// Why the position: the state and the committed input offset are published in two steps (state first), so a
// crash between them restarts from an offset the state has already applied. pkg/clean drops an accepted
// reading's identical replay, but a rejected reading is not remembered and would be judged again against the
// newer state — a "late" verdict's detail names the watermark, and a dedup entry pruned in between turns a
// replay into a spurious rejection. Skipping every record at or below SourceOffset makes the continuation
// apply exactly the records the state has not seen, so it equals an uninterrupted run.
type snapshot struct {
	Version int `json:"snapshot_version"`
	// SourcePartition and SourceOffset are the input partition and the offset of the last record of this
	// intersection applied to State (-1: none recorded).
	SourcePartition int             `json:"source_partition"`
	SourceOffset    int64           `json:"source_offset"`
	State           json.RawMessage `json:"state"`
}

// encodeSnapshot wraps an intersection's MarshalState bytes (JSON) with the input position they cover.
func encodeSnapshot(partition int, offset int64, state []byte) ([]byte, error) {
	b, err := json.Marshal(snapshot{Version: snapshotVersion, SourcePartition: partition, SourceOffset: offset, State: state})
	if err != nil {
		return nil, fmt.Errorf("encode snapshot: %w", err)
	}
	return b, nil
}

// decodeSnapshot reads a changelog value. A bare clean state (written before the envelope existed) is
// accepted with offset -1, so an upgrade restores its state and merely loses the replay skip once.
func decodeSnapshot(b []byte) (snapshot, error) {
	var s snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("%w: %v", ErrBadSnapshot, err)
	}
	if s.Version == 0 && s.State == nil {
		return snapshot{SourcePartition: -1, SourceOffset: -1, State: b}, nil
	}
	if s.Version != snapshotVersion {
		return s, fmt.Errorf("%w: envelope version %d, want %d", ErrBadSnapshot, s.Version, snapshotVersion)
	}
	if s.SourceOffset < -1 || s.SourcePartition < 0 {
		return s, fmt.Errorf("%w: source position %d@%d out of range", ErrBadSnapshot, s.SourcePartition, s.SourceOffset)
	}
	if len(bytes.TrimSpace(s.State)) == 0 || bytes.Equal(s.State, []byte("null")) {
		return s, fmt.Errorf("%w: no state", ErrBadSnapshot)
	}
	return s, nil
}
