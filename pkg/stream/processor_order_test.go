package stream_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"

	"github.com/greenwave-city/greenwave/pkg/kafkaconn"
	"github.com/greenwave-city/greenwave/pkg/kafkatest"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// committed is the offset the group committed on partition 0 of topic (0 when none).
func committed(ctx context.Context, t *testing.T, kafkaConn kafkaconn.Conn, topic, group string) int64 {
	t.Helper()
	offs, err := kafkaConn.Client(0).ConsumerOffsets(ctx, kafka.TopicAndGroup{Topic: topic, GroupId: group})
	if err != nil {
		t.Fatalf("consumer offsets of %s: %v", group, err)
	}
	return max(offs[0], 0)
}

// errCrash stands for the process dying after its outputs were acknowledged and before its offsets moved.
var errCrash = errors.New("crash between publishing and committing")

// TestProcessorPublishesBeforeCommitting injects a failure between publishing a batch's outputs and committing
// its offsets (the handler's acknowledgement hook, which the processor calls after the outputs are acknowledged
// and before it commits). At that point every output of the batch must be on its topic and the batch's offsets
// not yet committed; the failed processor stops without committing; a processor started after it handles the same
// records again (at-least-once: the outputs are published twice, identical) and commits them.
//
// Breaks it catches: committing before publishing (the offsets are already past the batch when the hook runs),
// committing while the publish failed (the offsets move after the injected failure), and dropping a failed batch
// (the restarted processor never sees the records again).
func TestProcessorPublishesBeforeCommitting(t *testing.T) {
	t.Parallel()
	const n = 12
	kafkaConn, names := kafkatest.Setup(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	prod := stream.NewProducer(kafkaConn, stream.ProducerConfig{})
	defer prod.Close()
	for i := range n {
		if err := prod.Write(ctx, stream.Output{Topic: names.Readings, Key: []byte("k"), Value: []byte(strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
	}
	group := kafkatest.Prefix(t) + "group"
	// run handles the input with a processor whose acknowledgement hook is acked, until acked says stop.
	run := func(acked func(ctx context.Context, handled []string) (stop bool, err error)) error {
		runCtx, stop := context.WithCancel(ctx)
		defer stop()
		var handled []string
		proc := stream.NewProcessor(stream.ProcessorConfig{
			Conn: kafkaConn, GroupID: group, Topic: names.Readings, DeadLetterTopic: names.DeadLetters, Service: "test", DeadLetter: wire.DeadLetter,
			MaxBatch: 4, SessionTimeout: 6 * time.Second,
		}, prod, func(context.Context, int) (*stream.Handler, error) {
			return stream.NewHandler(func(_ context.Context, m kafka.Message) ([]stream.Output, error) {
				handled = append(handled, string(m.Value))
				return []stream.Output{{Topic: names.Features, Key: m.Key, Value: m.Value}}, nil
			}, stream.WithAcknowledged(func(ctx context.Context) error {
				done, err := acked(ctx, handled)
				if done {
					stop()
				}
				return err
			})), nil
		}, zaptest.NewLogger(t), stream.NewMetrics(prometheus.NewRegistry()))
		return proc.Run(runCtx)
	}

	// First run: at the first acknowledgement, the outputs are out and the offsets have not moved; then it crashes.
	var firstBatch []string
	err := run(func(ctx context.Context, handled []string) (bool, error) {
		firstBatch = append([]string(nil), handled...)
		if got := committed(ctx, t, kafkaConn, names.Readings, group); got != 0 {
			t.Errorf("offsets committed up to %d before the batch's acknowledgement hook ran: committed before publishing", got)
		}
		out := readValues(ctx, t, kafkaConn, names.Features)
		if strings.Join(out, ",") != strings.Join(handled, ",") {
			t.Errorf("outputs on the topic when the hook runs %v, want the batch's %v: not published before the hook", out, handled)
		}
		return false, errCrash
	})
	if !errors.Is(err, errCrash) {
		t.Fatalf("Run after the injected failure = %v, want it to stop with %v", err, errCrash)
	}
	if len(firstBatch) == 0 {
		t.Fatal("the acknowledgement hook never ran")
	}
	if got := committed(ctx, t, kafkaConn, names.Readings, group); got != 0 {
		t.Fatalf("offsets committed up to %d after a failure between publishing and committing", got)
	}

	// Second run: the same records again, committed this time.
	err = run(func(ctx context.Context, handled []string) (bool, error) {
		return len(handled) == n, nil
	})
	if err != nil {
		t.Fatalf("Run after the restart = %v", err)
	}
	if got := committed(ctx, t, kafkaConn, names.Readings, group); got != n {
		t.Fatalf("after the restart the group committed %d of %d records", got, n)
	}
	out := readValues(ctx, t, kafkaConn, names.Features)
	want := append(append([]string(nil), firstBatch...), seq(n)...)
	if strings.Join(out, ",") != strings.Join(want, ",") {
		t.Errorf("outputs %v, want the crashed batch %v then every record once more", out, firstBatch)
	}
}

// TestProcessorDeadLettersHandlerPanic: a record that makes the handler panic is dead-lettered with the panic as
// its reason, and the partition goes on: the records after it are handled and every offset is committed.
// Breaks it catches: a panic that crashes the service (the test process dies), one that stalls the partition
// (the later records never arrive) or one that is swallowed without a dead letter.
func TestProcessorDeadLettersHandlerPanic(t *testing.T) {
	t.Parallel()
	const n, poisoned = 10, 4
	kafkaConn, names := kafkatest.Setup(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	runUntilCommitted(ctx, t, kafkaConn, names, n, func() *stream.Handler {
		return stream.NewHandler(func(_ context.Context, m kafka.Message) ([]stream.Output, error) {
			if string(m.Value) == strconv.Itoa(poisoned) {
				var ids []string
				_ = ids[len(m.Value)] // a real bug's panic: index out of range
			}
			return []stream.Output{{Topic: names.Features, Key: m.Key, Value: m.Value}}, nil
		})
	})
	out := readValues(ctx, t, kafkaConn, names.Features)
	want := seq(n)
	want = append(want[:poisoned], want[poisoned+1:]...)
	if strings.Join(out, ",") != strings.Join(want, ",") {
		t.Errorf("outputs %v, want every record but the poisoned one: %v", out, want)
	}
	var dls []*greenwavev1.DeadLetter
	if err := stream.ReadPartition(ctx, kafkaConn, names.DeadLetters, 0, func(m kafka.Message) error {
		var dl greenwavev1.DeadLetter
		if err := proto.Unmarshal(m.Value, &dl); err != nil {
			return err
		}
		dls = append(dls, &dl)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(dls) != 1 || string(dls[0].GetPayload()) != strconv.Itoa(poisoned) || !strings.Contains(dls[0].GetDetail(), "handler panic") ||
		!strings.Contains(dls[0].GetDetail(), "index out of range") {
		t.Errorf("dead letters %v, want one for record %d naming the handler panic", dls, poisoned)
	}
}

// readValues reads partition 0 of topic whole and returns its values in order.
func readValues(ctx context.Context, t *testing.T, kafkaConn kafkaconn.Conn, topic string) []string {
	t.Helper()
	var out []string
	if err := stream.ReadPartition(ctx, kafkaConn, topic, 0, func(m kafka.Message) error {
		out = append(out, string(m.Value))
		return nil
	}); err != nil {
		t.Fatalf("read %s: %v", topic, err)
	}
	return out
}

// seq is "0" … "n-1".
func seq(n int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = strconv.Itoa(i)
	}
	return s
}
