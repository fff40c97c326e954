package cleaner

import (
	"time"
)

// cadence is the cleaner's checkpoint rule (partition.CheckpointDue): when a partition's changed intersections
// are snapshotted to greenwave.cleaner.state and its input offsets committed. It makes the changelog's cost
// follow the bytes of the readings handled rather than the wall clock, bounded by processing time on both
// sides. docs/cleaner.md (Checkpoint cadence) has the arithmetic.
type cadence struct {
	// minInterval is the least processing time between two checkpoints of a partition, and the silence after
	// which a partition of historical input is checkpointed (CLEANER_CHECKPOINT_INTERVAL). 0: every batch,
	// and the other settings are not used.
	minInterval time.Duration
	// ratio is the state bytes a checkpoint may write per byte of readings handled since the previous one
	// (CLEANER_CHECKPOINT_STATE_RATIO).
	ratio float64
	// maxDelay bounds the processing time a change may stay uncovered by a checkpoint, whatever the bytes
	// (CLEANER_CHECKPOINT_MAX_DELAY). It also tells a replay from a live feed: an intersection whose event
	// time is more than maxDelay behind now is replaying history.
	maxDelay time.Duration
}

// cadenceState is what the rule needs to know about a partition since its last checkpoint.
type cadenceState struct {
	// input is the bytes (stream.MessageBytes) of the records handled since the last checkpoint, redeliveries
	// of records the restored state already covers excluded.
	input int64
	// estimate is the bytes the next checkpoint would write: for every intersection changed since the last
	// checkpoint, the size of its last record written or restored (0 when it has none yet).
	estimate int64
	// pending reports records handled or state changed since the last checkpoint.
	pending bool
	// since is when the rule first saw the pending change (zero: nothing pending).
	since time.Time
	// last is when the last checkpoint was taken (zero: none since the partition was assigned).
	last time.Time
	// eventTime is the oldest watermark among the intersections changed since the last checkpoint (zero: none
	// has one). The watermark, not the readings' own times, so that one reading with a wrong clock (held back
	// or rejected by pkg/clean) does not make a replay look live; the oldest, so that a replay into a partition
	// that also carries a live feed is still committed when it ends.
	eventTime time.Time
}

// Why a checkpoint is due: the rule of cadence.due that fired, the label of greenwave_cleaner_checkpoints_total.
const (
	dueEveryBatch = "every_batch"
	dueBytes      = "bytes"
	dueMaxDelay   = "max_delay"
	dueReplayIdle = "replay_idle"
)

// due reports whether a checkpoint is due at now, and which rule says so ("" when none does); idle is the
// processing time since the partition's last record when asked while idle, 0 when asked at the end of a batch.
// In order:
//
//  1. minInterval 0: every batch.
//  2. Nothing pending: no.
//  3. Less than minInterval since the last checkpoint: no (the most a partition writes is one record per
//     changed intersection per minInterval, as before the rule existed).
//  4. A change pending for maxDelay or more: yes (the bound on what a restart replays, and on how stale the
//     committed offsets look).
//  5. ratio × input ≥ estimate: yes, so the state written is at most ratio × the readings that caused it (as far
//     as the last sizes predict the next).
//  6. Idle for minInterval while an intersection changed since the last checkpoint has its event time more than
//     maxDelay behind now (historical input): yes, so a finished replay or backfill is covered promptly. A live feed is not: its quiet spells between
//     readings would otherwise checkpoint it after every reading interval.
func (c cadence) due(s cadenceState, now time.Time, idle time.Duration) (bool, string) {
	switch {
	case c.minInterval <= 0:
		return true, dueEveryBatch
	case !s.pending:
		return false, ""
	case !s.last.IsZero() && now.Sub(s.last) < c.minInterval:
		return false, ""
	case !s.since.IsZero() && now.Sub(s.since) >= c.maxDelay:
		return true, dueMaxDelay
	case c.ratio*float64(s.input) >= float64(s.estimate):
		return true, dueBytes
	case idle >= c.minInterval && !s.eventTime.IsZero() && now.Sub(s.eventTime) > c.maxDelay:
		return true, dueReplayIdle
	}
	return false, ""
}
