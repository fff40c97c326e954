package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/ops"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/topics"
)

// pipelineStage is one hop of the pipeline: the consumer groups that read topic.
type pipelineStage struct {
	topic  string
	groups []string
}

// pipelineStages are the hops from the collector's readings down to the plans, in order, with the services'
// consumer group names (pkg/app Common.Group: prefix + "greenwave." + service). Weather is read whole by every
// cleaner instance without a group, and models by the predictor, so neither has committed offsets to wait for.
func pipelineStages(prefix string) []pipelineStage {
	n := topics.DefaultNames(prefix)
	group := func(s string) string { return prefix + "greenwave." + s }
	return []pipelineStage{
		{topic: n.Readings, groups: []string{group("cleaner")}},
		{topic: n.Features, groups: []string{group("trainer"), group("predictor")}},
		{topic: n.Predictions, groups: []string{group("signalcontrol")}},
	}
}

// withTrainerGroups replaces the trainer's group in stages by the trainer groups the cluster has: a trainer
// learning another target than flow (TRAINER_TARGET) consumes as "greenwave.trainer-<target>", and several may
// run side by side. The default group is kept when the cluster has none (a trainer not started yet).
func withTrainerGroups(ctx context.Context, client *kafka.Client, stages []pipelineStage, prefix string) ([]pipelineStage, error) {
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{})
	if err != nil {
		return nil, fmt.Errorf("list brokers: %w", err)
	}
	base := prefix + "greenwave.trainer"
	var found []string
	for _, b := range md.Brokers {
		// Each broker lists the groups it coordinates.
		res, err := client.ListGroups(ctx, &kafka.ListGroupsRequest{Addr: brokerAddr(b)})
		if err == nil {
			err = res.Error
		}
		if err != nil {
			return nil, fmt.Errorf("list consumer groups of broker %d: %w", b.ID, err)
		}
		for _, g := range res.Groups {
			if g.GroupID == base || strings.HasPrefix(g.GroupID, base+"-") {
				found = append(found, g.GroupID)
			}
		}
	}
	if len(found) == 0 {
		return stages, nil
	}
	slices.Sort(found)
	found = slices.Compact(found)
	out := slices.Clone(stages)
	for i, st := range out {
		if j := slices.Index(st.groups, base); j >= 0 {
			groups := slices.Delete(slices.Clone(st.groups), j, j+1)
			out[i].groups = slices.Insert(groups, j, found...)
		}
	}
	return out, nil
}

// brokerAddr is a broker's address from the metadata.
func brokerAddr(b kafka.Broker) net.Addr {
	return kafka.TCP(net.JoinHostPort(b.Host, strconv.Itoa(b.Port)))
}

// waitPipeline returns once every stage's groups have committed offsets at or past the end offsets their input
// topic had when the previous stage finished (the first stage: when called, after the replay's last ack).
//
// Stage by stage is what makes it exact: a service publishes a batch's outputs and waits for their acks before it
// commits the batch's input offsets, so once a group has committed everything up to the ends measured before, every
// record derived from that input is on the next topic, below the ends measured now. What it cannot see: output a
// service holds back by design — event-time windows still open (they close as later readings arrive, or after the
// cleaner's idle timeout) — and offsets a stream.WithCheckpointInterval commits only at its interval (so the wait
// includes, for example, PREDICTOR_COMMIT_INTERVAL). waiting is called when a group starts being waited for.
func waitPipeline(ctx context.Context, client *kafka.Client, stages []pipelineStage, poll time.Duration, waiting func(group, topic string, behind int64)) error {
	for _, st := range stages {
		ends, firsts, err := partitionOffsets(ctx, client, st.topic)
		if err != nil {
			return err
		}
		for _, g := range st.groups {
			announced := false
			for {
				behind, err := groupBehind(ctx, client, g, st.topic, ends, firsts)
				if err != nil {
					return err
				}
				if behind == 0 {
					break
				}
				if !announced && waiting != nil {
					waiting(g, st.topic, behind)
					announced = true
				}
				select {
				case <-ctx.Done():
					return fmt.Errorf("wait for %s on %s (%d records behind): %w", g, st.topic, behind, ctx.Err())
				case <-time.After(poll):
				}
			}
		}
	}
	return nil
}

// partitionOffsets returns the high watermark and the first offset of every partition of topic.
func partitionOffsets(ctx context.Context, client *kafka.Client, topic string) (ends, firsts map[int]int64, err error) {
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, nil, fmt.Errorf("metadata of %s: %w", topic, err)
	}
	if len(md.Topics) != 1 || md.Topics[0].Error != nil {
		return nil, nil, fmt.Errorf("metadata of %s: topic missing (is --topic-prefix right?)", topic)
	}
	var req []kafka.OffsetRequest
	for _, p := range md.Topics[0].Partitions {
		req = append(req, kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID))
	}
	offs, err := stream.ListOffsets(ctx, client, map[string][]kafka.OffsetRequest{topic: req})
	if err != nil {
		return nil, nil, err
	}
	ends, firsts = map[int]int64{}, map[int]int64{}
	for _, po := range offs[topic] {
		ends[po.Partition], firsts[po.Partition] = po.LastOffset, po.FirstOffset
	}
	return ends, firsts, nil
}

// groupBehind returns how many records of topic, up to ends, group has not committed yet.
func groupBehind(ctx context.Context, client *kafka.Client, group, topic string, ends, firsts map[int]int64) (int64, error) {
	parts := make([]int, 0, len(ends))
	for p := range ends {
		parts = append(parts, p)
	}
	resp, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
	if err != nil {
		return 0, fmt.Errorf("committed offsets of %s: %w", group, err)
	}
	// A group that has never committed does not exist yet (kfake answers GROUP_ID_NOT_FOUND; Kafka, -1 offsets).
	if resp.Error != nil && !errors.Is(resp.Error, kafka.GroupIdNotFound) {
		return 0, fmt.Errorf("committed offsets of %s: %w", group, resp.Error)
	}
	committed := map[int]int64{}
	for _, p := range resp.Topics[topic] {
		if p.Error != nil {
			return 0, fmt.Errorf("committed offset of %s on %s[%d]: %w", group, topic, p.Partition, p.Error)
		}
		committed[p.Partition] = p.CommittedOffset
	}
	var behind int64
	for p, end := range ends {
		c, ok := committed[p]
		if !ok || c < firsts[p] {
			c = firsts[p] // nothing committed (or deleted by retention): the group starts at the first offset
		}
		behind += max(0, end-c)
	}
	return behind, nil
}

// waitForPipeline runs waitPipeline for `replay --wait`, reporting on stderr which group it waits for.
func waitForPipeline(ctx context.Context, o options, stderr io.Writer) error {
	var brokers []string
	for b := range strings.SplitSeq(o.brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			brokers = append(brokers, b)
		}
	}
	// The brokers' security comes from KAFKA_TLS* and KAFKA_SASL_*, as the services read it.
	conn, err := ops.KafkaConn("replay", brokers, nil)
	if err != nil {
		return err
	}
	tr := conn.NewTransport(0)
	defer tr.CloseIdleConnections()
	client := &kafka.Client{Addr: conn.Addr(), Timeout: 10 * time.Second, Transport: tr}
	wctx, cancel := context.WithTimeout(ctx, o.waitTimeout)
	defer cancel()
	began := time.Now()
	stages, err := withTrainerGroups(wctx, client, pipelineStages(o.topicPrefix), o.topicPrefix)
	if err != nil {
		if fatal := conn.Classify(err); fatal != nil {
			err = fatal
		}
		return fmt.Errorf("replay: --wait: %w", err)
	}
	err = waitPipeline(wctx, client, stages, 100*time.Millisecond, func(group, topic string, behind int64) {
		fmt.Fprintf(stderr, "greenwave replay: waiting for %s: %d records of %s not yet committed\n", group, behind, topic)
	})
	if err != nil {
		if fatal := conn.Classify(err); fatal != nil {
			err = fatal
		}
		return fmt.Errorf("replay: --wait: %w", err)
	}
	fmt.Fprintf(stderr, "greenwave replay: pipeline drained %.1fs after the last ack\n", time.Since(began).Seconds())
	return nil
}
