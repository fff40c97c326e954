package predictor

import (
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/greenwave-city/greenwave/pkg/features"
	"github.com/greenwave-city/greenwave/pkg/train"
)

// Causes of a dead-lettered frame (greenwave_predictor_frames_rejected_total).
const (
	causeHorizons  = "horizons_do_not_fit_window"
	causeBadWindow = "bad_window"
)

// frameHorizons are the horizons predicted for a window length, or why the frame cannot be predicted.
type frameHorizons struct {
	horizons []time.Duration
	err      error
}

// horizonRule chooses the horizons of a frame by the trainer's rule (train.ConfigFor): the configured
// PREDICTOR_HORIZONS when given — they must fit the frame's window — else train.AutoHorizons of the window.
// Predictions then ask for exactly the models the trainer trains for that intersection. It is safe for
// concurrent use.
type horizonRule struct {
	configured []time.Duration // nil: auto
	mu         sync.Mutex
	byWindow   map[int]frameHorizons
}

func newHorizonRule(configured []time.Duration) *horizonRule {
	return &horizonRule{configured: configured, byWindow: map[int]frameHorizons{}}
}

// of returns the horizons for frame f's window. A nil rule is auto.
func (r *horizonRule) of(f features.Frame) ([]time.Duration, error) {
	if r == nil {
		return nil, fmt.Errorf("no horizon rule")
	}
	d := f.WindowEnd.Sub(f.WindowStart)
	if d <= 0 || d%time.Second != 0 || d > 7*24*time.Hour {
		return nil, fmt.Errorf("frame window [%v, %v) is not a positive whole number of seconds up to a week", f.WindowStart, f.WindowEnd)
	}
	ws := int(d / time.Second)
	r.mu.Lock()
	defer r.mu.Unlock()
	fh, ok := r.byWindow[ws]
	if !ok {
		base := train.BaseConfig()
		base.Horizons = r.configured
		var cfg train.Config
		if err := train.CheckWindow(ws); err != nil {
			fh.err = fmt.Errorf("frame window [%v, %v): %v (the cleaner derives it from the topology's window_s)", f.WindowStart, f.WindowEnd, err)
		} else if cfg, fh.err = train.ConfigFor(base, ws); fh.err != nil {
			fh.err = fmt.Errorf("PREDICTOR_HORIZONS=%s does not fit intersection %s's %d s window (topology window_s): %s; set PREDICTOR_HORIZONS (and TRAINER_HORIZONS) to multiples of %d s, or to auto",
				train.FormatHorizons(r.configured), f.IntersectionID, ws, train.OneLine(fh.err), ws)
		} else {
			fh.horizons = cfg.Horizons
		}
		r.byWindow[ws] = fh
	}
	return fh.horizons, fh.err
}

// rejections counts and logs, once per cause, the frames the predictor dead-letters because it cannot predict
// them: greenwave_predictor_frames_rejected_total by cause.
type rejections struct {
	counter *prometheus.CounterVec
	log     *zap.Logger
	mu      sync.Mutex
	logged  map[string]bool
}

func newRejections(reg prometheus.Registerer, log *zap.Logger) *rejections {
	r := &rejections{log: log, logged: map[string]bool{},
		counter: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "greenwave", Subsystem: "predictor", Name: "frames_rejected_total",
			Help: "Feature frames the predictor dead-lettered, by cause: horizons_do_not_fit_window (fix PREDICTOR_HORIZONS), bad_window."},
			[]string{"cause"})}
	reg.MustRegister(r.counter)
	return r
}

// add counts one rejection and logs it the first time its cause and key are seen.
func (r *rejections) add(cause, key, intersection, detail string) {
	if r == nil {
		return
	}
	r.counter.WithLabelValues(cause).Inc()
	r.mu.Lock()
	first := !r.logged[cause+"/"+key]
	r.logged[cause+"/"+key] = true
	r.mu.Unlock()
	if first {
		r.log.Error("predictor cannot use frames; they are dead-lettered (logged once per cause; see greenwave_predictor_frames_rejected_total)",
			zap.String("cause", cause), zap.String("intersection", intersection), zap.String("detail", detail))
	}
}
