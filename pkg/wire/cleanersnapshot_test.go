package wire

import (
	"bytes"
	"errors"
	"testing"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/greenwave-city/greenwave/pkg/clean"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/topics"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

func TestDecodeCleanerSnapshot(t *testing.T) {
	t.Parallel()
	state := []byte("compressed state")
	good, err := EncodeCleanerSnapshot(2, 41, state)
	if err != nil {
		t.Fatal(err)
	}
	envelope := func(m *greenwavev1.CleanerSnapshot) []byte {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	jsonState := []byte(`{"format":1,"intersection":"I-1"}`)
	for _, tc := range []struct {
		name      string
		b         []byte
		part      int
		off       int64
		wantState []byte
		bad       bool
	}{
		{name: "envelope", b: good, part: 2, off: 41, wantState: state},
		{name: "JSON envelope (version 1)", b: []byte(`{"snapshot_version":1,"source_partition":3,"source_offset":7,"state":{"format":1,"intersection":"I-1"}}`),
			part: 3, off: 7, wantState: jsonState},
		{name: "bare JSON state from before the envelope", b: jsonState, part: -1, off: -1, wantState: jsonState},
		{name: "not a snapshot", b: []byte("\x00\x01"), bad: true},
		{name: "empty", b: nil, bad: true},
		{name: "future version", b: envelope(&greenwavev1.CleanerSnapshot{SchemaVersion: 3, State: state}), bad: true},
		{name: "negative offset", b: envelope(&greenwavev1.CleanerSnapshot{SchemaVersion: 2, SourceOffset: -7, State: state}), bad: true},
		{name: "negative partition", b: envelope(&greenwavev1.CleanerSnapshot{SchemaVersion: 2, SourcePartition: -1, State: state}), bad: true},
		{name: "no state", b: envelope(&greenwavev1.CleanerSnapshot{SchemaVersion: 2, SourceOffset: 3}), bad: true},
		{name: "future JSON version", b: []byte(`{"snapshot_version":2,"source_partition":0,"source_offset":1,"state":{}}`), bad: true},
		{name: "JSON negative offset", b: []byte(`{"snapshot_version":1,"source_partition":0,"source_offset":-7,"state":{}}`), bad: true},
		{name: "JSON null state", b: []byte(`{"snapshot_version":1,"source_partition":0,"source_offset":3,"state":null}`), bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := DecodeCleanerSnapshot(tc.b)
			if tc.bad {
				if !errors.Is(err, ErrBadCleanerSnapshot) {
					t.Fatalf("got %v, want ErrBadCleanerSnapshot", err)
				}
				return
			}
			if err != nil || s.SourcePartition != tc.part || s.SourceOffset != tc.off || !bytes.Equal(s.State, tc.wantState) {
				t.Fatalf("got %+v, %v", s, err)
			}
		})
	}
}

// FuzzDecodeCleanerSnapshot: any changelog value decodes or fails with ErrBadCleanerSnapshot, and the state
// of what decodes restores or fails cleanly.
func FuzzDecodeCleanerSnapshot(f *testing.F) {
	st, err := MarshalCleaner(stateFixtureOf(f, 12))
	if err != nil {
		f.Fatal(err)
	}
	good, err := EncodeCleanerSnapshot(0, 41, st)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"format":1}`))
	f.Add([]byte(`{"snapshot_version":1,"source_partition":0,"source_offset":-1,"state":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeCleanerSnapshot(b)
		if err != nil {
			if !errors.Is(err, ErrBadCleanerSnapshot) {
				t.Fatalf("error %v does not wrap ErrBadCleanerSnapshot", err)
			}
			return
		}
		if s.SourceOffset < -1 {
			t.Fatalf("accepted offset %d", s.SourceOffset)
		}
		if _, err := RestoreCleaner(stateTopo(), clean.DefaultConfig(), s.State); err != nil && !errors.Is(err, clean.ErrBadState) {
			t.Fatalf("restore: error %v does not wrap ErrBadState", err)
		}
	})
}

// TestCleanerRecord: a changelog record is keyed and placed as the readings, carries the envelope's payload
// header (the message's full name), and decodes back; a record of another payload is refused, one without a
// payload header (older cleaners) is read.
func TestCleanerRecord(t *testing.T) {
	t.Parallel()
	names := topics.DefaultNames("")
	s := stateFixtureOf(t, 12)
	out, err := EncodeCleanerRecord(names, "I-1", "group-1", s, 3, 41)
	if err != nil {
		t.Fatal(err)
	}
	if out.Topic != names.CleanerState || string(out.Key) != "I-1" || out.PartitionKey != "group-1" || out.Payload != "greenwave.v1.CleanerSnapshot" {
		t.Fatalf("record %s key %q partition key %q payload %q", out.Topic, out.Key, out.PartitionKey, out.Payload)
	}
	m := out.Message()
	for _, tc := range []struct {
		name    string
		headers []kafka.Header
		bad     bool
	}{
		{name: "written", headers: m.Headers},
		{name: "no headers", headers: nil},
		{name: "other payload", headers: []kafka.Header{{Key: stream.HeaderPayload, Value: []byte(TopicFeatures.Payload())}}, bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			snap, err := DecodeCleanerRecord(kafka.Message{Key: m.Key, Value: m.Value, Headers: tc.headers})
			if tc.bad {
				if !errors.Is(err, ErrBadCleanerSnapshot) {
					t.Fatalf("got %v, want ErrBadCleanerSnapshot", err)
				}
				return
			}
			if err != nil || snap.SourcePartition != 3 || snap.SourceOffset != 41 || snap.Version != CleanerSnapshotVersion {
				t.Fatalf("got %+v, %v", snap, err)
			}
			if _, err := RestoreCleaner(stateTopo(), clean.DefaultConfig(), snap.State); err != nil {
				t.Fatal(err)
			}
		})
	}
}
