// Command kafkawait blocks until a Kafka broker answers a metadata request.
//
// deploy/kafka/kafka.sh runs it after starting the test broker, so "ready" means the
// broker speaks the Kafka protocol and lists itself in the metadata, not merely that
// its TCP port is open:
//
//	go run ./pkg/kafkatest/kafkawait -brokers 127.0.0.1:9092 -timeout 90s
//
// With -roundtrip it additionally creates a throwaway topic, writes a few records,
// reads them back (partition reader and consumer group) and deletes the topic: a
// smoke test of the broker through segmentio/kafka-go.
//
// With -pid it stops waiting as soon as that process (the broker) has exited.
//
// The connection's security comes from the services' KAFKA_TLS* and KAFKA_SASL_* variables (kafka.sh sets them
// for its SASL_SSL listener); an authentication or certificate failure ends the wait at once.
//
// Exit status: 0 when ready (and the round trip succeeded), 1 otherwise, with the
// reason on stderr.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/greenwave-city/greenwave/pkg/config"
	"github.com/greenwave-city/greenwave/pkg/kafkaconn"
)

func main() {
	brokers := flag.String("brokers", os.Getenv("KAFKA_BROKERS"), "bootstrap address host:port (default $KAFKA_BROKERS)")
	timeout := flag.Duration("timeout", 90*time.Second, "give up after this long")
	interval := flag.Duration("interval", 250*time.Millisecond, "pause between attempts")
	roundtrip := flag.Bool("roundtrip", false, "after readiness, create a topic, produce, consume and delete it")
	quiet := flag.Bool("q", false, "print nothing on success")
	pid := flag.Int("pid", 0, "give up early if this process (the broker) exits")
	flag.Parse()

	addr := firstAddr(*brokers)
	if addr == "" {
		fail("kafkawait: no broker address: pass -brokers host:port or set KAFKA_BROKERS")
	}
	var settings kafkaconn.Settings
	if err := config.Load(&settings, nil); err != nil {
		fail("kafkawait: " + err.Error())
	}
	settings.Brokers = []string{addr}
	conn, err := settings.Conn()
	if err != nil {
		fail("kafkawait: " + err.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	start := time.Now()
	md, err := waitMetadata(ctx, conn, *interval, *pid)
	if err != nil {
		fail(fmt.Sprintf("kafkawait: broker %s did not answer a metadata request: %v", addr, err))
	}
	if !*quiet {
		fmt.Fprintf(os.Stderr, "kafkawait: %s ready after %s (cluster %s, %d broker(s), controller %d)\n",
			addr, time.Since(start).Round(time.Millisecond), md.ClusterID, len(md.Brokers), md.Controller.ID)
	}

	if *roundtrip {
		if err := roundTrip(ctx, conn); err != nil {
			fail("kafkawait: round trip against " + addr + " failed: " + err.Error())
		}
		if !*quiet {
			fmt.Fprintf(os.Stderr, "kafkawait: round trip OK\n")
		}
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, msg)
	os.Exit(1)
}

// firstAddr returns the first entry of a comma-separated broker list.
func firstAddr(list string) string {
	for _, a := range strings.Split(list, ",") {
		if a = strings.TrimSpace(a); a != "" {
			return a
		}
	}
	return ""
}

// waitMetadata retries a Metadata request until the broker answers with itself in the
// broker list, or ctx ends. It returns the last error on timeout.
func waitMetadata(ctx context.Context, conn kafkaconn.Conn, interval time.Duration, pid int) (*kafka.MetadataResponse, error) {
	start := time.Now()
	var last error
	for {
		md, err := metadataOnce(ctx, conn)
		if err == nil {
			return md, nil
		}
		if fatal := conn.Classify(err); fatal != nil {
			return nil, fatal
		}
		last = err
		if pid > 0 && !alive(pid) {
			return nil, fmt.Errorf("process %d exited before the broker answered (last error: %w)", pid, last)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("gave up after %s: %w", time.Since(start).Round(time.Second), last)
		case <-time.After(interval):
		}
	}
}

func metadataOnce(ctx context.Context, conn kafkaconn.Conn) (*kafka.MetadataResponse, error) {
	// A fresh transport per attempt: no cached connection or ApiVersions state survives
	// a failed attempt against a broker that is still starting.
	tr := conn.NewTransport(2 * time.Second)
	tr.MetadataTTL = time.Second
	defer tr.CloseIdleConnections()
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c := &kafka.Client{Addr: conn.Addr(), Transport: tr}
	md, err := c.Metadata(actx, &kafka.MetadataRequest{})
	if err != nil {
		return nil, err
	}
	if len(md.Brokers) == 0 {
		return nil, errors.New("metadata response lists no brokers yet")
	}
	return md, nil
}

func roundTrip(ctx context.Context, conn kafkaconn.Conn) error {
	topic := fmt.Sprintf("kafkawait-roundtrip-%d", time.Now().UnixNano())
	client := conn.Client(10 * time.Second)

	ct, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: topic, NumPartitions: 1, ReplicationFactor: 1,
	}}})
	if err != nil {
		return fmt.Errorf("create topic: %w", err)
	}
	if err := ct.Errors[topic]; err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = client.DeleteTopics(dctx, &kafka.DeleteTopicsRequest{Topics: []string{topic}})
	}()

	want := []string{"one", "two", "three"}
	w := &kafka.Writer{
		Addr: conn.Addr(), Transport: conn.Transport(), Topic: topic, RequiredAcks: kafka.RequireAll,
		BatchTimeout: 10 * time.Millisecond, AllowAutoTopicCreation: false,
	}
	msgs := make([]kafka.Message, len(want))
	for i, v := range want {
		msgs[i] = kafka.Message{Key: []byte(fmt.Sprint(i)), Value: []byte(v)}
	}
	// The new topic's leader may need a moment to appear in the writer's metadata.
	for {
		err = w.WriteMessages(ctx, msgs...)
		if err == nil || ctx.Err() != nil || !isRetriable(err) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	_ = w.Close()
	if err != nil {
		return fmt.Errorf("produce: %w", err)
	}

	// Partition reader (Fetch/ListOffsets), then a consumer-group reader
	// (FindCoordinator/JoinGroup/SyncGroup/Heartbeat/OffsetCommit).
	readers := map[string]kafka.ReaderConfig{
		"partition reader": {Brokers: conn.Brokers, Dialer: conn.Dialer(), Topic: topic, Partition: 0, MaxWait: 200 * time.Millisecond},
		"group reader": {Brokers: conn.Brokers, Dialer: conn.Dialer(), Topic: topic, GroupID: topic + "-group",
			StartOffset: kafka.FirstOffset, MaxWait: 200 * time.Millisecond},
	}
	for _, name := range []string{"partition reader", "group reader"} {
		if err := readAll(ctx, name, kafka.NewReader(readers[name]), want); err != nil {
			return err
		}
	}
	return nil
}

func readAll(ctx context.Context, name string, r *kafka.Reader, want []string) error {
	defer r.Close()
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for i, v := range want {
		m, err := r.FetchMessage(rctx)
		if err != nil {
			return fmt.Errorf("%s: message %d: %w", name, i, err)
		}
		if string(m.Value) != v {
			return fmt.Errorf("%s: message %d = %q, want %q", name, i, m.Value, v)
		}
		if r.Config().GroupID != "" {
			if err := r.CommitMessages(rctx, m); err != nil {
				return fmt.Errorf("%s: commit: %w", name, err)
			}
		}
	}
	return nil
}

func isRetriable(err error) bool {
	var ke kafka.Error
	if errors.As(err, &ke) {
		return ke.Temporary()
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// alive reports whether process pid still exists (signal 0 probe; EPERM means it exists).
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
