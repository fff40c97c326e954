package trainer

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/greenwave-city/greenwave/pkg/features"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/train"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// Causes of a rejected frame or vector: the label of greenwave_trainer_frames_rejected_total and
// IntersectionTrainingStatus.last_rejection_cause. Each names what to fix.
const (
	// causeHorizons: TRAINER_HORIZONS are not multiples of the intersection's window.
	causeHorizons = "horizons_do_not_fit_window"
	// causeWindowChanged: the intersection's window differs from the one its models were trained on.
	causeWindowChanged = "window_changed"
	// causeWindow: the frame's window is not a positive whole number of seconds, or not aligned.
	causeWindow = "bad_window"
	// causeFeatureSet: the frame's feature set differs from the model's and does not upgrade it.
	causeFeatureSet = "feature_set_mismatch"
	// causeVector: a vector that cannot be applied (non-finite or huge features, no capacity).
	causeVector = "invalid_vector"
	// causeFrame: a frame that cannot be read (undecodable, newer schema, missing or bad ids, wrong partition).
	causeFrame = "invalid_frame"
)

// windowConfig is the learners' configuration for one window length, or why there is none.
type windowConfig struct {
	cfg train.Config
	err error
}

// configFor returns the learners' configuration for frame f's window: train.ConfigFor(base, window), the rule
// greenwave eval applies to the topology's window. The window is learnt from the frame (window_end −
// window_start), which the cleaner derives from the topology, so every intersection gets its own.
func (p *partition) configFor(f features.Frame) (train.Config, *rejection) {
	d := f.WindowEnd.Sub(f.WindowStart)
	if d <= 0 || d%time.Second != 0 || d > 7*24*time.Hour {
		return train.Config{}, &rejection{cause: causeWindow, reason: greenwavev1.RejectReason_REJECT_REASON_MALFORMED,
			detail: fmt.Sprintf("frame window [%v, %v) is not a positive whole number of seconds up to a week (the cleaner derives it from the topology's window_s)",
				f.WindowStart, f.WindowEnd)}
	}
	ws := int(d / time.Second)
	if err := train.CheckWindow(ws); err != nil {
		return train.Config{}, &rejection{cause: causeWindow, reason: greenwavev1.RejectReason_REJECT_REASON_MALFORMED,
			detail: fmt.Sprintf("frame window [%v, %v): %v (the cleaner derives it from the topology's window_s)", f.WindowStart, f.WindowEnd, err)}
	}
	wc, ok := p.configs[ws]
	if !ok {
		wc.cfg, wc.err = train.ConfigFor(p.cfg, ws)
		p.configs[ws] = wc
	}
	if wc.err != nil {
		return train.Config{}, &rejection{cause: causeHorizons, reason: greenwavev1.RejectReason_REJECT_REASON_INCONSISTENT, key: fmt.Sprint(ws),
			detail: fmt.Sprintf("TRAINER_HORIZONS=%s does not fit intersection %s's %d s window (topology window_s): %v; set TRAINER_HORIZONS to multiples of %d s, or to auto",
				train.FormatHorizons(p.cfg.Horizons), f.IntersectionID, ws, train.OneLine(wc.err), ws)}
	}
	return wc.cfg, nil
}

// rejection is why the trainer cannot use a frame or one of its vectors.
type rejection struct {
	cause  string
	reason greenwavev1.RejectReason
	detail string
	// key distinguishes problems of one cause that need separate log lines (e.g. the window length).
	key string
}

func (r *rejection) reject(eventID string) *stream.RejectError {
	rej := stream.Reject(r.reason, "%s", r.detail)
	rej.EventID = eventID
	return rej
}

// rejected counts and records a rejection for intersection in (empty when unknown), and logs it the first time
// its cause (and key) is seen in this partition: a misconfiguration rejects every frame, and one line says it.
func (p *partition) rejected(in string, window time.Time, r *rejection) {
	p.metrics.rejected.WithLabelValues(r.cause).Inc()
	p.status.reject(p.id, in, window, r)
	k := r.cause + "/" + r.key
	if p.logged[k] {
		return
	}
	p.logged[k] = true
	p.log.Error("trainer cannot use frames; they are dead-lettered (logged once per cause; see greenwave_trainer_frames_rejected_total and greenwave models list)",
		zap.String("cause", r.cause), zap.String("intersection", in), zap.Int("partition", p.id), zap.String("detail", r.detail))
}

// statusBoard keeps, per intersection this instance trains, what ListModels reports about missing models: the
// window and horizons of its learners, the vectors applied and the frames rejected with the last reason. It is
// safe for concurrent use: partitions write it, the API reads it.
type statusBoard struct {
	mu sync.Mutex
	m  map[string]*intersectionStatus
}

type intersectionStatus struct {
	partition int
	st        *greenwavev1.IntersectionTrainingStatus
}

func newStatusBoard() *statusBoard { return &statusBoard{m: map[string]*intersectionStatus{}} }

func (b *statusBoard) get(part int, in string) *greenwavev1.IntersectionTrainingStatus {
	s := b.m[in]
	if s == nil {
		s = &intersectionStatus{partition: part, st: &greenwavev1.IntersectionTrainingStatus{IntersectionId: in}}
		b.m[in] = s
	}
	s.partition = part
	return s.st
}

// applied records vectors of a frame applied with cfg.
func (b *statusBoard) applied(part int, in string, window time.Time, cfg train.Config, approaches []string) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.get(part, in)
	st.WindowS = uint32(cfg.WindowS)
	st.HorizonsS = st.HorizonsS[:0]
	for _, h := range cfg.Horizons {
		st.HorizonsS = append(st.HorizonsS, uint32(h/time.Second))
	}
	st.VectorsApplied += uint64(len(approaches))
	st.LastAppliedWindow = timestamppb.New(window)
	for _, a := range approaches {
		i := sort.SearchStrings(st.Approaches, a)
		if i == len(st.Approaches) || st.Approaches[i] != a {
			st.Approaches = append(st.Approaches, "")
			copy(st.Approaches[i+1:], st.Approaches[i:])
			st.Approaches[i] = a
		}
	}
}

// reject records a rejection.
func (b *statusBoard) reject(part int, in string, window time.Time, r *rejection) {
	if b == nil || in == "" {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.get(part, in)
	st.Rejected++
	st.LastRejectionCause, st.LastRejection = r.cause, r.detail
	if !window.IsZero() {
		st.LastRejectedWindow = timestamppb.New(window)
	}
}

// forget drops the intersections of a revoked partition: the instance that takes it over reports them.
func (b *statusBoard) forget(part int) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for in, s := range b.m {
		if s.partition == part {
			delete(b.m, in)
		}
	}
}

// list returns copies of the statuses of the given intersections (all when none), in id order.
func (b *statusBoard) list(ids []string) []*greenwavev1.IntersectionTrainingStatus {
	if b == nil {
		return nil
	}
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []*greenwavev1.IntersectionTrainingStatus
	for in, s := range b.m {
		if len(want) == 0 || want[in] {
			out = append(out, proto.CloneOf(s.st))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetIntersectionId() < out[j].GetIntersectionId() })
	return out
}

// newRejectedCounter is greenwave_trainer_frames_rejected_total.
func newRejectedCounter() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "greenwave", Subsystem: "trainer", Name: "frames_rejected_total",
		Help: "Feature frames (or approach vectors of a frame) the trainer dead-lettered, by cause: horizons_do_not_fit_window (fix TRAINER_HORIZONS), window_changed, bad_window, feature_set_mismatch, invalid_vector, invalid_frame."},
		[]string{"cause"})
}

// errWindowChanged marks a vector whose intersection's window differs from its learner's.
var errWindowChanged = errors.New("window changed")
