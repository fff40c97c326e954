package trainer

import (
	"context"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/train"
	"github.com/greenwave-city/greenwave/pkg/wire"
)

// CheckpointDue is the partition's stream.WithCheckpointDue decision. Snapshots are taken on event time, so that what
// they cost follows the input, not the wall clock or the speed of a replay: when the newest applied window end has
// crossed a multiple of checkpointEvery (UTC-aligned, so restarts keep the schedule) since the last checkpoint.
// Offsets are committed only with a checkpoint, so a restart replays the frames since the last one and stays exact.
//
// A partition of historical input that goes quiet (a replay that ended; event time more than checkpointEvery
// behind now) is checkpointed after checkpointIdle of silence, so that its last windows are published and its
// offsets committed. Live input is not: its next event-time boundary comes within checkpointEvery anyway, and
// checkpointing every quiet spell between windows would write every learner once per window.
func (p *partition) CheckpointDue(now time.Time, idle time.Duration) bool {
	every := int64(p.checkpointEvery / time.Second)
	if every <= 0 {
		return true
	}
	if floorDiv(p.eventTime, every) > floorDiv(p.checkpointed, every) {
		return true
	}
	return p.checkpointIdle > 0 && idle >= p.checkpointIdle && p.eventTime < now.Unix()-every
}

// floorDiv returns ⌊a/b⌋ for b > 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// publishDue reports whether the learner key, which has just applied the window ending at end, publishes its
// served snapshots now: with its first window (the predictor learns the model exists), with the first window
// after which every horizon can forecast (so warm-up ends as soon as the model can serve), and when end crosses a
// multiple of publishEvery (UTC-aligned) since the last publication. The rule depends only on the learner's own
// windows, so a replay publishes the same versions.
func (p *partition) publishDue(key string, end int64, upd train.Update) bool {
	last, ok := p.served[key]
	if !ok {
		return true
	}
	if !last.ready && canForecast(upd) {
		return true
	}
	every := int64(p.publishEvery / time.Second)
	return every <= 0 || floorDiv(end, every) > floorDiv(last.end, every)
}

// canForecast reports whether every horizon of an applied window made a forecast.
func canForecast(upd train.Update) bool {
	for _, h := range upd.Horizons {
		if math.IsNaN(h.Forecast) {
			return false
		}
	}
	return len(upd.Horizons) > 0
}

// publish returns the served snapshots of learner key for the models topic and records the publication.
func (p *partition) publish(key string) ([]stream.Output, error) {
	l := p.learners[key]
	snaps := l.Snapshots()
	outs := make([]stream.Output, 0, len(snaps))
	// ready is the trigger's own notion (canForecast), not the snapshot's: a covariance reset by the drift
	// detector restarts the promoted candidate's update count, and a second notion would publish every window
	// until it recovered.
	mark := servedMark{ready: p.forecasting[key]}
	for _, s := range snaps {
		served := train.Served(s)
		o, err := wire.EncodeModel(p.names.Models, served)
		if err != nil {
			return nil, err
		}
		outs = append(outs, o)
		p.metrics.evals.set(served)
		mark.end = s.UpdatedAt.Unix()
	}
	p.served[key] = mark
	delete(p.unserved, key)
	return outs, nil
}

// Checkpoint is the partition's stream.WithCheckpoint: the complete snapshots of every learner changed since the last
// checkpoint, for the trainer's changelog — the processor commits input offsets only after they are
// acknowledged — and the served snapshots of those changed since their last publication, so that what a
// checkpoint covers is also served (a finished replay's last windows reach the predictor).
func (p *partition) Checkpoint(context.Context) ([]stream.Output, error) {
	var outs []stream.Output
	for _, k := range slices.Sorted(maps.Keys(p.unserved)) {
		o, err := p.publish(k)
		if err != nil {
			return nil, err
		}
		outs = append(outs, o...)
	}
	for _, k := range slices.Sorted(maps.Keys(p.dirty)) {
		// A learner's snapshots are written consecutively, horizon after horizon; restore copes with a crash
		// that acknowledged only some of them (see restoreSet).
		o, n, err := p.snapshotBytes(p.learners[k].Snapshots())
		if err != nil {
			return nil, err
		}
		outs = append(outs, o...)
		p.stateBytes[k] = n
	}
	clear(p.dirty)
	p.checkpointed = p.eventTime
	return outs, nil
}
