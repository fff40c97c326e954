package cleaner

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/greenwave-city/greenwave/pkg/stream"
)

func TestDecodeSnapshot(t *testing.T) {
	t.Parallel()
	state := []byte(`{"format":1,"intersection":"I-1"}`)
	good, err := encodeSnapshot(2, 41, state)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		b         []byte
		part      int
		off       int64
		wantState []byte
		bad       bool
	}{
		{name: "envelope", b: good, part: 2, off: 41, wantState: state},
		{name: "bare state from before the envelope", b: state, part: -1, off: -1, wantState: state},
		{name: "not json", b: []byte("\x00\x01"), bad: true},
		{name: "future version", b: []byte(`{"snapshot_version":2,"source_partition":0,"source_offset":1,"state":{}}`), bad: true},
		{name: "negative offset", b: []byte(`{"snapshot_version":1,"source_partition":0,"source_offset":-7,"state":{}}`), bad: true},
		{name: "negative partition", b: []byte(`{"snapshot_version":1,"source_partition":-1,"source_offset":3,"state":{}}`), bad: true},
		{name: "no state", b: []byte(`{"snapshot_version":1,"source_partition":0,"source_offset":3}`), bad: true},
		{name: "null state", b: []byte(`{"snapshot_version":1,"source_partition":0,"source_offset":3,"state":null}`), bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := decodeSnapshot(tc.b)
			if tc.bad {
				if !errors.Is(err, ErrBadSnapshot) {
					t.Fatalf("got %v, want ErrBadSnapshot", err)
				}
				return
			}
			if err != nil || s.SourcePartition != tc.part || s.SourceOffset != tc.off || !bytes.Equal(s.State, tc.wantState) {
				t.Fatalf("got %+v, %v", s, err)
			}
		})
	}
}

func FuzzDecodeSnapshot(f *testing.F) {
	good, _ := encodeSnapshot(0, 5, []byte(`{"format":1}`))
	f.Add(good)
	f.Add([]byte(`{"format":1}`))
	f.Add([]byte(`{"snapshot_version":1,"source_partition":0,"source_offset":-1,"state":[]}`))
	p := newTestPartition(f, 0)
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeSnapshot(b)
		if err != nil {
			if !errors.Is(err, ErrBadSnapshot) {
				t.Fatalf("error %v does not wrap ErrBadSnapshot", err)
			}
			return
		}
		if s.SourceOffset < -1 {
			t.Fatalf("accepted offset %d", s.SourceOffset)
		}
		// Whatever decodes must restore or fail cleanly, never panic.
		_, _ = p.restore("I-100", b)
	})
}

// FuzzHandle feeds arbitrary record values to the handler: each is applied, or rejected with a reason, and
// the handler never panics or fails the partition.
func FuzzHandle(f *testing.F) {
	topo := loadTopology(f)
	for _, v := range script(f, topo, "I-100", 8) {
		f.Add(v)
	}
	p := newTestPartition(f, 0)
	var offset int64
	f.Fuzz(func(t *testing.T, v []byte) {
		offset++
		_, err := p.Handle(context.Background(), kafka.Message{Partition: 0, Offset: offset, Value: v})
		var rej *stream.RejectError
		if err != nil && !errors.As(err, &rej) {
			t.Fatalf("handle: %v", err)
		}
		if _, err := p.Checkpoint(context.Background()); err != nil {
			t.Fatalf("checkpoint: %v", err)
		}
	})
}
