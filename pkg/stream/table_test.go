package stream_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/greenwave-city/greenwave/pkg/kafkaconn"
	"github.com/greenwave-city/greenwave/pkg/kafkatest"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/topics"
)

// TestFollowRetriesListOffsetsErrors: a broker that briefly answers ListOffsets with an error for a freshly
// created partition (as a loaded Apache Kafka did with UNKNOWN_SERVER_ERROR) delays Follow, it does not fail it.
// Errors that will not go away by asking again still fail it.
func TestFollowRetriesListOffsetsErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		code     kafka.Error
		failures int32 // answers with code before the broker answers properly; -1 = always
		wantErr  bool
	}{
		{name: "unknown server error", code: kafka.Unknown, failures: 3},
		{name: "leader not available", code: kafka.LeaderNotAvailable, failures: 2},
		{name: "not authorized", code: kafka.TopicAuthorizationFailed, failures: -1, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cluster, addrs, err := kafkatest.NewCluster()
			if err != nil {
				t.Fatal(err)
			}
			kafkaConn := kafkaconn.Plaintext(addrs...)
			defer cluster.Close()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			const topic = "greenwave.overrides"
			if err := topics.EnsureTopics(ctx, kafkaConn, []topics.Spec{{Name: topic, Partitions: 2}}); err != nil {
				t.Fatal(err)
			}
			w := stream.NewProducer(kafkaConn, stream.ProducerConfig{})
			defer w.Close()
			if err := w.Write(ctx, stream.Output{Topic: topic, Key: []byte("I-100"), Value: []byte("v")}); err != nil {
				t.Fatal(err)
			}

			var answered atomic.Int32
			cluster.ControlKey(int16(kmsg.ListOffsets), func(r kmsg.Request) (kmsg.Response, error, bool) {
				cluster.KeepControl()
				if tc.failures >= 0 && answered.Add(1) > tc.failures {
					return nil, nil, false
				}
				req := r.(*kmsg.ListOffsetsRequest)
				resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
				for _, rt := range req.Topics {
					st := kmsg.NewListOffsetsResponseTopic()
					st.Topic = rt.Topic
					for _, rp := range rt.Partitions {
						sp := kmsg.NewListOffsetsResponseTopicPartition()
						sp.Partition = rp.Partition
						sp.ErrorCode = int16(tc.code)
						st.Partitions = append(st.Partitions, sp)
					}
					resp.Topics = append(resp.Topics, st)
				}
				return resp, nil, true
			})

			followCtx, stop := context.WithCancel(ctx)
			defer stop()
			var records atomic.Int32
			err = stream.Follow(followCtx, kafkaConn, topic, 2, func(kafka.Message) error {
				records.Add(1)
				return nil
			}, stop)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("Follow() = nil, want an error for %v", tc.code)
				}
				return
			}
			if err != nil {
				t.Fatalf("Follow() = %v, want it to retry past %d × %v", err, tc.failures, tc.code)
			}
			if got := answered.Load(); got <= tc.failures {
				t.Fatalf("ListOffsets asked %d times, want more than the %d injected failures", got, tc.failures)
			}
			if got := records.Load(); got != 1 {
				t.Fatalf("Follow() read %d records before catching up, want 1", got)
			}
		})
	}
}
