// Package kafkatest gives each test its own Kafka: a fresh in-process kfake cluster, or — when KAFKA_BROKERS is
// set (`make test-kafka`) — the real broker with topic names unique to the test. The same tests run on both. The
// real broker's security (KAFKA_TLS*, KAFKA_SASL_*, as kafka.sh exports them for its SASL_SSL listener) is read
// from the environment like the services read it.
package kafkatest

import (
	"context"
	"fmt"
	"maps"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/greenwave-city/greenwave/pkg/config"
	"github.com/greenwave-city/greenwave/pkg/kafkaconn"
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

// Conn returns the connection to this test's Kafka: the real broker (KAFKA_BROKERS and its security from the
// environment) when KAFKA_BROKERS is set, otherwise a new kfake cluster that is closed when the test ends.
func Conn(t testing.TB) kafkaconn.Conn {
	t.Helper()
	if Real() {
		c, err := realConn()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c, addrs, err := NewCluster()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return kafkaconn.Plaintext(addrs...)
}

// realConn is the real broker's connection, made once so every test shares its transport.
var realConn = sync.OnceValues(func() (kafkaconn.Conn, error) {
	var s kafkaconn.Settings
	if err := config.Load(&s, nil); err != nil {
		return kafkaconn.Conn{}, fmt.Errorf("real broker settings: %w", err)
	}
	return s.Conn()
})

// SecurityEnv returns the KAFKA_* security variables of the environment (empty for kfake), for tests that run
// a service in-process with an environment map of their own.
func SecurityEnv() map[string]string {
	out := map[string]string{}
	if !Real() {
		return out
	}
	for _, v := range config.Describe(&kafkaconn.Settings{}) {
		if val, ok := os.LookupEnv(v.Name); ok && v.Name != EnvBrokers {
			out[v.Name] = val
		}
	}
	return out
}

// ServiceEnv returns env with KAFKA_BROKERS and the security variables of conn's Kafka added.
func ServiceEnv(conn kafkaconn.Conn, env map[string]string) map[string]string {
	out := map[string]string{EnvBrokers: strings.Join(conn.Brokers, ",")}
	maps.Copy(out, SecurityEnv())
	maps.Copy(out, env)
	return out
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

// Setup returns the connection and freshly created, uniquely named Greenwave topics with the given partition
// count.
func Setup(t testing.TB, partitions int) (kafkaconn.Conn, topics.Names) {
	t.Helper()
	brokers := Conn(t)
	names := topics.DefaultNames(Prefix(t))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := topics.EnsureTopics(ctx, brokers, topics.Specs(names, partitions)); err != nil {
		t.Fatalf("ensure topics: %v", err)
	}
	return brokers, names
}
