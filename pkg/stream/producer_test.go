package stream_test

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/greenwave-city/greenwave/pkg/kafkatest"
	"github.com/greenwave-city/greenwave/pkg/stream"
)

func TestIntersectionBalancer(t *testing.T) {
	const n = 12
	partitions := make([]int, n)
	for i := range partitions {
		partitions[i] = i
	}
	tests := []struct {
		name string
		out  stream.Output
		want string // what the record must be placed by
	}{
		{"intersection key", stream.Output{Key: []byte("I-100")}, "I-100"},
		{"compound key: the part before the first slash", stream.Output{Key: []byte("I-100/N/900/flow")}, "I-100"},
		{"partition key wins over the key", stream.Output{Key: []byte("I-101"), PartitionKey: "I-100"}, "I-100"},
		{"partition key is hashed whole", stream.Output{Key: []byte("I-101/N"), PartitionKey: "G/1"}, "G/1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg := tc.out.Message()
			got := stream.IntersectionBalancer{}.Balance(msg, partitions...)
			want := kafka.Murmur2Balancer{Consistent: true}.Balance(kafka.Message{Key: []byte(tc.want)}, partitions...)
			if got != want {
				t.Errorf("placed in partition %d, want %d (that of %q)", got, want, tc.want)
			}
			if h := stream.Header(msg, stream.HeaderPartitionKey); string(h) != tc.out.PartitionKey {
				t.Errorf("partition key header %q, want %q", h, tc.out.PartitionKey)
			}
		})
	}
	// The partition key must actually move records: over many intersections, some land elsewhere than their
	// own key would put them.
	moved := 0
	for i := range 50 {
		id := fmt.Sprintf("I-%d", i)
		out := stream.Output{Key: []byte(id), PartitionKey: "I-0"}
		if (stream.IntersectionBalancer{}).Balance(out.Message(), partitions...) != stream.PartitionFor(id, n) {
			moved++
		}
	}
	if moved == 0 {
		t.Error("a partition key never changed a record's partition")
	}
}

func TestProducerCountsAcknowledgedBytesPerTopic(t *testing.T) {
	kafkaConn, names := kafkatest.Setup(t, 1)
	reg := prometheus.NewRegistry()
	prod := stream.NewProducer(kafkaConn, stream.ProducerConfig{Registerer: reg})
	t.Cleanup(func() { prod.Close() })
	outs := []stream.Output{
		{Topic: names.Features, Key: []byte("I-1"), Value: []byte("abc"), EventID: "e1", Payload: "p"},
		{Topic: names.Features, Key: []byte("I-2"), Value: []byte("defgh")},
		{Topic: names.CleanerState, Key: []byte("I-1"), Value: make([]byte, 100)},
	}
	if err := prod.Write(t.Context(), outs...); err != nil {
		t.Fatal(err)
	}
	wantBytes := map[string]int{}
	wantRecords := map[string]int{}
	for _, o := range outs {
		wantBytes[o.Topic] += stream.MessageBytes(o.Message())
		wantRecords[o.Topic]++
	}
	for topic, want := range wantBytes {
		if got := produced(t, reg, "greenwave_produced_bytes_total", topic); got != float64(want) {
			t.Errorf("%s: %v bytes counted, want %d", topic, got, want)
		}
		if got := produced(t, reg, "greenwave_produced_records_total", topic); got != float64(wantRecords[topic]) {
			t.Errorf("%s: %v records counted, want %d", topic, got, wantRecords[topic])
		}
	}
	// Key 3 + value 3 + the three headers' keys and values.
	if got, want := stream.MessageBytes(outs[0].Message()), 3+3+len(stream.HeaderEventID)+2+len(stream.HeaderPayload)+1+len(stream.HeaderSchemaVersion)+1; got != want {
		t.Errorf("MessageBytes = %d, want %d", got, want)
	}
}

// produced returns the value of one topic's counter among the registry's gathered metrics.
func produced(t *testing.T, reg *prometheus.Registry, name, topic string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "topic" && l.GetValue() == topic {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s for topic %s", name, topic)
	return 0
}

// TestOutputSchemaVersionHeader: the schema-version header carries the payload's version, 1 when unset.
func TestOutputSchemaVersionHeader(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		version uint32
		want    string
	}{{0, "1"}, {1, "1"}, {2, "2"}} {
		m := stream.Output{Topic: "t", Key: []byte("k"), Payload: "greenwave.v1.ModelSnapshot", SchemaVersion: tc.version}.Message()
		if got := string(stream.Header(m, stream.HeaderSchemaVersion)); got != tc.want {
			t.Errorf("schema version %d: header %q, want %q", tc.version, got, tc.want)
		}
	}
}
