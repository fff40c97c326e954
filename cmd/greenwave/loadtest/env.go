package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/stack"
	"github.com/greenwave-city/greenwave/pkg/config"
	"github.com/greenwave-city/greenwave/pkg/kafkaconn"
	"github.com/greenwave-city/greenwave/pkg/topics"
	"github.com/greenwave-city/greenwave/pkg/topology"
)

// testEnv is a running stack on fresh topics.
type testEnv struct {
	conn    kafkaconn.Conn
	client  *kafka.Client
	names   topics.Names
	prefix  string
	topo    topology.Topology
	stack   *stack.Stack
	grpc    *grpc.ClientConn
	dir     string
	logPath string
	logFile *os.File
}

// appendTimeTopics are the topics the harness creates with message.timestamp.type=LogAppendTime, so that a
// record's timestamp is when the broker appended it: the readings (a window closes when its closing reading is
// in the log), the frames, the predictions and the plans (the per-stage split and the end of the latency).
// The services read no record timestamp, so this changes nothing they do.
func appendTimeTopics(n topics.Names) map[string]bool {
	return map[string]bool{n.Readings: true, n.Features: true, n.Predictions: true, n.Plans: true}
}

// setup creates uniquely prefixed topics, writes the generated topology and starts the five services.
func setup(ctx context.Context, o options, stderr io.Writer) (*testEnv, error) {
	var s kafkaconn.Settings
	if err := config.Load(&s, nil); err != nil {
		return nil, fmt.Errorf("kafka settings: %w", err)
	}
	conn, err := s.Conn()
	if err != nil {
		return nil, fmt.Errorf("kafka settings: %w", err)
	}
	if os.Getenv(kafkaconn.EnvBrokers) == "" {
		return nil, fmt.Errorf("%s is not set: run inside `bash deploy/kafka/kafka.sh test -- ...`", kafkaconn.EnvBrokers)
	}
	e := &testEnv{conn: conn, client: conn.Client(30 * time.Second), prefix: fmt.Sprintf("lt%d.", time.Now().Unix())}
	e.names = topics.DefaultNames(e.prefix)
	if err := createTopics(ctx, e.conn, e.client, topics.Specs(e.names, o.partitions), appendTimeTopics(e.names)); err != nil {
		return nil, err
	}
	if e.topo, err = Topology(o.intersections, o.windowS); err != nil {
		return nil, err
	}
	if e.dir, err = os.MkdirTemp("", "greenwave-loadtest-"); err != nil {
		return nil, err
	}
	b, err := yaml.Marshal(e.topo)
	if err != nil {
		return nil, fmt.Errorf("encode topology: %w", err)
	}
	topoFile := filepath.Join(e.dir, "topology.yaml")
	if err := os.WriteFile(topoFile, b, 0o644); err != nil {
		return nil, fmt.Errorf("write topology: %w", err)
	}
	e.logPath = filepath.Join(e.dir, "services.log")
	if e.logFile, err = os.Create(e.logPath); err != nil {
		return nil, err
	}
	bin, err := filepath.Abs(o.binDir)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "loadtest: %s mode, %d intersections × 4 detectors, %d-s windows, topics %s*, logs %s\n",
		o.mode, o.intersections, o.windowS, e.prefix, e.logPath)
	st, err := stack.Start(ctx, stack.Config{
		Brokers: conn.Brokers, TopicPrefix: e.prefix, TopologyFile: topoFile, BinDir: bin, Dir: e.dir,
		Stdout: e.logFile, LogFormat: "console", LogLevel: "warn",
		// No allowed lateness: a window closes on the first reading of its intersection that starts at or after
		// its end, so the harness knows which reading closed it (docs/cleaner.md "Windows").
		Env:      []string{"CLEANER_ALLOWED_LATENESS=0s"},
		ExtraEnv: extraEnv(o.serviceEnv),
	})
	if err != nil {
		return nil, err
	}
	e.stack = st
	if err := st.WaitReady(ctx); err != nil {
		_ = e.close()
		return nil, err
	}
	if e.grpc, err = grpc.NewClient(st.Addrs("collector").GRPC, grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
		_ = e.close()
		return nil, err
	}
	return e, nil
}

// extraEnv is the services' own settings: the collector takes anonymous gateways and batches of 10 000, then
// whatever --service-env adds.
func extraEnv(add map[string][]string) map[string][]string {
	out := map[string][]string{"collector": {"COLLECTOR_ALLOW_ANONYMOUS=true", "COLLECTOR_MAX_BATCH=10000"}}
	for svc, kv := range add {
		out[svc] = append(out[svc], kv...)
	}
	return out
}

// createTopics creates the topics of specs, those named in appendTime with LogAppendTime timestamps (the others
// as topics.EnsureTopics would), then lets EnsureTopics wait for them and check their partition counts.
func createTopics(ctx context.Context, conn kafkaconn.Conn, client *kafka.Client, specs []topics.Spec, appendTime map[string]bool) error {
	var create []kafka.TopicConfig
	for _, s := range specs {
		if !appendTime[s.Name] || s.Compact {
			continue
		}
		tc := kafka.TopicConfig{Topic: s.Name, NumPartitions: s.Partitions, ReplicationFactor: -1, ConfigEntries: []kafka.ConfigEntry{
			{ConfigName: "cleanup.policy", ConfigValue: "delete"},
			{ConfigName: "message.timestamp.type", ConfigValue: "LogAppendTime"},
		}}
		if s.Retention > 0 {
			tc.ConfigEntries = append(tc.ConfigEntries, kafka.ConfigEntry{ConfigName: "retention.ms", ConfigValue: strconv.FormatInt(s.Retention.Milliseconds(), 10)})
		}
		create = append(create, tc)
	}
	resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: create})
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	for name, e := range resp.Errors {
		if e != nil && !errors.Is(e, kafka.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", name, e)
		}
	}
	if err := topics.EnsureTopics(ctx, conn, specs); err != nil {
		return err
	}
	return nil
}

// close stops the services and removes the topology (the log file stays for reading).
func (e *testEnv) close() error {
	var err error
	if e.grpc != nil {
		e.grpc.Close()
	}
	if e.stack != nil {
		err = e.stack.Stop()
	}
	if e.logFile != nil {
		e.logFile.Close()
	}
	e.conn.CloseIdleConnections()
	return err
}

// groups are the consumer groups of the pipeline with their input topics (pkg/app Common.Group naming).
func (e *testEnv) groups() []groupTopic {
	g := func(s string) string { return e.prefix + "greenwave." + s }
	return []groupTopic{
		{"cleaner", g("cleaner"), e.names.Readings},
		{"trainer", g("trainer"), e.names.Features},
		{"predictor", g("predictor"), e.names.Features},
		{"signalcontrol", g("signalcontrol"), e.names.Predictions},
	}
}

// groupTopic is one consumer group and the topic it reads.
type groupTopic struct{ service, group, topic string }

// lag returns how many records of its topic the group has not committed (committed offsets from the broker,
// against the partitions' high watermarks): what a Kafka exporter shows. A group that never committed counts
// from the first offset.
func (e *testEnv) lag(ctx context.Context, g groupTopic) (int64, error) {
	md, err := e.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{g.topic}})
	if err != nil || len(md.Topics) != 1 || md.Topics[0].Error != nil {
		return 0, fmt.Errorf("metadata of %s: %v", g.topic, err)
	}
	var req []kafka.OffsetRequest
	var parts []int
	for _, p := range md.Topics[0].Partitions {
		req = append(req, kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID))
		parts = append(parts, p.ID)
	}
	offs, err := e.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{g.topic: req}})
	if err != nil {
		return 0, fmt.Errorf("offsets of %s: %w", g.topic, err)
	}
	resp, err := e.client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: g.group, Topics: map[string][]int{g.topic: parts}})
	if err != nil {
		return 0, fmt.Errorf("committed offsets of %s: %w", g.group, err)
	}
	committed := map[int]int64{}
	for _, p := range resp.Topics[g.topic] {
		committed[p.Partition] = p.CommittedOffset
	}
	var behind int64
	for _, po := range offs.Topics[g.topic] {
		if po.Error != nil {
			return 0, fmt.Errorf("offsets of %s[%d]: %w", g.topic, po.Partition, po.Error)
		}
		c := max(committed[po.Partition], po.FirstOffset)
		behind += max(0, po.LastOffset-c)
	}
	return behind, nil
}

// waitDrained polls until every group has committed everything on its topic, stage by stage (a stage's
// output is complete once its input is committed, since services commit after their outputs are
// acknowledged), or ctx ends.
func (e *testEnv) waitDrained(ctx context.Context) error {
	for _, g := range e.groups() {
		for {
			n, err := e.lag(ctx, g)
			if err != nil {
				return err
			}
			if n == 0 {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s still %d records behind: %w", g.group, n, ctx.Err())
			case <-e.stack.Done():
				return fmt.Errorf("stack ended: %v", e.stack.Err())
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
	return nil
}
