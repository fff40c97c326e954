package cleaner

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/greenwave-city/greenwave/pkg/clean"
	"github.com/greenwave-city/greenwave/pkg/topics"
	"github.com/greenwave-city/greenwave/pkg/topology"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// topologyFile is the example topology shipped with the repository.
const topologyFile = "../../../../config/topology.yaml"

// t0 is a Monday 06:00 UTC, aligned to every window.
var t0 = time.Date(2026, 11, 2, 6, 0, 0, 0, time.UTC)

func loadTopology(t testing.TB) *topology.Index {
	t.Helper()
	topo, err := topology.Load(topologyFile)
	if err != nil {
		t.Fatal(err)
	}
	return topology.NewIndex(topo)
}

func newTestPartition(t testing.TB, id int) *partition {
	t.Helper()
	return newCheckedPartition(t, id, 0)
}

// newCheckedPartition is a handler for partition id of an input topic with the given partition count, which
// checks that records are in their feature group's partition (0: unchecked).
func newCheckedPartition(t testing.TB, id, partitions int) *partition {
	t.Helper()
	return newPartition(id, partitions, loadTopology(t), clean.DefaultConfig(), topics.DefaultNames("test."), nil, newMetrics(prometheus.NewRegistry()))
}

// reading is one minute-long reading of detector det of intersection in, minute minutes after t0.
func reading(in, det string, minute int, count float64) *greenwavev1.TrafficReading {
	at := t0.Add(time.Duration(minute) * time.Minute)
	return &greenwavev1.TrafficReading{
		SchemaVersion: 1, ReadingId: fmt.Sprintf("%s@%d", det, at.Unix()), IntersectionId: in, DetectorId: det,
		ObservedAt: timestamppb.New(at), IntervalS: 60, Count: count,
	}
}

// script is a fixed input for one intersection that exercises every path that carries state: identical and
// conflicting duplicates, out-of-order readings within the allowed lateness, a late reading, a stuck detector,
// a detector gap, a malformed record and a reading for an intersection not in the topology.
func script(t testing.TB, topo *topology.Index, in string, minutes int) [][]byte {
	t.Helper()
	inter, ok := topo.Intersection(in)
	if !ok {
		t.Fatalf("intersection %s not in the topology", in)
	}
	var dets []string
	for _, a := range inter.Approaches {
		dets = append(dets, a.Detectors...)
	}
	var out [][]byte
	add := func(m proto.Message) {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	var held []*greenwavev1.TrafficReading
	for m := range minutes {
		for i, d := range dets {
			r := reading(in, d, m, float64(4+(m*7+i*3)%9))
			switch {
			case i == len(dets)-1 && m >= 20 && m < 40:
				r.Count = 7 // stuck: the same count minute after minute
			case i == 0 && m >= 42 && m < 55:
				continue // gap
			case i == 1 && m == 2:
				held = append(held, r) // sent at minute 30: late
				continue
			case i == 2 && m%10 == 5:
				held = append(held, r) // sent two minutes later: out of order within the lateness
				continue
			}
			add(r)
			if i == 0 && m == 3 {
				add(r) // identical duplicate
			}
			if i == 1 && m == 4 {
				c := proto.Clone(r).(*greenwavev1.TrafficReading)
				c.Count++
				add(c) // conflicting duplicate
			}
		}
		var keep []*greenwavev1.TrafficReading
		for _, r := range held {
			at := r.GetObservedAt().AsTime()
			if (at.Minute()%10 == 5 && m == int(at.Sub(t0)/time.Minute)+2) || (m == 30 && at.Sub(t0) == 2*time.Minute) {
				add(r)
				continue
			}
			keep = append(keep, r)
		}
		held = keep
		if m == 15 {
			out = append(out, []byte{0xff, 0x01}) // malformed
			add(reading("I-999", "X-1", m, 3))    // not in the topology
		}
	}
	return out
}

// messages numbers records as consecutive offsets of one partition.
func messages(part int, values [][]byte) []kafka.Message {
	out := make([]kafka.Message, len(values))
	for i, v := range values {
		out[i] = kafka.Message{Topic: "test.greenwave.readings.raw", Partition: part, Offset: int64(i), Value: v}
	}
	return out
}
