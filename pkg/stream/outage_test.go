package stream_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap/zaptest"
	"golang.org/x/sync/errgroup"

	"github.com/greenwave-city/greenwave/pkg/kafkaconn"
	"github.com/greenwave-city/greenwave/pkg/kafkatest"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/topics"
	"github.com/greenwave-city/greenwave/pkg/wire"
)

// outageSetup starts a restartable broker with topics of the given partition count and returns a connection
// reporting to a fresh Health (short backoff) and the registry its metrics are in.
func outageSetup(t *testing.T, partitions int) (kafkaconn.Conn, *kafkatest.Outage, *kafkaconn.Health, *prometheus.Registry, topics.Names) {
	t.Helper()
	if kafkatest.Real() {
		t.Skip("outages are simulated on the embedded broker only")
	}
	cluster, outage, addrs, err := kafkatest.NewRestartableCluster()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	reg := prometheus.NewRegistry()
	health := kafkaconn.NewHealth(reg).WithBackoff(kafkaconn.Backoff{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond})
	conn := kafkaconn.Plaintext(addrs...).WithHealth(health)
	names := topics.DefaultNames(kafkatest.Prefix(t))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := topics.EnsureTopics(ctx, conn, topics.Specs(names, partitions)); err != nil {
		t.Fatal(err)
	}
	return conn, outage, health, reg, names
}

// waitFor polls cond until it holds or ctx ends: the condition is the synchronisation, the poll interval only
// bounds how late it is seen.
func waitFor(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-tick.C:
		}
	}
}

func writeNumbered(ctx context.Context, t *testing.T, conn kafkaconn.Conn, topic string, from, to int) {
	t.Helper()
	prod := stream.NewProducer(conn, stream.ProducerConfig{})
	defer prod.Close()
	var outs []stream.Output
	for i := from; i < to; i++ {
		outs = append(outs, stream.Output{Topic: topic, Key: []byte(fmt.Sprintf("I-%d", i%5)), Value: []byte(strconv.Itoa(i)), EventID: strconv.Itoa(i)})
	}
	if err := prod.Write(ctx, outs...); err != nil {
		t.Fatal(err)
	}
}

// checkExactlyOnceInOrder checks that got holds the values 0..n-1 once each, and each key's in increasing order.
func checkExactlyOnceInOrder(t *testing.T, got []kafka.Message, n int) {
	t.Helper()
	seen := map[int]int{}
	last := map[string]int{}
	for _, m := range got {
		v, err := strconv.Atoi(string(m.Value))
		if err != nil {
			t.Fatalf("value %q", m.Value)
		}
		seen[v]++
		if prev, ok := last[string(m.Key)]; ok && v <= prev {
			t.Errorf("key %s: %d after %d", m.Key, v, prev)
		}
		last[string(m.Key)] = v
	}
	for i := range n {
		if seen[i] != 1 {
			t.Errorf("record %d delivered %d times, want once", i, seen[i])
		}
	}
	if len(got) != n {
		t.Errorf("%d records delivered, want %d", len(got), n)
	}
}

// TestFollowRidesOutBrokerOutage: a broker that goes away while Follow reads makes it wait, marked unreachable
// in the Health (readiness false), and when the broker is back it goes on: every record, written before or after
// the outage, is delivered once and in order, and Follow never returns on its own.
func TestFollowRidesOutBrokerOutage(t *testing.T) {
	t.Parallel()
	const partitions, before, after = 2, 20, 30
	conn, outage, health, _, names := outageSetup(t, partitions)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topic := names.Features
	writeNumbered(ctx, t, conn, topic, 0, before)

	var (
		mu  sync.Mutex
		got []kafka.Message
	)
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(got) }
	followCtx, stop := context.WithCancel(ctx)
	defer stop()
	var g errgroup.Group
	g.Go(func() error {
		return stream.Follow(followCtx, conn, topic, partitions, func(m kafka.Message) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, m)
			return nil
		}, nil)
	})
	waitFor(ctx, t, "the records before the outage", func() bool { return count() == before })

	outage.Stop()
	waitFor(ctx, t, "Follow to report the broker unreachable", func() bool { return health.ReadyCheck() != nil })
	if err := outage.Start(); err != nil {
		t.Fatal(err)
	}
	writeNumbered(ctx, t, conn, topic, before, before+after)
	waitFor(ctx, t, "the records after the outage", func() bool { return count() >= before+after })
	waitFor(ctx, t, "readiness to come back", func() bool { return health.ReadyCheck() == nil })
	stop()
	if err := g.Wait(); err != nil {
		t.Fatalf("Follow: %v", err)
	}
	mu.Lock()
	checkExactlyOnceInOrder(t, got, before+after)
	mu.Unlock()
	if n := testutil.ToFloat64(health.RetriesCounter("follow " + topic)); n == 0 {
		t.Error("no retry counted for the follower")
	}
}

// TestReadPartitionWaitsForBroker: a restore started while the broker is down waits for it, then reads every
// record once, in order.
func TestReadPartitionWaitsForBroker(t *testing.T) {
	t.Parallel()
	const n = 40
	conn, outage, health, _, names := outageSetup(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topic := names.CleanerState
	writeNumbered(ctx, t, conn, topic, 0, n)

	outage.Stop()
	var got []kafka.Message
	var g errgroup.Group
	g.Go(func() error {
		return stream.ReadPartition(ctx, conn, topic, 0, func(m kafka.Message) error {
			got = append(got, m)
			return nil
		})
	})
	waitFor(ctx, t, "the restore to report the broker unreachable", func() bool { return health.ReadyCheck() != nil })
	if err := outage.Start(); err != nil {
		t.Fatal(err)
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("ReadPartition: %v", err)
	}
	checkExactlyOnceInOrder(t, got, n)
	if err := health.ReadyCheck(); err != nil {
		t.Errorf("readiness after the restore: %v", err)
	}
}

// TestProcessorRidesOutBrokerOutage: the consume → produce → commit loop waits through a broker outage instead
// of failing, and afterwards every input has its output (replays after the outage carry the same event id, so a
// consumer dropping replays sees each once, in each key's order) and every offset is committed.
func TestProcessorRidesOutBrokerOutage(t *testing.T) {
	t.Parallel()
	const partitions, before, after = 2, 30, 30
	conn, outage, health, _, names := outageSetup(t, partitions)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	writeNumbered(ctx, t, conn, names.Readings, 0, before)

	prod := stream.NewProducer(conn, stream.ProducerConfig{WriteTimeout: 2 * time.Second})
	defer prod.Close()
	var handled sync.Map
	proc := stream.NewProcessor(stream.ProcessorConfig{
		Conn: conn, GroupID: names.Readings + ".group", Topic: names.Readings, DeadLetterTopic: names.DeadLetters, Service: "test",
		DeadLetter: wire.DeadLetter, SessionTimeout: 3 * time.Second,
	}, prod, func(context.Context, int) (*stream.Handler, error) {
		return stream.NewHandler(func(_ context.Context, m kafka.Message) ([]stream.Output, error) {
			handled.Store(string(m.Value), true)
			return []stream.Output{{Topic: names.Features, Key: m.Key, Value: m.Value, EventID: string(m.Value)}}, nil
		}), nil
	}, zaptest.NewLogger(t), stream.NewMetrics(prometheus.NewRegistry()))
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	runErr := make(chan error, 1)
	go func() { runErr <- proc.Run(runCtx) }()
	handledCount := func() int {
		n := 0
		handled.Range(func(any, any) bool { n++; return true })
		return n
	}
	waitFor(ctx, t, "the records before the outage to be handled", func() bool { return handledCount() == before })

	outage.Stop()
	waitFor(ctx, t, "the processor to report the broker unreachable", func() bool { return health.ReadyCheck() != nil })
	if err := outage.Start(); err != nil {
		t.Fatal(err)
	}
	writeNumbered(ctx, t, conn, names.Readings, before, before+after)
	waitFor(ctx, t, "the records after the outage to be handled", func() bool { return handledCount() == before+after })

	// Outputs, deduplicated by event id as consumers do, are every input once, in each key's order.
	var (
		mu   sync.Mutex
		outs []kafka.Message
		ids  = map[string]bool{}
	)
	followCtx, endFollow := context.WithCancel(ctx)
	err := stream.Follow(followCtx, conn, names.Features, partitions, func(m kafka.Message) error {
		mu.Lock()
		defer mu.Unlock()
		id := string(stream.Header(m, stream.HeaderEventID))
		if !ids[id] {
			ids[id] = true
			outs = append(outs, m)
		}
		if len(ids) == before+after {
			endFollow()
		}
		return nil
	}, nil)
	endFollow()
	if err != nil {
		t.Fatal(err)
	}
	checkExactlyOnceInOrder(t, outs, before+after)

	// Every offset is committed in the end.
	waitFor(ctx, t, "every offset committed", func() bool {
		committed, err := committedOffsets(ctx, conn, names.Readings+".group", names.Readings, partitions)
		if err != nil {
			return false
		}
		total := int64(0)
		for _, o := range committed {
			total += o
		}
		return total == before+after
	})
	select {
	case err := <-runErr:
		t.Fatalf("processor returned during the test: %v", err)
	default:
	}
	waitFor(ctx, t, "readiness to come back", func() bool { return health.ReadyCheck() == nil })
	stop()
	if err := <-runErr; err != nil {
		t.Fatalf("processor: %v", err)
	}
	if n := testutil.ToFloat64(health.RetriesCounter("processor "+names.Readings)) + testutil.ToFloat64(health.RetriesCounter("consumer-group "+names.Readings)); n == 0 {
		t.Error("no retry counted for the processor")
	}
}

// committedOffsets returns the group's committed offset of each partition of topic.
func committedOffsets(ctx context.Context, conn kafkaconn.Conn, group, topic string, partitions int) (map[int]int64, error) {
	parts := make([]int, partitions)
	for i := range parts {
		parts[i] = i
	}
	resp, err := conn.Client(5*time.Second).OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
	if err != nil {
		return nil, err
	}
	out := map[int]int64{}
	for _, p := range resp.Topics[topic] {
		if p.Error != nil {
			return nil, p.Error
		}
		out[p.Partition] = max(p.CommittedOffset, 0)
	}
	return out, nil
}

// TestProducerFinalFailures proves the collector's guarantee: with FinalFailures, what Write answers agrees with
// the log — a Write that failed left no record written, even when the broker recovers while kafka-go would still
// have been retrying, and a Write whose caller gave up waits for kafka-go's verdict. Without FinalFailures, a
// Write whose ctx ends answers failure at once while kafka-go's writer keeps the batch and writes it when the
// broker recovers: the late write the gateway saw. The broker refuses produce requests (NOT_LEADER, a retriable
// error) until the test lets it accept them.
func TestProducerFinalFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		final       bool
		giveUp      bool // the caller's ctx ends after the first refused attempt, then the broker recovers
		wantErr     bool
		wantWritten bool
	}{
		{name: "final: attempts run out", final: true, wantErr: true, wantWritten: false},
		{name: "final: caller gives up, broker recovers", final: true, giveUp: true, wantErr: false, wantWritten: true},
		{name: "kafka-go default: late write", final: false, giveUp: true, wantErr: true, wantWritten: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if kafkatest.Real() {
				t.Skip("needs the embedded broker's request control")
			}
			cluster, addrs, err := kafkatest.NewCluster()
			if err != nil {
				t.Fatal(err)
			}
			defer cluster.Close()
			health := kafkaconn.NewHealth(prometheus.NewRegistry())
			conn := kafkaconn.Plaintext(addrs...).WithHealth(health)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			const topic = "greenwave.weather.raw"
			if err := topics.EnsureTopics(ctx, conn, []topics.Spec{{Name: topic, Partitions: 1}}); err != nil {
				t.Fatal(err)
			}
			attempts := 3
			if tc.giveUp {
				attempts = 50 // still retrying when the broker recovers
			}
			prod := stream.NewProducer(conn, stream.ProducerConfig{FinalFailures: tc.final, MaxAttempts: attempts, WriteTimeout: 5 * time.Second, Component: "producer"})
			// Warm up so the batch below meets a known partition leader.
			if err := prod.Write(ctx, stream.Output{Topic: topic, Key: []byte("S-1"), Value: []byte("before"), EventID: "before"}); err != nil {
				t.Fatal(err)
			}

			var refusing atomic.Bool
			refusing.Store(true)
			attempted := make(chan struct{})
			var once sync.Once
			cluster.ControlKey(int16(kmsg.Produce), func(r kmsg.Request) (kmsg.Response, error, bool) {
				cluster.KeepControl()
				if !refusing.Load() {
					return nil, nil, false
				}
				once.Do(func() { close(attempted) })
				req := r.(*kmsg.ProduceRequest)
				resp := req.ResponseKind().(*kmsg.ProduceResponse)
				for _, rt := range req.Topics {
					st := kmsg.NewProduceResponseTopic()
					st.Topic = rt.Topic
					for _, rp := range rt.Partitions {
						sp := kmsg.NewProduceResponseTopicPartition()
						sp.Partition = rp.Partition
						sp.ErrorCode = kerr.NotLeaderForPartition.Code
						st.Partitions = append(st.Partitions, sp)
					}
					resp.Topics = append(resp.Topics, st)
				}
				return resp, nil, true
			})

			wctx, giveUp := context.WithCancel(ctx)
			defer giveUp()
			errc := make(chan error, 1)
			go func() {
				errc <- prod.Write(wctx, stream.Output{Topic: topic, Key: []byte("S-1"), Value: []byte("batch"), EventID: "batch"})
			}()
			<-attempted
			var werr error
			if tc.giveUp {
				giveUp()
				if !tc.final {
					werr = <-errc // answered at once, while kafka-go keeps the batch
				}
				refusing.Store(false)
				if tc.final {
					werr = <-errc
				}
			} else {
				werr = <-errc
				if health.ReadyCheck() == nil {
					t.Error("the producer's failure left readiness passing")
				}
				refusing.Store(false)
			}
			if (werr != nil) != tc.wantErr {
				t.Errorf("Write = %v, want error %v", werr, tc.wantErr)
			}
			// Close waits until kafka-go is done with every batch it holds: after it, nothing more is written.
			if err := prod.Close(); err != nil {
				t.Fatal(err)
			}
			var values []string
			if err := stream.ReadPartition(ctx, conn, topic, 0, func(m kafka.Message) error {
				values = append(values, string(m.Value))
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			written := slices.Contains(values, "batch")
			if written != tc.wantWritten {
				t.Errorf("records %v: batch written = %v, want %v", values, written, tc.wantWritten)
			}
			if tc.final && (werr != nil) == written {
				t.Errorf("the answer (%v) disagrees with the log (written %v)", werr, written)
			}
		})
	}
}
