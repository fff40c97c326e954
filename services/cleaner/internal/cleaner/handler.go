package cleaner

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/greenwave-city/greenwave/pkg/clean"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/topics"
	"github.com/greenwave-city/greenwave/pkg/topology"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// partition is the handler of one assigned input partition: the state of every intersection it holds. It is
// used from the partition's goroutine only.
type partition struct {
	id int
	// partitions is the input topic's partition count, to check that a record is in its intersection's
	// partition (0: unchecked, for tests that drive one handler).
	partitions int
	topo       *topology.Index
	cfg        clean.Config
	names      topics.Names
	weather    clean.WeatherLookup
	metrics    *metrics
	// states are the intersections this partition holds; each reads its upstream features from the others
	// (a feature group is always in one partition).
	states clean.States
	// applied is, per intersection, the offset of the last input record applied to its state (absent: none
	// recorded). Records at or below it are redeliveries after a restart and are skipped.
	applied map[string]int64
	dirty   map[string]bool
	// position is the highest input offset handled, the position of idle-timeout closes.
	position int64
	// settled is the offset through which a complete checkpoint covers the input (every later lookup and
	// every later restore's replay is past it), so emission positions at or below it need not be kept;
	// unsettled until the first record is handled.
	settled    int64
	hasSettled bool
	// cad is the checkpoint rule (CheckpointDue) and ck what it knows of the partition since the last checkpoint.
	cad cadence
	ck  cadenceState
	// stateBytes is, per intersection, the size (stream.MessageBytes) of its last changelog record written or
	// restored: the estimate of what its next one costs.
	stateBytes map[string]int64
	// asked is the processing time of the last CheckpointDue question, the time of the checkpoint that follows,
	// and why is the rule that made it due ("" if none did).
	asked time.Time
	why   string
	// wsync, if not nil, synchronises window emission with the weather follower (weathersync.go); syncTarget
	// is the weather topic's offsets last observed, which cover the input records below syncCovers.
	wsync      *weatherSync
	syncTarget syncTarget
	syncCovers int64
}

// handler is the stream handler of the partition: records are decoded by the readings topic's declaration,
// ticks close idle windows, and the checkpoint follows CheckpointDue, asked at most every minimum interval
// (the least processing time between checkpoints) while a quiet partition has uncovered input.
func (p *partition) handler() *stream.Handler {
	return stream.NewHandler(p.Handle, stream.WithCheckpoint(p.Checkpoint), stream.WithTick(p.Tick),
		stream.WithCheckpointInterval(p.cad.minInterval), stream.WithCheckpointDue(p.CheckpointDue), stream.WithStateSize(p.StateSize))
}

// StateSize is the partition's state for greenwave_state_keys and greenwave_state_bytes: its intersections and
// the sizes of their last changelog records (restored or written).
func (p *partition) StateSize() stream.StateSize {
	var bytes int64
	for _, n := range p.stateBytes {
		bytes += n
	}
	return stream.StateSize{Keys: len(p.states), Bytes: bytes}
}

// CheckpointDue is the stream.WithCheckpointDue decision with the cadence rule (cadence.due): the state of a
// partition is snapshotted, and its input offsets committed, once the bytes of the readings it handled since
// the last checkpoint reach 1/ratio of what the snapshot will write, no more often than the minimum interval
// and no later than the maximum delay; a finished replay is checkpointed after the minimum interval of silence.
// A restart replays the input since the last checkpoint, so restores stay exact whatever the cadence.
func (p *partition) CheckpointDue(now time.Time, idle time.Duration) bool {
	p.asked = now
	s := p.ck
	s.pending = s.pending || len(p.dirty) > 0
	if s.pending && s.since.IsZero() {
		p.ck.since, s.since = now, now
	}
	for id := range p.dirty {
		s.estimate += p.stateBytes[id]
		if wm := p.states[id].Watermark(); wm.Unix() != 0 && (s.eventTime.IsZero() || wm.Before(s.eventTime)) {
			s.eventTime = wm
		}
	}
	due, why := p.cad.due(s, now, idle)
	p.why = why
	return due
}

// setStateBytes records the size of an intersection's last changelog record (restored or written).
func (p *partition) setStateBytes(id string, n int) { p.stateBytes[id] = int64(n) }

func newPartition(id, partitions int, topo *topology.Index, cfg clean.Config, names topics.Names, weather clean.WeatherLookup, m *metrics) *partition {
	return &partition{id: id, partitions: partitions, topo: topo, cfg: cfg, names: names, weather: weather, metrics: m,
		states: clean.States{}, applied: map[string]int64{}, dirty: map[string]bool{}, stateBytes: map[string]int64{}}
}

// home reports the partition an intersection's readings and state belong to under the topology, and whether
// it is this one (always true when the partition count is unknown).
func (p *partition) home(id string) (int, bool) {
	return stream.Home(p.topo.PartitionKey(id), p.id, p.partitions)
}

func (p *partition) state(id string) (*clean.Intersection, error) {
	if s, ok := p.states[id]; ok {
		return s, nil
	}
	in, ok := p.topo.Intersection(id)
	if !ok {
		return nil, nil
	}
	s, err := clean.NewIntersection(in, p.cfg)
	if err != nil {
		return nil, fmt.Errorf("new intersection state %s: %w", id, err)
	}
	s.SetUpstream(p.states)
	p.states[id] = s
	return s, nil
}

// Handle is the partition's stream.HandleFunc: every record's bytes count towards the checkpoint cadence, the
// ones rejected by the decoding too.
func (p *partition) Handle(ctx context.Context, m kafka.Message) ([]stream.Output, error) {
	p.ck.input += int64(stream.MessageBytes(m))
	p.ck.pending = true
	return stream.Decoded(wire.TopicReadings, p.handleReading)(ctx, m)
}

// handleReading applies one decoded reading.
func (p *partition) handleReading(ctx context.Context, m kafka.Message, r *greenwavev1.TrafficReading) ([]stream.Output, error) {
	size := int64(stream.MessageBytes(m))
	id := r.GetIntersectionId()
	if last, ok := p.applied[id]; ok && m.Offset <= last {
		// The restored state already covers this record: its outputs were published before the state was.
		// It caused no state, so its bytes do not pay for any (its offset still waits for a checkpoint).
		p.metrics.redelivered.Inc()
		p.ck.input -= size
		return nil, nil
	}
	if _, known := p.topo.Intersection(id); known {
		if want, ok := p.home(id); !ok {
			// Its state (and its feature group's) lives in another partition: applying it here would split
			// the intersection's windows between two cleaners.
			return nil, &stream.RejectError{Reason: greenwavev1.RejectReason_REJECT_REASON_INCONSISTENT, EventID: r.GetReadingId(),
				Detail: fmt.Sprintf("reading for intersection %q in partition %d; under this cleaner's topology its feature group %q belongs in partition %d (do the collector and the cleaner run the same topology revision?)",
					id, p.id, p.topo.PartitionKey(id), want)}
		}
	}
	st, err := p.state(id)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return nil, &stream.RejectError{Reason: greenwavev1.RejectReason_REJECT_REASON_UNKNOWN_DETECTOR, EventID: r.GetReadingId(),
			Detail: fmt.Sprintf("intersection %q is not in the topology", id)}
	}
	// The offset stamps the windows this reading closes and bounds the upstream windows they may read, so a
	// restore that brought group members back from different checkpoints replays exactly (clean.SetPosition).
	st.SetPosition(m.Offset)
	p.position = max(p.position, m.Offset)
	if !p.hasSettled {
		// The first record of this assignment is the committed offset: everything before it is covered.
		p.settled, p.hasSettled = m.Offset-1, true
	}
	var res clean.Result
	if p.wsync != nil {
		wl := &syncedLookup{p: p, ctx: ctx, m: m}
		res = st.Add(wire.Reading(r), wl)
		if wl.canceled {
			// Stopping mid-wait: the processor discards this handler and its unpublished outputs, and the
			// record is handled again after a restart.
			return nil, fmt.Errorf("wait for the weather follower: %w", ctx.Err())
		}
	} else {
		res = st.Add(wire.Reading(r), p.weather)
	}
	p.applied[id] = m.Offset
	p.dirty[id] = true
	return p.outputs(id, res, m, r.GetReadingId())
}

// outputs turns a cleaning result into records: dead letters for rejected readings, frames, and the detector
// health at each closed window. A rejection of the current record carries its source offset; deferred
// rejections of buffered readings carry the reading.
func (p *partition) outputs(id string, res clean.Result, m kafka.Message, currentID string) ([]stream.Output, error) {
	var outs []stream.Output
	p.metrics.dropped.Add(float64(res.Dropped))
	for _, rej := range res.Rejected {
		reason := wire.RejectReason(rej.Reason)
		p.metrics.rejected.WithLabelValues(string(rej.Reason)).Inc()
		re := &stream.RejectError{Reason: reason, Detail: rej.Detail, EventID: rej.Reading.ID, ObservedAt: rej.Reading.Start}
		src, dlID := m, ""
		if rej.Reading.ID != currentID || m.Value == nil {
			o, err := wire.TopicReadings.Encode(p.names, wire.ReadingProto(rej.Reading))
			if err != nil {
				return nil, fmt.Errorf("encode rejected reading %s: %w", rej.Reading.ID, err)
			}
			src = kafka.Message{Topic: o.Topic, Partition: p.id, Offset: -1, Key: o.Key, Value: o.Value}
		}
		if src.Offset < 0 {
			// No source offset (a buffered reading rejected when its window closed): the offset-based id
			// would be the same for all of them, so the id is the reading's and the reason, in the header and
			// in the payload alike.
			dlID = fmt.Sprintf("%s/%s", rej.Reading.ID, rej.Reason)
		}
		outs = append(outs, wire.DeadLetterWithID("cleaner", p.names.DeadLetters, src, re, dlID))
	}
	for _, f := range res.Frames {
		o, err := wire.TopicFeatures.Encode(p.names, wire.FrameProto(f))
		if err != nil {
			return nil, err
		}
		outs = append(outs, o)
		p.metrics.frames.Inc()
	}
	for _, wh := range res.Health {
		for _, h := range healthRecords(id, wh) {
			o, err := wire.TopicDetectorHealth.Encode(p.names, h)
			if err != nil {
				return nil, err
			}
			outs = append(outs, o)
			p.metrics.health.WithLabelValues(id, h.GetApproachId(), h.GetDetectorId()).Set(h.GetScore())
		}
	}
	return outs, nil
}

// Tick is the stream.WithTick of the partition: the processing-time idle timeout.
func (p *partition) Tick(_ context.Context, now time.Time) ([]stream.Output, error) {
	var outs []stream.Output
	for _, id := range slices.Sorted(maps.Keys(p.states)) {
		p.states[id].SetPosition(p.position)
		res := p.states[id].CloseIdle(now, p.weather)
		if len(res.Frames) == 0 && len(res.Rejected) == 0 {
			continue
		}
		p.dirty[id] = true
		p.ck.pending = true
		o, err := p.outputs(id, res, kafka.Message{Partition: p.id, Offset: -1}, "")
		if err != nil {
			return nil, err
		}
		outs = append(outs, o...)
	}
	return outs, nil
}

// Checkpoint is the stream.WithCheckpoint of the partition: the snapshot of every intersection changed since the last
// checkpoint, each with the offset of the last record applied to it.
func (p *partition) Checkpoint(context.Context) ([]stream.Output, error) {
	var outs []stream.Output
	if p.hasSettled {
		// Called again, so the previous checkpoint (and its commit) completed: what it covered is settled.
		for _, id := range slices.Sorted(maps.Keys(p.states)) {
			p.states[id].ForgetEmissionsThrough(p.settled)
		}
		p.settled = p.position
	}
	for _, id := range slices.Sorted(maps.Keys(p.dirty)) {
		off, ok := p.applied[id]
		if !ok {
			off = -1
		}
		// The changelog is co-partitioned with the readings, by feature group.
		out, err := wire.EncodeCleanerRecord(p.names, id, p.topo.PartitionKey(id), p.states[id], p.id, off)
		if err != nil {
			return nil, err
		}
		p.setStateBytes(id, stream.MessageBytes(out.Message()))
		outs = append(outs, out)
	}
	clear(p.dirty)
	// The processor asked CheckpointDue just before: that is when this checkpoint was taken, and why.
	p.ck = cadenceState{last: p.asked}
	if p.why != "" {
		p.metrics.checkpoints.WithLabelValues(p.why).Inc()
		p.why = ""
	}
	return outs, nil
}
