// Package topics declares every Kafka topic Greenwave uses, once, and creates them explicitly.
//
// Topics after the collector are keyed by intersection id and co-partitioned: they all have the same partition
// count, so the state a service keeps for an intersection (in a changelog topic) lives in the partition with the
// same number as its input. EnsureTopics refuses to run against co-partitioned topics whose counts differ.
package topics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/greenwave-city/greenwave/pkg/kafkaconn"
)

// Names holds the concrete topic names; a prefix lets tests and several deployments share a cluster.
type Names struct {
	Readings       string
	Weather        string
	Features       string
	DeadLetters    string
	Models         string
	Predictions    string
	Plans          string
	DetectorHealth string
	Overrides      string
	CleanerState   string
	SignalState    string
	TrainerState   string
}

// DefaultNames returns the standard names ("greenwave.readings.raw", ...), each prefixed by prefix.
func DefaultNames(prefix string) Names {
	return Names{
		Readings:       prefix + "greenwave.readings.raw",
		Weather:        prefix + "greenwave.weather.raw",
		Features:       prefix + "greenwave.features",
		DeadLetters:    prefix + "greenwave.readings.dlq",
		Models:         prefix + "greenwave.models",
		Predictions:    prefix + "greenwave.predictions",
		Plans:          prefix + "greenwave.signal-plans",
		DetectorHealth: prefix + "greenwave.detector-health",
		Overrides:      prefix + "greenwave.overrides",
		CleanerState:   prefix + "greenwave.cleaner.state",
		SignalState:    prefix + "greenwave.signal-control.state",
		TrainerState:   prefix + "greenwave.trainer.state",
	}
}

// Spec is how one topic is created.
type Spec struct {
	Name string
	// Partitions is the partition count; co-partitioned topics share one.
	Partitions int
	// CoPartitioned topics are keyed by intersection id and must all have the same partition count.
	CoPartitioned bool
	// Compact selects log compaction (latest value per key) instead of time-based deletion.
	Compact bool
	// Retention applies to deleting topics; zero keeps the broker default. Compacted topics never expire by time.
	Retention time.Duration
	// Payload describes what an internal state topic carries. The payloads of the other topics are declared
	// with their protobuf messages in pkg/wire, whose Specs fills them in for tools that decode topics.
	Payload string
}

// Specs returns the specs of every topic, with partitions as the co-partitioned count.
func Specs(n Names, partitions int) []Spec {
	const day = 24 * time.Hour
	return []Spec{
		{Name: n.Readings, Partitions: partitions, CoPartitioned: true, Retention: 7 * day},
		// Weather is read whole by every cleaner instance (a global table), so its partitioning is free.
		{Name: n.Weather, Partitions: 1, Retention: 7 * day},
		{Name: n.Features, Partitions: partitions, CoPartitioned: true, Retention: 7 * day},
		{Name: n.DeadLetters, Partitions: partitions, CoPartitioned: true, Retention: 30 * day},
		{Name: n.Models, Partitions: partitions, CoPartitioned: true, Compact: true},
		{Name: n.Predictions, Partitions: partitions, CoPartitioned: true, Retention: 2 * day},
		{Name: n.Plans, Partitions: partitions, CoPartitioned: true, Retention: 30 * day},
		{Name: n.DetectorHealth, Partitions: partitions, CoPartitioned: true, Retention: 7 * day},
		{Name: n.Overrides, Partitions: partitions, CoPartitioned: true, Retention: 365 * day},
		{Name: n.CleanerState, Partitions: partitions, CoPartitioned: true, Compact: true, Payload: "cleaner state (internal)"},
		{Name: n.SignalState, Partitions: partitions, CoPartitioned: true, Compact: true, Payload: "signal-control state (internal)"},
		// The trainer's changelog: complete model snapshots (greenwave.v1.ModelSnapshot, deflated), from which it
		// restores; greenwave.models carries their served form.
		{Name: n.TrainerState, Partitions: partitions, CoPartitioned: true, Compact: true, Payload: "trainer state (internal)"},
	}
}

func (s Spec) config() kafka.TopicConfig {
	tc := kafka.TopicConfig{Topic: s.Name, NumPartitions: s.Partitions, ReplicationFactor: -1}
	if s.Compact {
		// retention.ms=-1 says what Kafka does for a compact-only topic anyway (the latest record per key is kept
		// for good) to brokers that would otherwise also expire compacted topics by time, such as the embedded
		// kfake broker of `greenwave dev`.
		tc.ConfigEntries = append(tc.ConfigEntries,
			kafka.ConfigEntry{ConfigName: "cleanup.policy", ConfigValue: "compact"},
			kafka.ConfigEntry{ConfigName: "min.compaction.lag.ms", ConfigValue: "60000"},
			kafka.ConfigEntry{ConfigName: "retention.ms", ConfigValue: "-1"})
	} else {
		tc.ConfigEntries = append(tc.ConfigEntries, kafka.ConfigEntry{ConfigName: "cleanup.policy", ConfigValue: "delete"})
		if s.Retention > 0 {
			tc.ConfigEntries = append(tc.ConfigEntries,
				kafka.ConfigEntry{ConfigName: "retention.ms", ConfigValue: strconv.FormatInt(s.Retention.Milliseconds(), 10)})
		}
	}
	return tc
}

// Existing maps topic name to partition count for the topics that exist among names and whose partitions all
// have a leader (a topic being created is left out until it is usable).
func Existing(ctx context.Context, client *kafka.Client, names []string) (map[string]int, error) {
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: names})
	if err != nil {
		return nil, fmt.Errorf("fetch metadata: %w", err)
	}
	out := map[string]int{}
	for _, t := range md.Topics {
		if t.Error != nil {
			if errors.Is(t.Error, kafka.UnknownTopicOrPartition) {
				continue
			}
			return nil, fmt.Errorf("metadata for %s: %w", t.Name, t.Error)
		}
		leaders := 0
		for _, p := range t.Partitions {
			if p.Error == nil && p.Leader.Host != "" {
				leaders++
			}
		}
		if leaders < len(t.Partitions) {
			continue // just created: not usable until every partition has a leader
		}
		out[t.Name] = len(t.Partitions)
	}
	return out, nil
}

// EnsureTopics creates every missing topic and checks that existing co-partitioned topics agree on their
// partition count. It is idempotent and safe to run from several processes at once.
func EnsureTopics(ctx context.Context, conn kafkaconn.Conn, specs []Spec) error {
	if len(conn.Brokers) == 0 {
		return errors.New("ensure topics: no brokers")
	}
	client := conn.Client(30 * time.Second)
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	have, err := Existing(ctx, client, names)
	if err != nil {
		return fmt.Errorf("ensure topics: %w", err)
	}
	var create []kafka.TopicConfig
	for _, s := range specs {
		if _, ok := have[s.Name]; !ok {
			create = append(create, s.config())
		}
	}
	if len(create) > 0 {
		resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Addr: controllerAddr(ctx, client), Topics: create})
		if err != nil {
			return fmt.Errorf("create topics: %w", err)
		}
		for name, e := range resp.Errors {
			if e != nil && !errors.Is(e, kafka.TopicAlreadyExists) {
				return fmt.Errorf("create topic %s: %w", name, e)
			}
		}
	}
	// Metadata can lag creation; wait until every topic is visible with its leaders, or writes fail at once.
	for attempt := 0; ; attempt++ {
		have, err = Existing(ctx, client, names)
		if err == nil && len(have) == len(specs) {
			break
		}
		if attempt >= 100 {
			return fmt.Errorf("ensure topics: topics not visible after creation (have %d of %d): %v", len(have), len(specs), err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("ensure topics: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err := CheckCoPartitioned(specs, have); err != nil {
		return fmt.Errorf("ensure topics: %w", err)
	}
	return nil
}

// CheckCoPartitioned returns an error when the co-partitioned topics among specs that counts holds (topic name →
// partition count) disagree on their partition count: the state a service keeps for an intersection would then
// live in another partition than its input.
func CheckCoPartitioned(specs []Spec, counts map[string]int) error {
	copart := map[int][]string{}
	for _, s := range specs {
		if n, ok := counts[s.Name]; ok && s.CoPartitioned {
			copart[n] = append(copart[n], s.Name)
		}
	}
	if len(copart) <= 1 {
		return nil
	}
	var problems []string
	for n, ts := range copart {
		sort.Strings(ts)
		problems = append(problems, fmt.Sprintf("%d partitions: %v", n, ts))
	}
	sort.Strings(problems)
	return fmt.Errorf("co-partitioned topics disagree on partition count: %v", problems)
}

// controllerAddr finds the controller, which must receive CreateTopics on older brokers; any broker otherwise.
func controllerAddr(ctx context.Context, client *kafka.Client) net.Addr {
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{})
	if err != nil || md.Controller.Host == "" {
		return nil
	}
	return kafka.TCP(net.JoinHostPort(md.Controller.Host, strconv.Itoa(md.Controller.Port)))
}

// PartitionCount returns a topic's partition count.
func PartitionCount(ctx context.Context, conn kafkaconn.Conn, topic string) (int, error) {
	client := conn.Client(30 * time.Second)
	have, err := Existing(ctx, client, []string{topic})
	if err != nil {
		return 0, err
	}
	n, ok := have[topic]
	if !ok {
		return 0, fmt.Errorf("topic %s does not exist (run `greenwave topics ensure`)", topic)
	}
	return n, nil
}
