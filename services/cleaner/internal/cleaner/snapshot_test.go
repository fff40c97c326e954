package cleaner

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/wire"
)

// TestRestoreJSONSnapshot restores a changelog record written by the cleaner before the protobuf state (JSON
// envelope version 1 around a format 3 JSON state; testdata/snapshot-v1-I-100.json is the I-100 record after
// script(I-100, 40) at offsets from 0): the state and the replay skip carry over, the cleaner goes on, and its
// next snapshot is protobuf and a fraction of the size.
func TestRestoreJSONSnapshot(t *testing.T) {
	t.Parallel()
	old, err := os.ReadFile("testdata/snapshot-v1-I-100.json")
	if err != nil {
		t.Fatal(err)
	}
	topo := loadTopology(t)
	msgs := messages(0, script(t, topo, "I-100", 60))
	ref := newTestPartition(t, 0)
	n := len(script(t, topo, "I-100", 40))
	for _, m := range msgs[:n] {
		handle(t, ref, m)
	}
	p := newTestPartition(t, 0)
	if skip, err := p.restore("I-100", kafka.Message{Value: old}); err != nil || skip != "" {
		t.Fatalf("restore: %q %v", skip, err)
	}
	if p.applied["I-100"] != ref.applied["I-100"] || !p.states["I-100"].Watermark().Equal(ref.states["I-100"].Watermark()) {
		t.Fatalf("restored offset %d watermark %s, want %d %s", p.applied["I-100"], p.states["I-100"].Watermark(),
			ref.applied["I-100"], ref.states["I-100"].Watermark())
	}
	frames := 0
	for _, m := range msgs[n:] {
		for _, o := range handle(t, p, m) {
			if o.Topic == p.names.Features {
				frames++
			}
		}
	}
	if frames == 0 {
		t.Fatal("no frame after the restore")
	}
	b := checkpoint(t, p)["I-100"]
	s, err := wire.DecodeCleanerSnapshot(b)
	if err != nil || s.Version != wire.CleanerSnapshotVersion {
		t.Fatalf("next snapshot: %+v %v", s, err)
	}
	t.Logf("I-100 snapshot: %d bytes as JSON, %d as protobuf", len(old), len(b))
	if len(b)*4 > len(old) {
		t.Errorf("protobuf snapshot %d bytes, JSON %d: want a fraction", len(b), len(old))
	}
}

func FuzzDecodeSnapshot(f *testing.F) {
	p := newTestPartition(f, 0)
	for _, m := range messages(0, script(f, p.topo, "I-100", 12)) {
		if _, err := p.Handle(context.Background(), m); err != nil {
			var rej *stream.RejectError
			if !errors.As(err, &rej) {
				f.Fatal(err)
			}
		}
	}
	outs, err := p.Checkpoint(context.Background())
	if err != nil {
		f.Fatal(err)
	}
	for _, o := range outs {
		f.Add(o.Value)
	}
	f.Add([]byte(`{"format":1}`))
	f.Add([]byte(`{"snapshot_version":1,"source_partition":0,"source_offset":-1,"state":[]}`))
	fresh := newTestPartition(f, 0)
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := wire.DecodeCleanerSnapshot(b)
		if err != nil {
			if !errors.Is(err, wire.ErrBadCleanerSnapshot) {
				t.Fatalf("error %v does not wrap ErrBadCleanerSnapshot", err)
			}
			return
		}
		if s.SourceOffset < -1 {
			t.Fatalf("accepted offset %d", s.SourceOffset)
		}
		// Whatever decodes must restore or fail cleanly, never panic.
		_, _ = fresh.restore("I-100", kafka.Message{Value: b})
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
