package stack_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/stack"
	"github.com/greenwave-city/greenwave/pkg/kafkaconn"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/topics"
)

// startBroker starts an embedded broker with the Greenwave topics (one partition each) whose cleaner runs only
// when the test calls Clean, unless interval says otherwise.
func startBroker(t *testing.T, interval time.Duration) (*stack.Broker, topics.Names) {
	t.Helper()
	if interval == 0 {
		interval = time.Hour
	}
	t.Cleanup(closeIdle) // registered first, so it runs after the broker closed
	b, err := stack.StartBroker(stack.BrokerConfig{ParentDir: t.TempDir(), CleanerInterval: interval})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	})
	names := topics.DefaultNames("")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := topics.EnsureTopics(ctx, kafkaconn.Plaintext(b.Addrs()...), topics.Specs(names, 1)); err != nil {
		t.Fatal(err)
	}
	return b, names
}

// closeIdle closes the connections kafka-go's default transport (used by the writers, readers and admin
// requests here) keeps pooled for good, which the leak check would report.
func closeIdle() {
	if tr, ok := kafka.DefaultTransport.(*kafka.Transport); ok {
		tr.CloseIdleConnections()
	}
}

type rec struct {
	key, value string
	age        time.Duration // how long before now the record was written (its CreateTime)
}

// produce writes each batch with one produce request, so each becomes one record batch on the broker.
func produce(t *testing.T, kafkaConn kafkaconn.Conn, topic string, batches ...[]rec) {
	t.Helper()
	w := &kafka.Writer{Addr: kafkaConn.Addr(), Transport: kafkaConn.Transport(), Topic: topic, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond, BatchSize: 1000}
	defer w.Close()
	now := time.Now()
	for _, batch := range batches {
		msgs := make([]kafka.Message, len(batch))
		for i, r := range batch {
			msgs[i] = kafka.Message{Key: []byte(r.key), Value: []byte(r.value), Time: now.Add(-r.age)}
		}
		if err := w.WriteMessages(context.Background(), msgs...); err != nil {
			t.Fatalf("produce to %s: %v", topic, err)
		}
	}
}

// readAll returns a partition's records as "key=value", as a restore reads them, and its first offset.
func readAll(t *testing.T, kafkaConn kafkaconn.Conn, topic string) (records []string, first int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	first = -1
	err := stream.ReadPartition(ctx, kafkaConn, topic, 0, func(m kafka.Message) error {
		if first < 0 {
			first = m.Offset
		}
		records = append(records, string(m.Key)+"="+string(m.Value))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return records, first
}

func equal(a, b []string) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

// restore folds "key=value" records into the latest value per key, as a changelog restore does.
func restore(records []string) map[string]string {
	out := map[string]string{}
	for _, r := range records {
		k, v, _ := strings.Cut(r, "=")
		out[k] = v
	}
	return out
}

func TestBrokerCompactsToLatestRecordPerKey(t *testing.T) {
	t.Parallel()
	b, names := startBroker(t, 0)
	produce(t, kafkaconn.Plaintext(b.Addrs()...), names.CleanerState,
		[]rec{{key: "I-1", value: "v1"}, {key: "I-2", value: "v1"}, {key: "I-3", value: "v1"}},
		[]rec{{key: "I-1", value: "v2"}, {key: "I-2", value: "v2"}},
		[]rec{{key: "I-1", value: "v3"}},
		[]rec{{key: "I-2", value: "v3"}},
	)
	// Another compacted topic that has nothing to drop, and a delete topic whose records are all recent.
	produce(t, kafkaconn.Plaintext(b.Addrs()...), names.Models, []rec{{key: "m1", value: "a"}}, []rec{{key: "m2", value: "b"}})
	produce(t, kafkaconn.Plaintext(b.Addrs()...), names.Plans, []rec{{key: "I-1", value: "p1"}}, []rec{{key: "I-1", value: "p2"}})

	b.Clean()

	// Compaction keeps every key's latest record outside the last batch, and the last batch whole (like Kafka's
	// active segment), so I-2=v2 stays until a later run: a restore, reading in order, still ends at the latest.
	got, first := readAll(t, kafkaconn.Plaintext(b.Addrs()...), names.CleanerState)
	if want := []string{"I-3=v1", "I-2=v2", "I-1=v3", "I-2=v3"}; !equal(got, want) {
		t.Errorf("compacted state = %v, want %v", got, want)
	}
	if first != 2 {
		t.Errorf("first offset %d, want 2 (offsets 0 and 1 were superseded)", first)
	}
	if restored := restore(got); fmt.Sprint(restored) != "map[I-1:v3 I-2:v3 I-3:v1]" {
		t.Errorf("restored %v, want the latest value per key", restored)
	}
	if got, _ := readAll(t, kafkaconn.Plaintext(b.Addrs()...), names.Models); !equal(got, []string{"m1=a", "m2=b"}) {
		t.Errorf("models = %v, want both keys", got)
	}
	if got, _ := readAll(t, kafkaconn.Plaintext(b.Addrs()...), names.Plans); !equal(got, []string{"I-1=p1", "I-1=p2"}) {
		t.Errorf("plans (a delete topic) = %v, want every record", got)
	}

	// Writing after compaction continues at the next offset, and compacting again keeps the rule.
	produce(t, kafkaconn.Plaintext(b.Addrs()...), names.CleanerState, []rec{{key: "I-3", value: "v4"}})
	b.Clean()
	if got, _ := readAll(t, kafkaconn.Plaintext(b.Addrs()...), names.CleanerState); !equal(got, []string{"I-3=v1", "I-1=v3", "I-2=v3", "I-3=v4"}) {
		t.Errorf("after a second compaction: %v", got)
	}
}

func TestBrokerRetentionDropsOnlyExpiredRecords(t *testing.T) {
	t.Parallel()
	b, names := startBroker(t, 0)
	// Predictions keep 2 days; the first batch is 3 days old, the second 1 day, the third new.
	produce(t, kafkaconn.Plaintext(b.Addrs()...), names.Predictions,
		[]rec{{key: "I-1", value: "old1", age: 72 * time.Hour}, {key: "I-2", value: "old2", age: 72 * time.Hour}},
		[]rec{{key: "I-1", value: "day", age: 24 * time.Hour}},
		[]rec{{key: "I-1", value: "new"}},
	)
	// A compacted topic never expires by time, however old its latest records are.
	produce(t, kafkaconn.Plaintext(b.Addrs()...), names.Models, []rec{{key: "m1", value: "ancient", age: 400 * 24 * time.Hour}}, []rec{{key: "m2", value: "x"}})

	b.Clean()

	got, first := readAll(t, kafkaconn.Plaintext(b.Addrs()...), names.Predictions)
	if !equal(got, []string{"I-1=day", "I-1=new"}) || first != 2 {
		t.Errorf("predictions after retention = %v from offset %d, want the two records younger than 2 days from 2", got, first)
	}
	if got, _ := readAll(t, kafkaconn.Plaintext(b.Addrs()...), names.Models); !equal(got, []string{"m1=ancient", "m2=x"}) {
		t.Errorf("models = %v, want the old snapshot kept", got)
	}

	// A consumer whose committed offset now lies below the log start (the services' partition readers seek to
	// the committed offset) gets OFFSET_OUT_OF_RANGE, and kafka-go's reader resumes from the first offset.
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: b.Addrs(), Topic: names.Predictions, Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	if err := r.SetOffset(0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := r.FetchMessage(ctx)
	if err != nil {
		t.Fatalf("fetch from an offset below the log start: %v", err)
	}
	if m.Offset != 2 || string(m.Value) != "day" {
		t.Errorf("fetch from offset 0 gave offset %d %q, want offset 2 \"day\"", m.Offset, m.Value)
	}
}

// TestBrokerCleansByItself checks the periodic cleaner runs without Clean. It polls for the outcome with a
// deadline, since when a ticker fires is not observable otherwise.
func TestBrokerCleansByItself(t *testing.T) {
	t.Parallel()
	b, names := startBroker(t, 50*time.Millisecond)
	produce(t, kafkaconn.Plaintext(b.Addrs()...), names.SignalState, []rec{{key: "I-1", value: "v1"}}, []rec{{key: "I-1", value: "v2"}}, []rec{{key: "I-2", value: "v1"}})
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, _ := readAll(t, kafkaconn.Plaintext(b.Addrs()...), names.SignalState)
		if equal(got, []string{"I-1=v2", "I-2=v1"}) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not compacted within 30s: %v", got)
		}
		time.Sleep(50 * time.Millisecond) // polling a deadline, not synchronisation
	}
}

func TestBrokerDirectories(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	t.Cleanup(closeIdle)
	// A directory left by a process that is gone, and one of a live process (this test's parent).
	dead := 1 << 22 // above Linux's pid_max limit: never a live process
	if err := syscall.Kill(dead, 0); !errors.Is(err, syscall.ESRCH) {
		t.Skipf("pid %d: %v", dead, err)
	}
	stale := filepath.Join(parent, strconv.Itoa(dead)+"-123")
	live := filepath.Join(parent, strconv.Itoa(os.Getppid())+"-456")
	for _, d := range []string{stale, live} {
		if err := os.MkdirAll(filepath.Join(d, "x"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b, err := stack.StartBroker(stack.BrokerConfig{ParentDir: parent})
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(b.Dir()) != parent {
		t.Errorf("log directory %s not in %s", b.Dir(), parent)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale directory of a dead process kept: %v", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("directory of a live process removed: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := topics.EnsureTopics(ctx, kafkaconn.Plaintext(b.Addrs()...), topics.Specs(topics.DefaultNames(""), 1)); err != nil {
		t.Fatal(err)
	}
	produce(t, kafkaconn.Plaintext(b.Addrs()...), "greenwave.readings.raw", []rec{{key: "I-1", value: "r"}})
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(b.Dir()); !os.IsNotExist(err) {
		t.Errorf("log directory left after Close: %v", err)
	}
}

// BenchmarkBrokerClean measures one cleaner run over a compacted topic shaped like the full SCATS replay's models
// topic (139 approaches × 3 horizons = 417 keys, one partition) after every key was written again: the broker
// answers no request while it runs.
func BenchmarkBrokerClean(b *testing.B) {
	for _, size := range []int{16 << 10, 175 << 10} {
		b.Run(fmt.Sprintf("value=%dKB", size>>10), func(b *testing.B) {
			br, err := stack.StartBroker(stack.BrokerConfig{ParentDir: b.TempDir(), CleanerInterval: time.Hour})
			if err != nil {
				b.Fatal(err)
			}
			defer closeIdle()
			defer br.Close()
			names := topics.DefaultNames("")
			ctx := context.Background()
			if err := topics.EnsureTopics(ctx, kafkaconn.Plaintext(br.Addrs()...), topics.Specs(names, 1)); err != nil {
				b.Fatal(err)
			}
			per := max(1, (900<<10)/size) // records per produce request, under the broker's 1 MB batch limit
			w := &kafka.Writer{Addr: kafka.TCP(br.Addrs()...), Topic: names.Models, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond, BatchSize: per}
			defer w.Close()
			value := make([]byte, size)
			msgs := make([]kafka.Message, 417)
			for i := range msgs {
				msgs[i] = kafka.Message{Key: []byte(fmt.Sprintf("I-%d/A/%d/flow", i/3, i%3)), Value: value}
			}
			write := func() {
				for i := 0; i < len(msgs); i += per {
					if err := w.WriteMessages(ctx, msgs[i:min(i+per, len(msgs))]...); err != nil {
						b.Fatal(err)
					}
				}
			}
			write()
			b.SetBytes(int64(2 * len(msgs) * size))
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				write()
				b.StartTimer()
				br.Clean()
			}
		})
	}
}
