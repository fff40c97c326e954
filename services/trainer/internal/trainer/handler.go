package trainer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/topics"
	"github.com/greenwave-city/greenwave/pkg/train"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// partition trains the models of one features partition's intersections. Its state changes only through
// applying frames in offset order, and every learner skips windows it has already applied, so restoring the
// latest complete snapshots and replaying from the committed offset gives exactly the state of an uninterrupted
// run.
//
// It writes two records per model, at two cadences: the served form (train.Served) on the models topic, what the
// predictor applies, at least every publishEvery of event time; and the complete snapshot on the trainer's
// changelog, what a restore needs, every checkpointEvery. The complete snapshot is several times larger (every
// candidate's covariance, the recent errors, the pending inputs), and only restores read it, so it is written
// rarely; the served form is small and keeps the predictor's coefficients fresh.
type partition struct {
	id         int
	partitions int // of the features topic, to check that a frame is in its intersection's partition
	// cfg is the base configuration: each intersection's learners run configFor(frame), fitted to its window.
	cfg      train.Config
	configs  map[int]windowConfig // by window length in seconds
	status   *statusBoard         // nil: not reported (tests)
	logged   map[string]bool      // rejection causes already logged
	names    topics.Names
	learners map[string]*train.Learner // key "intersection/approach"
	// dirty holds the learners changed since the last checkpoint (complete snapshots to write).
	dirty map[string]bool
	// stateBytes is, per learner, the size (stream.MessageBytes) of its snapshots as last checkpointed or
	// restored: greenwave_state_bytes.
	stateBytes map[string]int64
	// served holds, per learner, what its last served publication was; unserved the learners changed since.
	served   map[string]servedMark
	unserved map[string]bool
	// forecasting holds, per learner, whether its last applied window forecast on every horizon.
	forecasting map[string]bool
	metrics     *metrics
	log         *zap.Logger
	// checkpointEvery is the event time between checkpoints (see CheckpointDue); 0: every batch.
	checkpointEvery time.Duration
	// publishEvery is the event time between a model's served snapshots (see publishDue); 0: every window.
	publishEvery time.Duration
	// checkpointIdle is the silence after which a partition of historical input is checkpointed; 0: never.
	checkpointIdle time.Duration
	// eventTime is the newest window end applied (Unix seconds, 0 before any); checkpointed is eventTime at the
	// last checkpoint (or restore).
	eventTime, checkpointed int64
}

// servedMark is what a learner's last served publication was: the end of its newest window (Unix seconds) and
// whether every horizon could forecast.
type servedMark struct {
	end   int64
	ready bool
}

// handler is the stream handler of the partition: its checkpoint follows CheckpointDue, which a quiet partition
// asks every checkpointIdle, and Close runs when the partition is revoked.
func (p *partition) handler() *stream.Handler {
	return stream.NewHandler(p.Handle, stream.WithCheckpoint(p.Checkpoint), stream.WithCheckpointInterval(p.checkpointIdle),
		stream.WithCheckpointDue(p.CheckpointDue), stream.WithClose(p.Close), stream.WithStateSize(p.StateSize))
}

// StateSize is the partition's state for greenwave_state_keys and greenwave_state_bytes: its learners (one per
// approach) and the sizes of their changelog snapshots (a learner not yet checkpointed counts no bytes).
func (p *partition) StateSize() stream.StateSize {
	var bytes int64
	for _, n := range p.stateBytes {
		bytes += n
	}
	return stream.StateSize{Keys: len(p.learners), Bytes: bytes}
}

// snapshotBytes encodes a learner's snapshots for the changelog and returns the records and their size.
func (p *partition) snapshotBytes(snaps []*train.Snapshot) ([]stream.Output, int64, error) {
	outs := make([]stream.Output, 0, len(snaps))
	var n int64
	for _, s := range snaps {
		o, err := wire.EncodeModel(p.names.TrainerState, s)
		if err != nil {
			return nil, 0, err
		}
		outs = append(outs, o)
		n += int64(stream.MessageBytes(o.Message()))
	}
	return outs, n, nil
}

func newPartition(id, partitions int, cfg train.Config, names topics.Names, m *metrics, log *zap.Logger) *partition {
	return &partition{id: id, partitions: partitions, cfg: cfg, names: names, learners: map[string]*train.Learner{},
		dirty: map[string]bool{}, stateBytes: map[string]int64{}, served: map[string]servedMark{}, unserved: map[string]bool{}, forecasting: map[string]bool{},
		metrics: m, log: log,
		configs: map[int]windowConfig{}, logged: map[string]bool{}}
}

// learnerKey is the partition's key of an approach's learner.
func learnerKey(intersection, approach string) string { return intersection + "/" + approach }

// Handle is the partition's stream.HandleFunc: frames decoded by the features topic's declaration (decode).
func (p *partition) Handle(ctx context.Context, m kafka.Message) ([]stream.Output, error) {
	return stream.Decoded(stream.DecoderFunc[*greenwavev1.IntersectionFeatures](p.decode), p.handleFrame)(ctx, m)
}

// decode decodes a frame with the features topic's declaration; a frame it rejects is counted and recorded
// like every other rejection of the partition.
func (p *partition) decode(m kafka.Message) (*greenwavev1.IntersectionFeatures, error) {
	fp, err := wire.TopicFeatures.Decode(m)
	var rej *stream.RejectError
	if errors.As(err, &rej) {
		return nil, p.frameRejected(fp, rej.Reason, "%s", rej.Detail)
	}
	return fp, err
}

// frameRejected counts and records the rejection of a whole frame and returns it for the dead-letter topic.
func (p *partition) frameRejected(fp *greenwavev1.IntersectionFeatures, reason greenwavev1.RejectReason, format string, args ...any) error {
	r := &rejection{cause: causeFrame, reason: reason, detail: fmt.Sprintf(format, args...)}
	var window time.Time
	if fp.GetWindowStart() != nil {
		window = fp.GetWindowStart().AsTime()
	}
	p.rejected(fp.GetIntersectionId(), window, r)
	return r.reject(fp.GetEventId())
}

// handleFrame handles one decoded frame. A frame is applied approach by approach; the approaches that cannot be
// applied are named in one dead letter for the frame, and the others are applied all the same: one bad vector
// must not cost the other approaches their window (the dead letter says which were applied). Every rejection is
// counted by cause, logged once per cause and kept in the intersection's training status (ListModels).
func (p *partition) handleFrame(_ context.Context, m kafka.Message, fp *greenwavev1.IntersectionFeatures) ([]stream.Output, error) {
	f := wire.Frame(fp)
	switch {
	case f.IntersectionID == "":
		return nil, p.frameRejected(fp, greenwavev1.RejectReason_REJECT_REASON_MISSING_FIELD, "frame has no intersection_id")
	case strings.Contains(f.IntersectionID, "/"):
		// Model ids are "intersection/approach/horizon_s/target" and partitioned by the part before the first '/'.
		return nil, p.frameRejected(fp, greenwavev1.RejectReason_REJECT_REASON_MALFORMED, "intersection_id %q contains '/'", f.IntersectionID)
	case len(f.Approaches) == 0:
		return nil, p.frameRejected(fp, greenwavev1.RejectReason_REJECT_REASON_MISSING_FIELD, "frame %s has no approaches", fp.GetEventId())
	}
	// The models of an intersection live in the models partition with the features partition's number; a frame
	// in another partition would train a model whose snapshots this partition never restores.
	if want, ok := stream.Home(f.IntersectionID, m.Partition, p.partitions); !ok {
		return nil, p.frameRejected(fp, greenwavev1.RejectReason_REJECT_REASON_INCONSISTENT,
			"frame for intersection %s in partition %d; its records belong in partition %d (key the features topic by intersection id)",
			f.IntersectionID, m.Partition, want)
	}
	cfg, rj := p.configFor(f)
	if rj != nil {
		p.rejected(f.IntersectionID, f.WindowStart, rj)
		return nil, rj.reject(fp.GetEventId())
	}
	var (
		failed    []string
		applied   []string
		published []stream.Output
		reason    = greenwavev1.RejectReason_REJECT_REASON_MALFORMED
		cause     = causeVector
		seen      = make(map[string]bool, len(f.Approaches))
	)
	fail := func(approach string, r greenwavev1.RejectReason, err error) {
		failed = append(failed, fmt.Sprintf("approach %q: %v", approach, err))
		reason = r
		switch {
		case errors.Is(err, train.ErrFeatureMismatch):
			cause = causeFeatureSet
		case errors.Is(err, errWindowChanged):
			cause = causeWindowChanged
		}
	}
	for _, v := range f.Approaches {
		switch {
		case v.ApproachID == "" || strings.Contains(v.ApproachID, "/"):
			fail(v.ApproachID, greenwavev1.RejectReason_REJECT_REASON_MALFORMED, errors.New("approach_id must be non-empty without '/'"))
			continue
		case seen[v.ApproachID]:
			fail(v.ApproachID, greenwavev1.RejectReason_REJECT_REASON_INCONSISTENT, errors.New("approach repeated in the frame"))
			continue
		}
		seen[v.ApproachID] = true
		key := learnerKey(f.IntersectionID, v.ApproachID)
		l, ok := p.learners[key]
		if !ok {
			var err error
			if l, err = train.NewLearner(f.IntersectionID, v.ApproachID, f.Names, f.FeatureSetVersion, cfg); err != nil {
				fail(v.ApproachID, greenwavev1.RejectReason_REJECT_REASON_MALFORMED, err)
				continue
			}
		} else if was := l.Config().WindowS; was != cfg.WindowS {
			fail(v.ApproachID, greenwavev1.RejectReason_REJECT_REASON_INCONSISTENT, fmt.Errorf(
				"the intersection's window is now %d s (topology window_s) but its models learnt %d s windows: restore window_s, or delete the models (tombstone their ids in the models topic and the trainer state topic) to restart them: %w",
				cfg.WindowS, was, errWindowChanged))
			continue
		}
		upd, err := l.Apply(f, v)
		if errors.Is(err, train.ErrFeatureMismatch) {
			// A newer feature set (an upgraded cleaner) replaces the learner; an older or a different one stays
			// rejected, with Upgrade's reason.
			from := l.FeatureSetVersion()
			var next *train.Learner
			if next, upd, err = l.Upgrade(f, v); err == nil && next != l {
				l = next
				p.metrics.upgrades.Inc()
				p.log.Info("feature set upgraded; the model restarts with the new features", zap.String("model", key),
					zap.Int("from", from), zap.Int("to", next.FeatureSetVersion()), zap.Uint64("version", upd.Version),
					zap.Time("window", upd.Window))
			}
		}
		if err != nil {
			r := greenwavev1.RejectReason_REJECT_REASON_MALFORMED
			if errors.Is(err, train.ErrFeatureMismatch) || errors.Is(err, train.ErrKeyMismatch) {
				r = greenwavev1.RejectReason_REJECT_REASON_INCONSISTENT
			}
			fail(v.ApproachID, r, err)
			continue
		}
		// A new learner joins the partition only once it applied a window: a learner made from a bad frame
		// would otherwise pin its feature set on the approach. The same holds for an upgraded one, whose first
		// snapshot must be a window newer than its predecessor's last.
		p.learners[key] = l
		if upd.Skipped {
			p.metrics.skipped.Inc()
			continue
		}
		applied = append(applied, v.ApproachID)
		p.eventTime = max(p.eventTime, f.WindowEnd.Unix())
		p.metrics.applied.Inc()
		p.observe(key, upd)
		p.dirty[key], p.unserved[key] = true, true
		due := p.publishDue(key, f.WindowEnd.Unix(), upd)
		p.forecasting[key] = canForecast(upd)
		if due {
			outs, err := p.publish(key)
			if err != nil {
				return nil, err
			}
			published = append(published, outs...)
		}
	}
	if len(applied) > 0 {
		p.status.applied(p.id, f.IntersectionID, f.WindowStart, cfg, applied)
	}
	if len(failed) > 0 {
		detail := strings.Join(failed, "; ")
		if len(applied) > 0 {
			detail += fmt.Sprintf(" (approaches %s of the frame were applied)", strings.Join(applied, ", "))
		}
		r := &rejection{cause: cause, reason: reason, detail: fmt.Sprintf("frame %s: %s", fp.GetEventId(), detail)}
		p.rejected(f.IntersectionID, f.WindowStart, r)
		return published, r.reject(fp.GetEventId())
	}
	return published, nil
}

// observe counts and logs what an applied window did to the models of one approach.
func (p *partition) observe(key string, upd train.Update) {
	for _, h := range upd.Horizons {
		hs := strconv.FormatInt(int64(h.Horizon/time.Second), 10)
		// The series exist from the horizon's first window, at 0: a counter that appears only with its first
		// increment hides that increment from rate() and increase(), and the drift alert would miss it.
		promotions, drifts := p.metrics.promotions.WithLabelValues(hs), p.metrics.drifts.WithLabelValues(hs)
		if h.Promoted {
			promotions.Inc()
			p.log.Info("candidate promoted", zap.String("model", key), zap.Duration("horizon", h.Horizon),
				zap.String("from", h.PromotedFrom), zap.String("to", h.PromotedTo), zap.Time("window", upd.Window))
		}
		if h.Drift {
			drifts.Inc()
			p.log.Warn("drift detected; covariance reset", zap.String("model", key), zap.Duration("horizon", h.Horizon),
				zap.Time("window", upd.Window))
		}
	}
}

// Close is the partition's stream.WithClose, called when the partition is revoked. The models leave this
// instance's evaluation metrics: the instance that takes the partition over reports them.
func (p *partition) Close() error {
	var ids []string
	for key, l := range p.learners {
		in, ap, _ := strings.Cut(key, "/")
		cfg := l.Config()
		for _, h := range cfg.Horizons {
			ids = append(ids, train.ModelID(in, ap, h, cfg.Target))
		}
	}
	p.metrics.evals.remove(ids)
	p.status.forget(p.id)
	return nil
}
