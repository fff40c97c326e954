package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/greenwave-city/greenwave/pkg/kafkaconn"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/topics"
	"github.com/greenwave-city/greenwave/pkg/wire"
)

// defaultPartitions is the co-partitioned partition count `topics ensure` creates, the same as `greenwave dev`.
const defaultPartitions = 3

const topicsDescription = `
Creates and inspects the Greenwave topics (the names of pkg/topics under --topic-prefix). Services never create
topics: run "topics ensure" once per deployment before starting them.`

// Topics runs `greenwave topics ensure|describe`.
func Topics(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return topicsCmd(ctx, args, stdout, stderr, os.LookupEnv)
}

func topicsCmd(ctx context.Context, args []string, stdout, stderr io.Writer, lookup lookupFunc) error {
	return dispatch(ctx, "topics", topicsDescription, []subcommand{
		{name: "ensure", summary: "create the missing topics; check the co-partitioned ones agree", run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			return topicsEnsure(ctx, args, stdout, stderr, lookup)
		}},
		{name: "describe", summary: "every topic's partitions, policy, retention, payload and end offsets", run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			return topicsDescribe(ctx, args, stdout, stderr, lookup)
		}},
	}, args, stdout, stderr)
}

const ensureDescription = `
Creates every Greenwave topic that does not exist yet, with its cleanup policy and retention, and prints one line
per topic: "created" or "exists". It never changes an existing topic: adding partitions would move keys to other
partitions and strand the state kept per partition. It fails (exit status 1) when the co-partitioned topics
(every topic keyed by intersection) disagree on their partition count. Running it again is harmless.`

func topicsEnsure(ctx context.Context, args []string, stdout, stderr io.Writer, lookup lookupFunc) error {
	fs := newFlagSet("topics ensure", "[flags]", ensureDescription, stderr)
	kf := addKafkaFlags(fs, lookup)
	partitions := fs.Int("partitions", defaultPartitions, "partition count of the co-partitioned topics created (weather always has 1)")
	conn, err := kf.parse(fs, args)
	if err != nil {
		return err
	}
	defer conn.CloseIdleConnections()
	if *partitions < 1 || *partitions > 10000 {
		return usagef("topics ensure: --partitions must be in 1..10000, got %d", *partitions)
	}
	ctx, cancel := context.WithTimeout(ctx, kf.timeout)
	defer cancel()
	specs := topics.Specs(topics.DefaultNames(kf.prefix), *partitions)
	names := specNames(specs)
	client := newKafkaClient(conn, kf.timeout)
	defer closeClient(client)
	before, err := topics.Existing(ctx, client, names)
	if err != nil {
		return fmt.Errorf("topics ensure: brokers %s: %w", strings.Join(conn.Brokers, ","), explain(conn, err))
	}
	ensureErr := explain(conn, topics.EnsureTopics(ctx, conn, specs))
	// A fresh client: kafka-go's transport answers metadata requests from its cache, which predates the creation.
	fresh := newKafkaClient(conn, kf.timeout)
	defer closeClient(fresh)
	after, err := topics.Existing(ctx, fresh, names)
	if err != nil {
		return fmt.Errorf("topics ensure: read back the topics: %w (ensure: %v)", err, ensureErr)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	for _, s := range specs {
		n, ok := after[s.Name]
		state := "exists"
		switch {
		case !ok:
			state, n = "missing", 0
		case !hasKey(before, s.Name):
			state = "created"
		}
		note := ""
		if ok && n != s.Partitions {
			// An existing topic keeps its count; say so rather than let the operator believe --partitions applied.
			note = fmt.Sprintf("(asked %d; existing topics are never changed)", s.Partitions)
		}
		parts := fmt.Sprintf("%d partitions", n)
		if !ok {
			parts = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", state, s.Name, parts, policyOf(s), note)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("topics ensure: write output: %w", err)
	}
	if ensureErr != nil {
		return fmt.Errorf("topics ensure: %w", ensureErr)
	}
	return nil
}

func hasKey(m map[string]int, k string) bool { _, ok := m[k]; return ok }

func specNames(specs []topics.Spec) []string {
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	return names
}

// policyOf renders a spec's cleanup policy and retention: "delete, 7d" or "compact".
func policyOf(s topics.Spec) string {
	if s.Compact {
		return "compact"
	}
	if s.Retention <= 0 {
		return "delete"
	}
	return "delete, " + formatRetention(s.Retention)
}

// formatRetention prints whole days and hours as "7d" and "36h", anything else as a Go duration.
func formatRetention(d time.Duration) string {
	switch {
	case d < 0:
		return "forever"
	case d > 0 && d%(24*time.Hour) == 0:
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	case d > 0 && d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	}
	return d.String()
}

const describeDescription = `
Prints every Greenwave topic: its partition count, cleanup policy and retention as the broker reports them
(DescribeConfigs; where they differ from the spec in pkg/topics the spec is shown beside), the payload type, the
records currently held (end minus first offset, summed over partitions; compaction and retention make it smaller
than the number ever written) and the end offset of every partition. A topic that does not exist is listed as
missing, and the command then exits with status 1 after the table. --json prints one JSON object per topic.`

// topicInfo is what `topics describe` reports about one topic.
type topicInfo struct {
	Name       string   `json:"name"`
	Exists     bool     `json:"exists"`
	Partitions int      `json:"partitions"`
	Payload    string   `json:"payload"`
	Internal   bool     `json:"internal,omitempty"`
	Spec       specInfo `json:"spec"`
	// Broker holds the broker's cleanup.policy and retention.ms; absent when DescribeConfigs failed.
	Broker  *brokerInfo `json:"broker,omitempty"`
	Offsets []partRange `json:"offsets,omitempty"`
	Records int64       `json:"records"`
}

type specInfo struct {
	// Partitions is fixed only for topics outside the co-partitioned set (weather: 1); the co-partitioned
	// count is chosen at creation and only has to agree.
	Partitions    int    `json:"partitions,omitempty"`
	CoPartitioned bool   `json:"co_partitioned"`
	CleanupPolicy string `json:"cleanup_policy"`
	RetentionMS   int64  `json:"retention_ms,omitempty"`
}

type brokerInfo struct {
	CleanupPolicy string `json:"cleanup_policy"`
	RetentionMS   int64  `json:"retention_ms"`
}

type partRange struct {
	Partition int   `json:"partition"`
	First     int64 `json:"first"`
	End       int64 `json:"end"`
}

func topicsDescribe(ctx context.Context, args []string, stdout, stderr io.Writer, lookup lookupFunc) error {
	fs := newFlagSet("topics describe", "[flags]", describeDescription, stderr)
	kf := addKafkaFlags(fs, lookup)
	asJSON := fs.Bool("json", false, "print one JSON object per topic instead of a table")
	conn, err := kf.parse(fs, args)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, kf.timeout)
	defer cancel()
	infos, configErr, err := describeTopics(ctx, conn, kf.prefix, kf.timeout)
	if err != nil {
		return fmt.Errorf("topics describe: brokers %s: %w", strings.Join(conn.Brokers, ","), explain(conn, err))
	}
	if configErr != nil {
		fmt.Fprintf(stderr, "greenwave: topics describe: broker configs unavailable, showing the specs: %v\n", configErr)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		for _, in := range infos {
			if err := enc.Encode(in); err != nil {
				return fmt.Errorf("topics describe: write output: %w", err)
			}
		}
	} else if err := printTopicTable(stdout, infos); err != nil {
		return fmt.Errorf("topics describe: write output: %w", err)
	}
	var missing []string
	for _, in := range infos {
		if !in.Exists {
			missing = append(missing, in.Name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("topics describe: %d of %d topics missing (%s): run `greenwave topics ensure`", len(missing), len(infos), strings.Join(missing, ", "))
	}
	return nil
}

// describeTopics gathers metadata, offsets and (best effort: configErr) the broker's configs of every topic.
func describeTopics(ctx context.Context, conn kafkaconn.Conn, prefix string, timeout time.Duration) (infos []topicInfo, configErr, err error) {
	specs := wire.Specs(topics.DefaultNames(prefix), defaultPartitions)
	client := newKafkaClient(conn, timeout)
	defer closeClient(client)
	have, err := topics.Existing(ctx, client, specNames(specs))
	if err != nil {
		return nil, nil, err
	}
	offsetReq := map[string][]kafka.OffsetRequest{}
	var configReq []kafka.DescribeConfigRequestResource
	for _, s := range specs {
		n, ok := have[s.Name]
		if !ok {
			continue
		}
		for p := range n {
			offsetReq[s.Name] = append(offsetReq[s.Name], kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p))
		}
		configReq = append(configReq, kafka.DescribeConfigRequestResource{
			ResourceType: kafka.ResourceTypeTopic, ResourceName: s.Name, ConfigNames: []string{"cleanup.policy", "retention.ms"}})
	}
	offsets := map[string][]kafka.PartitionOffsets{}
	if len(offsetReq) > 0 {
		var err error
		if offsets, err = stream.ListOffsets(ctx, client, offsetReq); err != nil {
			return nil, nil, err
		}
	}
	configs := map[string]*brokerInfo{}
	if len(configReq) > 0 {
		configs, configErr = describeConfigs(ctx, client, configReq)
	}
	for _, s := range specs {
		in := topicInfo{Name: s.Name, Payload: s.Payload, Internal: !isProtoPayload(s.Payload), Spec: specInfo{
			Partitions: s.Partitions, CoPartitioned: s.CoPartitioned, CleanupPolicy: "delete", RetentionMS: s.Retention.Milliseconds()}}
		if s.Compact {
			in.Spec.CleanupPolicy, in.Spec.RetentionMS = "compact", 0
		}
		if s.CoPartitioned {
			in.Spec.Partitions = 0 // decided at creation (--partitions); only agreement is required
		}
		in.Partitions, in.Exists = have[s.Name]
		in.Broker = configs[s.Name]
		for _, po := range offsets[s.Name] {
			in.Offsets = append(in.Offsets, partRange{Partition: po.Partition, First: po.FirstOffset, End: po.LastOffset})
			in.Records += po.LastOffset - po.FirstOffset
		}
		slices.SortFunc(in.Offsets, func(a, b partRange) int { return a.Partition - b.Partition })
		infos = append(infos, in)
	}
	return infos, configErr, nil
}

func describeConfigs(ctx context.Context, client *kafka.Client, req []kafka.DescribeConfigRequestResource) (map[string]*brokerInfo, error) {
	resp, err := client.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: req})
	if err != nil {
		return nil, fmt.Errorf("describe configs: %w", err)
	}
	out := map[string]*brokerInfo{}
	var errs []error
	for _, r := range resp.Resources {
		if r.Error != nil {
			errs = append(errs, fmt.Errorf("describe configs of %s: %w", r.ResourceName, r.Error))
			continue
		}
		bi := &brokerInfo{}
		for _, e := range r.ConfigEntries {
			switch e.ConfigName {
			case "cleanup.policy":
				bi.CleanupPolicy = e.ConfigValue
			case "retention.ms":
				ms, err := strconv.ParseInt(e.ConfigValue, 10, 64)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: retention.ms %q is not a number", r.ResourceName, e.ConfigValue))
					continue
				}
				bi.RetentionMS = ms
			}
		}
		out[r.ResourceName] = bi
	}
	return out, errors.Join(errs...)
}

func printTopicTable(w io.Writer, infos []topicInfo) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITIONS\tPOLICY\tRETENTION\tPAYLOAD\tRECORDS\tEND OFFSETS")
	for _, in := range infos {
		if !in.Exists {
			fmt.Fprintf(tw, "%s\tmissing\t%s\t%s\t%s\t-\t-\n", in.Name, in.Spec.CleanupPolicy, specRetention(in.Spec), shortPayload(in.Payload))
			continue
		}
		policy, retention := in.Spec.CleanupPolicy, specRetention(in.Spec)
		if b := in.Broker; b != nil {
			bret := "-"
			if strings.Contains(b.CleanupPolicy, "delete") {
				bret = formatRetention(time.Duration(b.RetentionMS) * time.Millisecond)
			}
			if b.CleanupPolicy != policy {
				policy = fmt.Sprintf("%s (spec %s)", b.CleanupPolicy, policy)
			}
			if bret != retention {
				retention = fmt.Sprintf("%s (spec %s)", bret, retention)
			}
		}
		ends := make([]string, len(in.Offsets))
		for i, o := range in.Offsets {
			ends[i] = strconv.FormatInt(o.End, 10)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%d\t%s\n", in.Name, in.Partitions, policy, retention, shortPayload(in.Payload), in.Records, strings.Join(ends, ","))
	}
	return tw.Flush()
}

func specRetention(s specInfo) string {
	switch {
	case s.CleanupPolicy == "compact":
		return "-"
	case s.RetentionMS == 0:
		return "default"
	}
	return formatRetention(time.Duration(s.RetentionMS) * time.Millisecond)
}

// shortPayload drops the proto package from a payload name for the table: greenwave.v1.SignalPlan → SignalPlan.
func shortPayload(p string) string { return strings.TrimPrefix(p, protoPackage+".") }
