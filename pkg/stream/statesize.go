package stream

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// StateKeysMetric and StateBytesMetric are the names of the state-size gauges every stateful service exports.
const (
	StateKeysMetric  = "greenwave_state_keys"
	StateBytesMetric = "greenwave_state_bytes"
)

// StateSize is what a partition's handler holds: the keys of its state (intersections, learners) and the bytes
// of their latest changelog records (MessageBytes), which is what a restore of the partition reads at least.
type StateSize struct {
	Keys  int
	Bytes int64
}

// WithStateSize reports the handler's state size. The processor exports it per partition as greenwave_state_keys
// and greenwave_state_bytes once the handler is built (its state restored) and after every checkpoint, and
// removes the series when the partition is revoked, as it does the consumer lag. f is called from the
// partition's goroutine.
func WithStateSize(f func() StateSize) HandlerOption {
	return func(h *Handler) { h.stateSize = f }
}

// newStateGauges returns greenwave_state_keys and greenwave_state_bytes, labelled like the consumer lag.
func newStateGauges() (keys, bytes *prometheus.GaugeVec) {
	labels := []string{"group", "topic", "partition"}
	keys = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "greenwave", Subsystem: "state", Name: "keys",
		Help: "Keys (intersections, learners) of an assigned partition's state held by this instance, as of its restore or last checkpoint, by consumer group, input topic and partition.",
	}, labels)
	bytes = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "greenwave", Subsystem: "state", Name: "bytes",
		Help: "Bytes of the latest changelog record of every key of an assigned partition's state, as of its restore or last checkpoint, by consumer group, input topic and partition.",
	}, labels)
	return keys, bytes
}

// stateSeries is one assigned partition's state-size gauges; a nil *stateSeries (a stateless handler) does
// nothing.
type stateSeries struct {
	m      *Metrics
	labels []string
	size   func() StateSize
}

// partitionState creates the partition's series from its handler's size, nil when the handler reports none.
func (m *Metrics) partitionState(cfg ProcessorConfig, partition int, h *Handler) *stateSeries {
	if h.stateSize == nil {
		return nil
	}
	s := &stateSeries{m: m, labels: []string{cfg.GroupID, cfg.Topic, strconv.Itoa(partition)}, size: h.stateSize}
	s.update()
	return s
}

// update sets the gauges to the handler's current size.
func (s *stateSeries) update() {
	if s == nil {
		return
	}
	size := s.size()
	s.m.stateKeys.WithLabelValues(s.labels...).Set(float64(size.Keys))
	s.m.stateBytes.WithLabelValues(s.labels...).Set(float64(size.Bytes))
}

// done removes the series: the partition is no longer this instance's to report.
func (s *stateSeries) done() {
	if s == nil {
		return
	}
	s.m.stateKeys.DeleteLabelValues(s.labels...)
	s.m.stateBytes.DeleteLabelValues(s.labels...)
}
