package stream

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// LagMetric is the name of the consumer-lag gauge every consuming service exports.
const LagMetric = "greenwave_consumer_lag_records"

// newLagGauge returns greenwave_consumer_lag_records{group,topic,partition}.
//
// The lag is measured by the processor itself rather than by a separate ListOffsets/OffsetFetch poller: after
// every handled record it is the partition's high watermark, as of the fetch that returned the record, minus the
// next offset to handle (kafka-go's Reader.Lag). It is the *processed* lag — what the service still has to
// read — and it costs no request. Committed offsets can trail it by one batch, or by a stream.WithCheckpointInterval's
// interval; `greenwave replay --wait` and Kafka exporters read committed offsets from the broker instead. Each
// instance reports only the partitions it is assigned (the series is removed when a partition is revoked),
// so `sum by (group, topic)` over instances is the group's lag. A partition is measured once with ListOffsets
// when it is assigned, before its state is restored, so a long restore shows the backlog waiting for it.
func newLagGauge() *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "greenwave", Subsystem: "consumer", Name: "lag_records",
		Help: "Records of an assigned input partition not yet handled by this instance: the partition's high watermark minus the next offset to handle, by consumer group, topic and partition.",
	}, []string{"group", "topic", "partition"})
}

// lagSeries is one assigned partition's lag gauge.
type lagSeries struct {
	vec    *prometheus.GaugeVec
	labels []string
	g      prometheus.Gauge
}

// partitionLag creates the partition's series and measures its initial lag from the assignment's committed
// offset (best effort: a failed ListOffsets only leaves the series at 0 until the first record).
func (m *Metrics) partitionLag(ctx context.Context, cfg ProcessorConfig, a kafka.PartitionAssignment, log *zap.Logger) *lagSeries {
	labels := []string{cfg.GroupID, cfg.Topic, strconv.Itoa(a.ID)}
	s := &lagSeries{vec: m.lag, labels: labels, g: m.lag.WithLabelValues(labels...)}
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	first, end, err := partitionBoundsOnce(lctx, cfg.Conn, cfg.Topic, a.ID) // best effort: no retry, no readiness
	if err != nil {
		log.Debug("initial consumer lag unknown", zap.Error(err))
		return s
	}
	s.set(InitialLag(a.Offset, first, end))
	return s
}

// InitialLag is the lag of a partition whose group committed offset is committed (negative: none, so
// consumption starts at the first offset) when its log spans first..end (end is the high watermark).
func InitialLag(committed, first, end int64) int64 {
	next := committed
	if next < first {
		next = first // nothing committed, or the committed offset was deleted by retention
	}
	return max(0, end-next)
}

func (s *lagSeries) set(lag int64) { s.g.Set(float64(max(0, lag))) }

// done removes the series: the partition is no longer this instance's to report.
func (s *lagSeries) done() { s.vec.DeleteLabelValues(s.labels...) }
