package stream_test

import (
	"fmt"
	"testing"

	"github.com/segmentio/kafka-go"

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
