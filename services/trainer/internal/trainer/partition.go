package trainer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
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
		stream.WithCheckpointDue(p.CheckpointDue), stream.WithClose(p.Close))
}

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

func newPartition(id, partitions int, cfg train.Config, names topics.Names, m *metrics, log *zap.Logger) *partition {
	return &partition{id: id, partitions: partitions, cfg: cfg, names: names, learners: map[string]*train.Learner{},
		dirty: map[string]bool{}, served: map[string]servedMark{}, unserved: map[string]bool{}, forecasting: map[string]bool{},
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

// servable reports whether the promoted candidate of a snapshot has its noise estimate, so that the model
// forecasts with an interval (train.Compile's readiness).
func servable(s *train.Snapshot) bool {
	for _, c := range s.Candidates {
		if c.Name == s.Promoted {
			return c.State != nil && c.State.Updates >= uint64(len(s.FeatureNames)+2)
		}
	}
	return false
}

// observe counts and logs what an applied window did to the models of one approach.
func (p *partition) observe(key string, upd train.Update) {
	for _, h := range upd.Horizons {
		hs := strconv.FormatInt(int64(h.Horizon/time.Second), 10)
		if h.Promoted {
			p.metrics.promotions.WithLabelValues(hs).Inc()
			p.log.Info("candidate promoted", zap.String("model", key), zap.Duration("horizon", h.Horizon),
				zap.String("from", h.PromotedFrom), zap.String("to", h.PromotedTo), zap.Time("window", upd.Window))
		}
		if h.Drift {
			p.metrics.drifts.WithLabelValues(hs).Inc()
			p.log.Warn("drift detected; covariance reset", zap.String("model", key), zap.Duration("horizon", h.Horizon),
				zap.Time("window", upd.Window))
		}
	}
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
		for _, s := range p.learners[k].Snapshots() {
			o, err := wire.EncodeModel(p.names.TrainerState, s)
			if err != nil {
				return nil, err
			}
			outs = append(outs, o)
		}
	}
	clear(p.dirty)
	p.checkpointed = p.eventTime
	return outs, nil
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

// horizonVersions are the snapshots of one model (one horizon of a learner) read from the changelog, by version.
type horizonVersions struct {
	latest    uint64
	byVersion map[uint64]*train.Snapshot
}

// restoreSet collects a partition's changelog and picks, per learner, a set of snapshots of one version.
//
// A checkpoint writes a learner's horizons as separate records. A crash can acknowledge some of them and not the
// others (they may straddle produce requests), leaving horizons at different versions; RestoreLearner needs one
// version for all. Every checkpoint writes all horizons of a learner, so the lowest of the horizons' latest
// versions was written for every horizon: restoring that version is exact, because the input offsets were
// committed no further than it covers, and the windows of the newer partial records are replayed. Only the
// versions from that floor up are kept, which bounds memory to what partial checkpoints left.
type restoreSet struct {
	base     train.Config
	learners map[string]map[uint32]*horizonVersions // by learner key, then horizon_s
	ids      map[string]modelRef                    // by model id, for tombstones
	// configs are the learners' configurations, fitted (train.ConfigFor) to the window their snapshots record.
	configs map[string]windowConfig
}

// modelRef locates a model in a restoreSet.
type modelRef struct {
	key     string
	horizon uint32
}

func newRestoreSet(base train.Config) *restoreSet {
	return &restoreSet{base: base, learners: map[string]map[uint32]*horizonVersions{}, ids: map[string]modelRef{},
		configs: map[string]windowConfig{}}
}

// snapshotWindow is the window length a snapshot was trained on: its updated_at (the last applied window's
// end) minus its last applied window's start.
func snapshotWindow(s *train.Snapshot) (int, error) {
	w, end := s.LastAppliedWindow, s.UpdatedAt
	if w == nil || end == nil || end.Seconds <= w.Seconds {
		return 0, fmt.Errorf("snapshot %q records no window (last applied %v, updated at %v)", s.ModelID, w, end)
	}
	return int(end.Seconds - w.Seconds), nil
}

// horizons returns the horizons of learner key's configuration, or why it has none.
func (rs *restoreSet) horizons(key string) ([]uint32, error) {
	wc, ok := rs.configs[key]
	if !ok {
		return nil, errors.New("no snapshot records the window")
	}
	if wc.err != nil {
		return nil, wc.err
	}
	out := make([]uint32, len(wc.cfg.Horizons))
	for i, h := range wc.cfg.Horizons {
		out[i] = uint32(h / time.Second)
	}
	return out, nil
}

// add records one snapshot; a tombstone (nil s) removes the model with the given id.
func (rs *restoreSet) add(id string, s *train.Snapshot) {
	if s == nil {
		if ref, ok := rs.ids[id]; ok {
			delete(rs.learners[ref.key], ref.horizon)
		}
		return
	}
	key := learnerKey(s.IntersectionID, s.ApproachID)
	rs.ids[s.ModelID] = modelRef{key, s.HorizonS}
	if ws, err := snapshotWindow(s); err == nil {
		if wc, ok := rs.configs[key]; !ok || wc.err != nil || wc.cfg.WindowS != ws {
			wc.cfg, wc.err = train.ConfigFor(rs.base, ws)
			if wc.err != nil {
				wc.err = fmt.Errorf("TRAINER_HORIZONS=%s does not fit the models' %d s window: %w", train.FormatHorizons(rs.base.Horizons), ws, wc.err)
			}
			rs.configs[key] = wc
		}
	}
	hs := rs.learners[key]
	if hs == nil {
		hs = map[uint32]*horizonVersions{}
		rs.learners[key] = hs
	}
	hv := hs[s.HorizonS]
	if hv == nil {
		hv = &horizonVersions{byVersion: map[uint64]*train.Snapshot{}}
		hs[s.HorizonS] = hv
	}
	hv.byVersion[s.Version] = s
	hv.latest = max(hv.latest, s.Version)
	if floor, ok := rs.floor(key, hs); ok {
		for _, x := range hs {
			for v := range x.byVersion {
				if v < floor {
					delete(x.byVersion, v)
				}
			}
		}
	}
}

// floor is the lowest latest version over the configured horizons, when every one of them was seen.
func (rs *restoreSet) floor(key string, hs map[uint32]*horizonVersions) (uint64, bool) {
	horizons, err := rs.horizons(key)
	if err != nil {
		return 0, false
	}
	var floor uint64
	for i, h := range horizons {
		hv := hs[h]
		if hv == nil {
			return 0, false
		}
		if i == 0 || hv.latest < floor {
			floor = hv.latest
		}
	}
	return floor, true
}

// pick returns, per learner key, the snapshots of the floor version in configured horizon order and the
// learner's configuration, or the reason the learner cannot be restored.
func (rs *restoreSet) pick(key string) ([]*train.Snapshot, train.Config, error) {
	hs := rs.learners[key]
	horizons, err := rs.horizons(key)
	if err != nil {
		return nil, train.Config{}, err
	}
	floor, ok := rs.floor(key, hs)
	if !ok {
		var have []string
		for h := range hs {
			have = append(have, strconv.FormatUint(uint64(h), 10))
		}
		sort.Strings(have)
		return nil, train.Config{}, fmt.Errorf("snapshots for horizons [%s] s, configured %v s", strings.Join(have, " "), horizons)
	}
	out := make([]*train.Snapshot, 0, len(horizons))
	for _, h := range horizons {
		s := hs[h].byVersion[floor]
		if s == nil {
			return nil, train.Config{}, fmt.Errorf("no snapshot of horizon %d s at version %d (the newest written for every horizon)", h, floor)
		}
		out = append(out, s)
	}
	return out, rs.configs[key].cfg, nil
}

// keys returns the learner keys in order.
func (rs *restoreSet) keys() []string {
	out := make([]string, 0, len(rs.learners))
	for k, hs := range rs.learners {
		if len(hs) > 0 {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// restorePartition reads the partition of the trainer's changelog to its end and returns the partition handler
// with every learner restored. It reads the models topic's partition first: before the changelog existed, the
// models topic held the complete snapshots, and a trainer upgraded from that code restores them once (served
// snapshots there are skipped; the changelog's newer versions win). A learner that cannot be restored
// (configuration changed, undecodable snapshot) restarts from scratch, loudly: it is logged and counted in
// greenwave_trainer_restore_failures_total.
func restorePartition(ctx context.Context, brokers []string, part, partitions int, cfg train.Config, names topics.Names, m *metrics, log *zap.Logger) (*partition, error) {
	rs := newRestoreSet(cfg)
	for _, topic := range []string{names.Models, names.TrainerState} {
		err := stream.ReadPartition(ctx, brokers, topic, part, func(msg kafka.Message) error {
			if msg.Value == nil {
				rs.add(string(msg.Key), nil)
				return nil
			}
			s, err := wire.DecodeModel(msg)
			if err != nil {
				// The learner restores from an older complete version or from scratch; crashing here would only
				// crash-loop on the same record.
				m.restoreFailures.Inc()
				log.Error("undecodable model snapshot skipped", zap.String("topic", topic), zap.ByteString("key", msg.Key),
					zap.Int64("offset", msg.Offset), zap.Error(err))
				return nil
			}
			if !s.Served {
				rs.add(s.ModelID, s)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("restore models of partition %d from %s: %w", part, topic, err)
		}
	}
	p := newPartition(part, partitions, cfg, names, m, log)
	for _, key := range rs.keys() {
		snaps, lcfg, err := rs.pick(key)
		if err == nil {
			var l *train.Learner
			first := snaps[0]
			if l, err = train.RestoreLearner(first.IntersectionID, first.ApproachID, snaps, lcfg); err == nil {
				p.learners[key] = l
				p.served[key] = servedMark{end: first.UpdatedAt.Unix(), ready: servable(first)}
				p.forecasting[key] = servable(first)
				p.eventTime = max(p.eventTime, first.UpdatedAt.Unix())
				for _, s := range snaps {
					m.evals.set(s)
				}
				continue
			}
		}
		m.restoreFailures.Inc()
		log.Error("cannot restore model; it restarts from scratch", zap.String("model", key), zap.Error(err))
	}
	p.checkpointed = p.eventTime
	log.Info("partition models restored", zap.Int("partition", part), zap.Int("approaches", len(p.learners)))
	return p, nil
}
