package trainer

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/greenwave-city/greenwave/pkg/kafkaconn"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/topics"
	"github.com/greenwave-city/greenwave/pkg/train"
	"github.com/greenwave-city/greenwave/pkg/wire"
)

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

// sameTarget reports whether two target names are the same, the empty one being flow.
func sameTarget(a, b string) bool {
	if a == "" {
		a = train.TargetFlow
	}
	if b == "" {
		b = train.TargetFlow
	}
	return a == b
}

// add records one snapshot; a tombstone (nil s) removes the model with the given id.
func (rs *restoreSet) add(id string, s *train.Snapshot) {
	if s == nil {
		if ref, ok := rs.ids[id]; ok {
			delete(rs.learners[ref.key], ref.horizon)
		}
		return
	}
	if !sameTarget(s.Target, rs.base.Target) {
		// Another trainer's model (TRAINER_TARGET): the changelog is shared by the trainers of every target.
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

// restorePartition reads the partition of the trainer's changelog to its end and returns the partition handler
// with every learner restored. It reads the models topic's partition first: before the changelog existed, the
// models topic held the complete snapshots, and a trainer upgraded from that code restores them once (served
// snapshots there are skipped; the changelog's newer versions win). A learner that cannot be restored
// (configuration changed, undecodable snapshot) restarts from scratch, loudly: it is logged and counted in
// greenwave_trainer_restore_failures_total.
func restorePartition(ctx context.Context, kafkaConn kafkaconn.Conn, part, partitions int, cfg train.Config, names topics.Names, m *metrics, log *zap.Logger) (*partition, error) {
	rs := newRestoreSet(cfg)
	for _, topic := range []string{names.Models, names.TrainerState} {
		err := stream.ReadPartition(ctx, kafkaConn, topic, part, func(msg kafka.Message) error {
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
				// The size the learner's next checkpoint writes, as its restored records are not kept.
				if _, n, err := p.snapshotBytes(snaps); err == nil {
					p.stateBytes[key] = n
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
