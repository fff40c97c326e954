package stream_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap/zaptest"

	"github.com/greenwave-city/greenwave/pkg/kafkaconn"
	"github.com/greenwave-city/greenwave/pkg/kafkatest"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/topics"
	"github.com/greenwave-city/greenwave/pkg/wire"
)

// TestProcessorShutdownIsBounded: a processor told to stop while the broker does not answer its LeaveGroup (as
// a broker holding a JoinGroup for a whole rebalance does not) returns after LeaveTimeout with the request still
// unanswered, and counts the unfinished leave.
// Break it catches: waiting for kafka-go's group Close without a bound (Run then returns only when kafka-go gives
// up on the request by itself, seconds later, and no unfinished leave is counted; had the broker answered first,
// the answered check fails).
func TestProcessorShutdownIsBounded(t *testing.T) {
	t.Parallel()
	cluster, addrs, err := kafkatest.NewCluster()
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	kafkaConn := kafkaconn.Plaintext(addrs...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := topics.EnsureTopics(ctx, kafkaConn, []topics.Spec{{Name: "in", Partitions: 1}, {Name: "dlq", Partitions: 1}}); err != nil {
		t.Fatal(err)
	}
	prod := stream.NewProducer(kafkaConn, stream.ProducerConfig{})
	defer prod.Close()
	reg := prometheus.NewRegistry()
	metrics := stream.NewMetrics(reg)
	proc := stream.NewProcessor(stream.ProcessorConfig{
		Conn: kafkaConn, GroupID: "bounded-leave", Topic: "in", DeadLetterTopic: "dlq", Service: "test", DeadLetter: wire.DeadLetter,
		SessionTimeout: 6 * time.Second, LeaveTimeout: 200 * time.Millisecond,
	}, prod, func(context.Context, int) (*stream.Handler, error) {
		return stream.NewHandler(func(context.Context, kafka.Message) ([]stream.Output, error) { return nil, nil }), nil
	}, zaptest.NewLogger(t), metrics)

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- proc.Run(runCtx) }()
	for !proc.Joined() {
		select {
		case err := <-done:
			t.Fatalf("Run ended before joining: %v", err)
		case <-time.After(10 * time.Millisecond): // polling interval
		}
	}

	// From now on the broker takes LeaveGroup requests and never answers them until released.
	leaving, release := make(chan struct{}), make(chan struct{})
	var answered atomic.Bool
	cluster.ControlKey(int16(kmsg.LeaveGroup), func(kmsg.Request) (kmsg.Response, error, bool) {
		close(leaving)
		<-release
		answered.Store(true)
		return nil, nil, false
	})
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	stop()
	<-leaving
	if err := <-done; err != nil {
		t.Fatalf("Run = %v, want nil after its context ended", err)
	}
	if answered.Load() {
		t.Fatal("Run returned only after the broker answered the LeaveGroup: shutdown is not bounded")
	}
	close(release)
	want := "# HELP greenwave_stream_unfinished_leaves_total Shutdowns that did not leave the consumer group within the leave timeout (the broker rebalances after the session timeout instead).\n" +
		"# TYPE greenwave_stream_unfinished_leaves_total counter\ngreenwave_stream_unfinished_leaves_total 1\n"
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "greenwave_stream_unfinished_leaves_total"); err != nil {
		t.Error(err)
	}
}
