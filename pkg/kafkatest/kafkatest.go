// Package kafkatest gives each test its own Kafka: a fresh in-process kfake cluster, or — when KAFKA_BROKERS is
// set (`make test-kafka`) — the real broker with topic names unique to the test. The same tests run on both.
package kafkatest

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/greenwave-city/greenwave/pkg/topics"
)

// EnvBrokers names the environment variable that switches tests to a real Kafka cluster.
const EnvBrokers = "KAFKA_BROKERS"

// Real reports whether tests run against a real broker.
func Real() bool { return os.Getenv(EnvBrokers) != "" }

// NewCluster starts an in-process kfake broker suitable for Greenwave (explicit topic creation, short group
// session timeouts so a killed consumer is noticed quickly) and returns it with its bootstrap addresses.
func NewCluster(opts ...kfake.Opt) (*kfake.Cluster, []string, error) {
	base := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.GroupMinSessionTimeout(100 * time.Millisecond),
	}
	c, err := kfake.NewCluster(append(base, opts...)...)
	if err != nil {
		return nil, nil, fmt.Errorf("start kfake cluster: %w", err)
	}
	return c, c.ListenAddrs(), nil
}

// Brokers returns the bootstrap addresses of this test's Kafka: KAFKA_BROKERS when set, otherwise a new kfake
// cluster that is closed when the test ends.
func Brokers(t testing.TB) []string {
	t.Helper()
	if v := os.Getenv(EnvBrokers); v != "" {
		return strings.Split(v, ",")
	}
	c, addrs, err := NewCluster()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return addrs
}

var seq atomic.Int64

var unsafeChars = regexp.MustCompile(`[^a-zA-Z0-9_-]+`)

// Prefix returns a topic/group prefix unique to this test run, so tests sharing a real broker never collide.
func Prefix(t testing.TB) string {
	name := unsafeChars.ReplaceAllString(t.Name(), "_")
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	return fmt.Sprintf("t%d-%d-%s.", time.Now().UnixNano()%1e9, seq.Add(1), name)
}

// Setup returns brokers and freshly created, uniquely named Greenwave topics with the given partition count.
func Setup(t testing.TB, partitions int) ([]string, topics.Names) {
	t.Helper()
	brokers := Brokers(t)
	names := topics.DefaultNames(Prefix(t))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := topics.EnsureTopics(ctx, brokers, topics.Specs(names, partitions)); err != nil {
		t.Fatalf("ensure topics: %v", err)
	}
	return brokers, names
}
