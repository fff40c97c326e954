package wire

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/greenwave-city/greenwave/pkg/sim"
	"github.com/greenwave-city/greenwave/pkg/topology"
)

// TestSimBatchGolden: the simulator's batches are byte-identical to those it produced before its readings
// became domain values (captured from the simulator that built protobuf messages itself).
func TestSimBatchGolden(t *testing.T) {
	t.Parallel()
	topo, err := topology.Load("../../config/topology.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s, err := sim.New(topo, sim.Config{Seed: 7, Start: time.Date(2026, 11, 2, 6, 0, 0, 0, time.UTC), IntervalS: 60, DuplicateRate: 0.05})
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	for range 30 {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(SimBatch("", s.Next()))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	golden(t, "sim-ticks.golden", out)
}
