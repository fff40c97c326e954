package stream_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap/zaptest"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"

	"github.com/greenwave-city/greenwave/pkg/kafkaconn"
	"github.com/greenwave-city/greenwave/pkg/kafkatest"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/topics"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// collect follows topic until want records arrived or ctx ends.
func collect(ctx context.Context, t *testing.T, kafkaConn kafkaconn.Conn, topic string, partitions, want int) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu  sync.Mutex
		got []kafka.Message
	)
	err := stream.Follow(ctx, kafkaConn, topic, partitions, func(m kafka.Message) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, m)
		if len(got) >= want {
			cancel()
		}
		return nil
	}, nil)
	if err != nil {
		t.Fatalf("follow %s: %v", topic, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) < want {
		t.Fatalf("follow %s: got %d records, want %d", topic, len(got), want)
	}
	return got
}

// TestProcessorRoutesOutputsAndDeadLetters: outputs keep each key's input order and land in the key's partition,
// rejected records become dead letters with their reason, and every offset is committed in the end. The order of
// publishing and committing is TestProcessorPublishesBeforeCommitting's.
func TestProcessorRoutesOutputsAndDeadLetters(t *testing.T) {
	t.Parallel()
	const partitions, n = 3, 60
	kafkaConn, names := kafkatest.Setup(t, partitions)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	prod := stream.NewProducer(kafkaConn, stream.ProducerConfig{})
	defer prod.Close()
	var in []stream.Output
	for i := range n {
		key := fmt.Sprintf("I-%d", i%7)
		value := strconv.Itoa(i)
		if i%10 == 9 {
			value = "bad"
		}
		in = append(in, stream.Output{Topic: names.Readings, Key: []byte(key), Value: []byte(value), EventID: strconv.Itoa(i)})
	}
	if err := prod.Write(ctx, in...); err != nil {
		t.Fatal(err)
	}

	group := kafkatest.Prefix(t) + "group"
	newHandler := func(ctx context.Context, partition int) (*stream.Handler, error) {
		return stream.NewHandler(func(ctx context.Context, m kafka.Message) ([]stream.Output, error) {
			if _, err := strconv.Atoi(string(m.Value)); err != nil {
				return nil, stream.Reject(greenwavev1.RejectReason_REJECT_REASON_MALFORMED, "not a number: %q", m.Value)
			}
			return []stream.Output{{Topic: names.Features, Key: m.Key, Value: m.Value}}, nil
		}), nil
	}
	proc := stream.NewProcessor(stream.ProcessorConfig{
		Conn: kafkaConn, GroupID: group, Topic: names.Readings, DeadLetterTopic: names.DeadLetters, Service: "test", DeadLetter: wire.DeadLetter,
		SessionTimeout: 6 * time.Second,
	}, prod, newHandler, zaptest.NewLogger(t), stream.NewMetrics(prometheus.NewRegistry()))

	runCtx, stop := context.WithCancel(ctx)
	var g errgroup.Group
	g.Go(func() error { return proc.Run(runCtx) })

	outs := collect(ctx, t, kafkaConn, names.Features, partitions, n-n/10)
	dlq := collect(ctx, t, kafkaConn, names.DeadLetters, partitions, n/10)

	// Each key's outputs keep input order and land in the key's partition.
	lastByKey := map[string]int{}
	for _, m := range outs {
		v, _ := strconv.Atoi(string(m.Value))
		if prev, ok := lastByKey[string(m.Key)]; ok && v < prev {
			t.Errorf("key %s: %d after %d", m.Key, v, prev)
		}
		lastByKey[string(m.Key)] = v
		if want := stream.PartitionFor(string(m.Key), partitions); m.Partition != want {
			t.Errorf("key %s in partition %d, want %d", m.Key, m.Partition, want)
		}
	}
	for _, m := range dlq {
		var dl greenwavev1.DeadLetter
		if err := proto.Unmarshal(m.Value, &dl); err != nil {
			t.Fatal(err)
		}
		if dl.GetReason() != greenwavev1.RejectReason_REJECT_REASON_MALFORMED || string(dl.GetPayload()) != "bad" || dl.GetService() != "test" {
			t.Errorf("dead letter = %v", &dl)
		}
	}

	// Offsets are committed once the outputs are acknowledged: wait until all input is committed.
	client := kafkaConn.Client(0)
	for {
		offs, err := client.ConsumerOffsets(ctx, kafka.TopicAndGroup{Topic: names.Readings, GroupId: group})
		if err != nil {
			t.Fatal(err)
		}
		var total int64
		for _, o := range offs {
			if o > 0 {
				total += o
			}
		}
		if total == n {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("committed %d of %d offsets", total, n)
		case <-time.After(50 * time.Millisecond):
		}
	}
	stop()
	if err := g.Wait(); err != nil {
		t.Fatalf("Run() = %v", err)
	}
}

func TestEnsureTopicsIdempotent(t *testing.T) {
	t.Parallel()
	kafkaConn := kafkatest.Conn(t)
	names := topics.DefaultNames(kafkatest.Prefix(t))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for range 2 {
		if err := topics.EnsureTopics(ctx, kafkaConn, topics.Specs(names, 2)); err != nil {
			t.Fatal(err)
		}
	}
	// A co-partitioned topic with another count is refused.
	err := topics.EnsureTopics(ctx, kafkaConn, append(topics.Specs(names, 2), topics.Spec{Name: names.Readings + "x", Partitions: 3, CoPartitioned: true}))
	if err == nil {
		t.Fatal("EnsureTopics accepted co-partitioned topics with different partition counts")
	}
}

// countingHandler counts records; its state is the count, snapshotted at most once per interval.
type countingHandler struct {
	topic    string
	count    int
	interval time.Duration
}

func (h *countingHandler) Handle(context.Context, kafka.Message) ([]stream.Output, error) {
	h.count++
	return nil, nil
}

func (h *countingHandler) Checkpoint(context.Context) ([]stream.Output, error) {
	return []stream.Output{{Topic: h.topic, Key: []byte("count"), Value: []byte(strconv.Itoa(h.count))}}, nil
}

// handler is the stream handler of h: its checkpoint at most once per interval.
func (h *countingHandler) handler() *stream.Handler {
	return stream.NewHandler(h.Handle, stream.WithCheckpoint(h.Checkpoint), stream.WithCheckpointInterval(h.interval))
}

// TestDeferredCheckpointCommitsWhenIdle: a handler that checkpoints at most every interval still gets its state
// written and its offsets committed once input stops, and the state covers every committed record.
func TestDeferredCheckpointCommitsWhenIdle(t *testing.T) {
	t.Parallel()
	const n = 40
	kafkaConn, names := kafkatest.Setup(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	runUntilCommitted(ctx, t, kafkaConn, names, n, func() *stream.Handler {
		h := &countingHandler{topic: names.CleanerState, interval: 200 * time.Millisecond}
		return h.handler()
	})
	var last string
	if err := stream.ReadPartition(ctx, kafkaConn, names.CleanerState, 0, func(m kafka.Message) error { last = string(m.Value); return nil }); err != nil {
		t.Fatal(err)
	}
	if last != strconv.Itoa(n) {
		t.Errorf("last state snapshot = %q, want %d: offsets were committed past the state", last, n)
	}
}

// lagOf reads greenwave_consumer_lag_records for one partition from reg; ok is false when there is no series.
func lagOf(t *testing.T, reg *prometheus.Registry, group, topic, partition string) (float64, bool) {
	t.Helper()
	return gaugeOf(t, reg, stream.LagMetric, group, topic, partition)
}

// gaugeOf reads the gauge name of one partition from reg; ok is false when there is no series.
func gaugeOf(t *testing.T, reg *prometheus.Registry, name, group, topic, partition string) (float64, bool) {
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
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["group"] == group && labels["topic"] == topic && labels["partition"] == partition {
				return m.GetGauge().GetValue(), true
			}
		}
	}
	return 0, false
}

// TestProcessorReportsLag: the lag gauge shows the backlog of an assigned partition as soon as it is assigned
// (before the first record is handled), falls to 0 once everything is handled, and is removed when the
// processor stops.
func TestProcessorReportsLag(t *testing.T) {
	t.Parallel()
	const n = 10
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
	started, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	reg := prometheus.NewRegistry()
	proc := stream.NewProcessor(stream.ProcessorConfig{
		Conn: kafkaConn, GroupID: group, Topic: names.Readings, DeadLetterTopic: names.DeadLetters, Service: "test", DeadLetter: wire.DeadLetter,
		SessionTimeout: 6 * time.Second,
	}, prod, func(context.Context, int) (*stream.Handler, error) {
		return stream.NewHandler(func(ctx context.Context, m kafka.Message) ([]stream.Output, error) {
			once.Do(func() { close(started) })
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil, nil
		}), nil
	}, zaptest.NewLogger(t), stream.NewMetrics(reg))
	runCtx, stop := context.WithCancel(ctx)
	var g errgroup.Group
	g.Go(func() error { return proc.Run(runCtx) })

	select {
	case <-started:
	case <-ctx.Done():
		t.Fatal("no record handled")
	}
	if lag, ok := lagOf(t, reg, group, names.Readings, "0"); !ok || lag != n {
		t.Fatalf("lag while the first record is handled = %v (series %v), want %d", lag, ok, n)
	}
	if v, ok := gaugeOf(t, reg, stream.StateKeysMetric, group, names.Readings, "0"); ok {
		t.Errorf("a stateless handler exports a state size (%v keys)", v)
	}
	close(release)
	for {
		if lag, ok := lagOf(t, reg, group, names.Readings, "0"); ok && lag == 0 {
			break
		}
		select {
		case <-ctx.Done():
			lag, _ := lagOf(t, reg, group, names.Readings, "0")
			t.Fatalf("lag = %v after every record was handled, want 0", lag)
		case <-time.After(20 * time.Millisecond):
		}
	}
	stop()
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if lag, ok := lagOf(t, reg, group, names.Readings, "0"); ok {
		t.Errorf("lag series still exported (%v) after the processor stopped", lag)
	}
}

func TestInitialLag(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		committed, first, end, want int64
	}{
		{-1, 0, 10, 10}, // nothing committed: from the first offset
		{-1, 4, 10, 6},  // retention deleted the head
		{7, 0, 10, 3},   // committed
		{2, 5, 10, 5},   // committed offset deleted by retention
		{10, 0, 10, 0},  // caught up
		{-2, 0, 0, 0},   // empty partition
	} {
		if got := stream.InitialLag(tt.committed, tt.first, tt.end); got != tt.want {
			t.Errorf("InitialLag(%d, %d, %d) = %d, want %d", tt.committed, tt.first, tt.end, got, tt.want)
		}
	}
}

// decidingHandler counts records and checkpoints when the count passes a multiple of every (its "event time"),
// or after idle of silence.
type decidingHandler struct {
	countingHandler
	every, done int
	idle        time.Duration
}

func (h *decidingHandler) CheckpointDue(_ time.Time, idle time.Duration) bool {
	return h.count/h.every > h.done/h.every || (idle > 0 && idle >= h.idle)
}

func (h *decidingHandler) Checkpoint(ctx context.Context) ([]stream.Output, error) {
	h.done = h.count
	return h.countingHandler.Checkpoint(ctx)
}

// TestCheckpointDecider: a handler that decides its checkpoints (here every 10 records, as the trainer does on
// event time) gets at most one snapshot per decision plus one once input stops, never commits past its state,
// and ends with every record committed and covered.
func TestCheckpointDecider(t *testing.T) {
	t.Parallel()
	const n, every = 45, 10
	kafkaConn, names := kafkatest.Setup(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	runUntilCommitted(ctx, t, kafkaConn, names, n, func() *stream.Handler {
		h := &decidingHandler{countingHandler: countingHandler{topic: names.CleanerState, interval: 50 * time.Millisecond}, every: every, idle: 200 * time.Millisecond}
		return stream.NewHandler(h.Handle, stream.WithCheckpoint(h.Checkpoint), stream.WithCheckpointInterval(h.interval), stream.WithCheckpointDue(h.CheckpointDue))
	})
	var states []int
	if err := stream.ReadPartition(ctx, kafkaConn, names.CleanerState, 0, func(m kafka.Message) error {
		v, err := strconv.Atoi(string(m.Value))
		states = append(states, v)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(states) == 0 || states[len(states)-1] != n || len(states) > n/every+1 {
		t.Fatalf("state snapshots %v: want at most one per %d records and the last covering all %d", states, every, n)
	}
	for i := 1; i < len(states); i++ {
		if states[i]/every <= states[i-1]/every && states[i] != n {
			t.Fatalf("state snapshots %v: a checkpoint the handler did not ask for", states)
		}
	}
}

// runUntilCommitted runs a processor over names.Readings with handlers from newHandler (batches of 3), writes n
// records, and stops it once the group has committed all n.
func runUntilCommitted(ctx context.Context, t *testing.T, kafkaConn kafkaconn.Conn, names topics.Names, n int, newHandler func() *stream.Handler) {
	t.Helper()
	prod := stream.NewProducer(kafkaConn, stream.ProducerConfig{})
	defer prod.Close()
	group := kafkatest.Prefix(t) + "group"
	proc := stream.NewProcessor(stream.ProcessorConfig{
		Conn: kafkaConn, GroupID: group, Topic: names.Readings, DeadLetterTopic: names.DeadLetters, Service: "test", DeadLetter: wire.DeadLetter, MaxBatch: 3,
		SessionTimeout: 6 * time.Second,
	}, prod, func(context.Context, int) (*stream.Handler, error) {
		return newHandler(), nil
	}, zaptest.NewLogger(t), stream.NewMetrics(prometheus.NewRegistry()))
	runCtx, stop := context.WithCancel(ctx)
	var g errgroup.Group
	g.Go(func() error { return proc.Run(runCtx) })
	for i := range n {
		if err := prod.Write(ctx, stream.Output{Topic: names.Readings, Key: []byte("k"), Value: []byte(strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
	}
	client := kafkaConn.Client(0)
	for {
		offs, err := client.ConsumerOffsets(ctx, kafka.TopicAndGroup{Topic: names.Readings, GroupId: group})
		if err != nil {
			t.Fatal(err)
		}
		if offs[0] == int64(n) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("committed %d of %d", offs[0], n)
		case <-time.After(20 * time.Millisecond): // polling a deadline, not synchronisation
		}
	}
	stop()
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
}

// TestProcessorReportsStateSize: a handler's state size is exported once its partition is assigned (as
// restored), follows its checkpoints, and is removed when the processor stops; a stateless handler has none.
func TestProcessorReportsStateSize(t *testing.T) {
	t.Parallel()
	const n = 12
	conn, names := kafkatest.Setup(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	prod := stream.NewProducer(conn, stream.ProducerConfig{})
	defer prod.Close()
	for i := range n {
		if err := prod.Write(ctx, stream.Output{Topic: names.Readings, Key: []byte("k"), Value: []byte(strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
	}
	group := kafkatest.Prefix(t) + "group"
	reg := prometheus.NewRegistry()
	restored := make(chan struct{})
	proc := stream.NewProcessor(stream.ProcessorConfig{
		Conn: conn, GroupID: group, Topic: names.Readings, DeadLetterTopic: names.DeadLetters, Service: "test", DeadLetter: wire.DeadLetter,
		SessionTimeout: 6 * time.Second,
	}, prod, func(context.Context, int) (*stream.Handler, error) {
		h := &countingHandler{topic: names.CleanerState}
		first := true
		// The size is the count as of the last checkpoint: bytes grow with every record checkpointed, and the
		// first call (the restored state) is seen before any record is handled.
		checkpointed := 0
		return stream.NewHandler(func(ctx context.Context, m kafka.Message) ([]stream.Output, error) {
			if first {
				first = false
				select {
				case <-restored:
				case <-ctx.Done():
				}
			}
			return h.Handle(ctx, m)
		}, stream.WithCheckpoint(func(ctx context.Context) ([]stream.Output, error) {
			checkpointed = h.count
			return h.Checkpoint(ctx)
		}), stream.WithStateSize(func() stream.StateSize {
			return stream.StateSize{Keys: 1, Bytes: int64(checkpointed)}
		})), nil
	}, zaptest.NewLogger(t), stream.NewMetrics(reg))
	runCtx, stop := context.WithCancel(ctx)
	var g errgroup.Group
	g.Go(func() error { return proc.Run(runCtx) })

	waitGauge := func(name string, want float64) {
		t.Helper()
		for {
			if v, ok := gaugeOf(t, reg, name, group, names.Readings, "0"); ok && v == want {
				return
			}
			select {
			case <-ctx.Done():
				v, ok := gaugeOf(t, reg, name, group, names.Readings, "0")
				t.Fatalf("%s = %v (series %v), want %v", name, v, ok, want)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	waitGauge(stream.StateKeysMetric, 1)
	if v, ok := gaugeOf(t, reg, stream.StateBytesMetric, group, names.Readings, "0"); !ok || v != 0 {
		t.Fatalf("state bytes before any record = %v (series %v), want the restored 0", v, ok)
	}
	close(restored)
	waitGauge(stream.StateBytesMetric, n)
	stop()
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{stream.StateKeysMetric, stream.StateBytesMetric} {
		if v, ok := gaugeOf(t, reg, name, group, names.Readings, "0"); ok {
			t.Errorf("%s still exported (%v) after the processor stopped", name, v)
		}
	}
}
