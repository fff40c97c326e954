// Package ntcip is `greenwave ntcip`: it watches signal-control's plans (gRPC WatchPlans) and writes each
// intersection's plan to its field controller as NTCIP 1202 coordination objects over SNMP, then calls the
// pattern with systemPatternControl (docs/ntcip.md). The mapping from plan to objects is pkg/ntcip; this package
// is the configuration, the SNMP conversation and the loops.
//
// Every controller has its own goroutine and mailbox, so a slow or unreachable controller delays no other. A
// mailbox holds the newest plan only: a plan that arrives while an older one is being written or waits for its
// retry replaces it (counted as coalesced).
package ntcip

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/greenwave-city/greenwave/pkg/ntcip"
	"github.com/greenwave-city/greenwave/pkg/signal"
	"github.com/greenwave-city/greenwave/pkg/topology"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// Refusal reasons of a plan (never written), the reason label of greenwave_ntcip_plans_refused_total.
const (
	// RefusedInvalid: the plan fails signal.Validate against the topology.
	RefusedInvalid = "invalid"
	// RefusedPhaseMapping: the plan's phases are not the mapped ones.
	RefusedPhaseMapping = "phase_mapping"
	// RefusedUnrepresentable: the plan does not fit the MIB's whole seconds and ranges (ntcip.ErrUnrepresentable).
	RefusedUnrepresentable = "unrepresentable"
)

// Loaded is a checked configuration with its topology and secrets, ready to run.
type Loaded struct {
	Config Config
	// Intersections are the configured controllers' intersections, by id.
	Intersections map[string]topology.Intersection
	creds         map[string]snmpSecrets
}

// Load reads the configuration file, its topology and the controllers' secrets, and checks them all. Relative
// paths (topology, secret files) are relative to the configuration file's directory.
func Load(path string, lookup func(string) (string, bool), readFile func(string) ([]byte, error)) (*Loaded, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, fmt.Errorf("read ntcip config: %w", err)
	}
	cfg, err := ParseConfig(path, data)
	if err != nil {
		return nil, err
	}
	rel := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(filepath.Dir(path), p)
	}
	topoData, err := readFile(rel(cfg.Topology))
	if err != nil {
		return nil, fmt.Errorf("ntcip config %s: topology: %w", path, err)
	}
	topo, err := topology.Parse(topoData)
	if err != nil {
		return nil, fmt.Errorf("ntcip config %s: topology %s: %w", path, cfg.Topology, err)
	}
	if err := cfg.CheckTopology(path, data, topo); err != nil {
		return nil, err
	}
	l := &Loaded{Config: cfg, Intersections: map[string]topology.Intersection{}, creds: map[string]snmpSecrets{}}
	for _, in := range topo.Intersections {
		l.Intersections[in.ID] = in
	}
	relFile := func(p string) ([]byte, error) { return readFile(rel(p)) }
	for i, ct := range cfg.Controllers {
		var cr snmpSecrets
		for _, s := range []struct {
			field string
			sec   *Secret
			dst   *string
		}{{"community", ct.SNMP.Community, &cr.community}, {"auth_pass", ct.SNMP.AuthPass, &cr.authPass}, {"priv_pass", ct.SNMP.PrivPass, &cr.privPass}} {
			v, err := s.sec.Read(lookup, relFile)
			if err != nil {
				return nil, fmt.Errorf("ntcip config %s: controllers.%d.snmp.%s: %w", path, i, s.field, err)
			}
			*s.dst = v
		}
		if ct.SNMP.Version == "v3" && (len(cr.authPass) < 8 || len(cr.privPass) < 8) {
			return nil, fmt.Errorf("ntcip config %s: controllers.%d.snmp: SNMPv3 pass phrases must have at least 8 characters (RFC 3414)", path, i)
		}
		l.creds[ct.Intersection] = cr
	}
	return l, nil
}

// Metrics are the adapter's Prometheus metrics, labelled by intersection.
type Metrics struct {
	received, activated, unchanged, coalesced *prometheus.CounterVec
	refused, failures                         *prometheus.CounterVec
	pattern, lastActivation                   *prometheus.GaugeVec
	holds, released                           *prometheus.CounterVec
	watchRestarts                             prometheus.Counter
}

// NewMetrics registers the metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "greenwave", Subsystem: "ntcip", Name: name, Help: help}, labels)
		reg.MustRegister(c)
		return c
	}
	gauge := func(name, help string) *prometheus.GaugeVec {
		g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "greenwave", Subsystem: "ntcip", Name: name, Help: help}, []string{"intersection"})
		reg.MustRegister(g)
		return g
	}
	m := &Metrics{
		received:       counter("plans_received_total", "Plans received from signal-control.", "intersection"),
		activated:      counter("plans_activated_total", "Plans written, read back and activated on the controller.", "intersection"),
		unchanged:      counter("plans_unchanged_total", "Plans equal (in NTCIP objects) to the one last activated: not written again.", "intersection"),
		coalesced:      counter("plans_coalesced_total", "Plans replaced by a newer one before they were written.", "intersection"),
		refused:        counter("plans_refused_total", "Plans never written: invalid, phases not matching the mapping, or unrepresentable.", "intersection", "reason"),
		failures:       counter("write_failures_total", "Failed attempts to write and activate a plan (retried with back-off).", "intersection", "reason", "stage"),
		holds:          counter("holds_total", "systemPatternControl sent again to keep the controller on Greenwave's pattern (hold_interval).", "intersection"),
		released:       counter("control_lost_total", "Times the controller was found commanded to another pattern than Greenwave's at a hold.", "intersection"),
		pattern:        gauge("active_pattern", "Pattern number Greenwave last activated on the controller (0: none)."),
		lastActivation: gauge("last_activation_timestamp_seconds", "When Greenwave last activated a plan on the controller."),
		watchRestarts: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "greenwave", Subsystem: "ntcip", Name: "watch_restarts_total",
			Help: "WatchPlans streams that ended and were opened again."}),
	}
	reg.MustRegister(m.watchRestarts)
	return m
}

// Outcome is what became of one attempt with a plan, for logs and tests.
type Outcome struct {
	Intersection, PlanID string
	// Kind is "activated", "unchanged", "refused" or "failed".
	Kind string
	// Reason is the refusal or failure reason ("" otherwise); Err the error.
	Reason string
	Err    error
	// Timing is what was activated (Kind "activated").
	Timing ntcip.Timing
}

// Options configure Run.
type Options struct {
	// SignalControl is signal-control's gRPC address; Credentials its transport credentials (nil: plaintext).
	SignalControl string
	Credentials   credentials.TransportCredentials
	Logger        *zap.Logger
	Metrics       *Metrics
	// OnOutcome, when set, is called after every attempt, from the controller's goroutine.
	OnOutcome func(Outcome)
	// After is time.After; tests shorten or control the back-off through it.
	After func(time.Duration) <-chan time.Time
}

// Run watches plans until ctx ends, reconnecting with back-off when the stream ends, and writes them to the
// controllers. It returns nil when ctx ends.
func Run(ctx context.Context, l *Loaded, o Options) error {
	if o.After == nil {
		o.After = time.After
	}
	creds := o.Credentials
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	cc, err := grpc.NewClient(o.SignalControl, grpc.WithTransportCredentials(creds))
	if err != nil {
		return fmt.Errorf("dial signal-control %s: %w", o.SignalControl, err)
	}
	defer cc.Close()
	ctls := map[string]*controller{}
	g, gctx := errgroup.WithContext(ctx)
	var ids []string
	for _, ct := range l.Config.Controllers {
		c := &controller{
			cfg: ct, in: l.Intersections[ct.Intersection], creds: l.creds[ct.Intersection], retry: l.Config.Retry,
			log: o.Logger.With(zap.String("intersection", ct.Intersection), zap.String("controller", ct.Address)),
			m:   o.Metrics, onOutcome: o.OnOutcome, after: o.After,
			plans: make(chan *greenwavev1.SignalPlan, 1),
		}
		ctls[ct.Intersection] = c
		ids = append(ids, ct.Intersection)
		g.Go(func() error { c.run(gctx); return nil })
	}
	g.Go(func() error {
		return watch(gctx, greenwavev1.NewSignalControlServiceClient(cc), ids, ctls, l.Config.Retry, o)
	})
	err = g.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// watch keeps a WatchPlans stream open and hands every plan to its controller's mailbox.
func watch(ctx context.Context, client greenwavev1.SignalControlServiceClient, ids []string, ctls map[string]*controller, retry Retry, o Options) error {
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		st, err := client.WatchPlans(ctx, &greenwavev1.WatchPlansRequest{IntersectionIds: ids})
		for err == nil {
			var resp *greenwavev1.WatchPlansResponse
			if resp, err = st.Recv(); err != nil {
				break
			}
			backoff = 0
			if c := ctls[resp.GetPlan().GetIntersectionId()]; c != nil {
				c.offer(resp.GetPlan())
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		o.Metrics.watchRestarts.Inc()
		backoff = nextBackoff(backoff, retry)
		o.Logger.Warn("plan stream ended; watching again", zap.String("signal_control", o.SignalControl), zap.Duration("after", backoff), zap.Error(err))
		select {
		case <-ctx.Done():
		case <-o.After(backoff):
		}
	}
	return nil
}

func nextBackoff(d time.Duration, r Retry) time.Duration {
	if d == 0 {
		return r.Initial
	}
	return min(2*d, r.Max)
}

// controller is one controller's goroutine and mailbox.
type controller struct {
	cfg       Controller
	in        topology.Intersection
	creds     snmpSecrets
	retry     Retry
	log       *zap.Logger
	m         *Metrics
	onOutcome func(Outcome)
	after     func(time.Duration) <-chan time.Time
	plans     chan *greenwavev1.SignalPlan
	// last is what was last activated (pattern and split numbers cleared), to skip writing an equal plan, and
	// lastPattern the pattern it was activated in; nil and 0 when Greenwave does not hold the controller.
	last        *ntcip.Timing
	lastPattern int
	// hold is Config.HoldInterval: how often systemPatternControl is sent again (0: never).
	hold time.Duration
}

// offer puts p into the mailbox, replacing a plan not yet taken. Only the watch goroutine calls it.
func (c *controller) offer(p *greenwavev1.SignalPlan) {
	c.m.received.WithLabelValues(c.cfg.Intersection).Inc()
	select {
	case c.plans <- p:
		return
	default:
	}
	select {
	case <-c.plans:
		c.m.coalesced.WithLabelValues(c.cfg.Intersection).Inc()
	default: // taken meanwhile
	}
	c.plans <- p
}

func (c *controller) run(ctx context.Context) {
	var pending *greenwavev1.SignalPlan
	var wait, hold <-chan time.Time
	backoff := time.Duration(0)
	for {
		if pending != nil && wait == nil {
			if c.attempt(ctx, pending) {
				pending, backoff = nil, 0
			} else {
				backoff = nextBackoff(backoff, c.retry)
				wait = c.after(backoff)
			}
		}
		if hold == nil && c.hold > 0 && c.lastPattern != 0 {
			hold = c.after(c.hold)
		}
		select {
		case <-ctx.Done():
			return
		case p := <-c.plans:
			if pending != nil {
				c.m.coalesced.WithLabelValues(c.cfg.Intersection).Inc()
			}
			pending = p
		case <-wait:
			wait = nil
		case <-hold:
			hold = nil
			c.refresh(ctx)
		}
	}
}

// refresh sends systemPatternControl again while the controller still commands Greenwave's pattern, so that
// the controller's backup timer (unitBackupTime), which hands it back to its own schedule when the central
// system falls silent, does not run out while Greenwave is running. A controller commanded otherwise (backup
// timer expired, an operator at the controller or another central system) is not taken back: Greenwave lets go
// until its next plan.
func (c *controller) refresh(ctx context.Context) {
	fail := func(err error) {
		reason, stage := ReasonUnreachable, "hold"
		var we *WriteError
		if errors.As(err, &we) {
			reason = we.Reason
		}
		c.m.failures.WithLabelValues(c.cfg.Intersection, reason, stage).Inc()
		c.log.Warn("could not hold the controller on Greenwave's pattern; trying again at the next hold interval", zap.Error(err))
	}
	s, err := openSession(ctx, c.cfg, c.creds)
	if err != nil {
		fail(err)
		return
	}
	defer s.Close()
	cur, err := s.get("hold", []string{ntcip.OIDSystemPatternControl})
	if err != nil {
		fail(err)
		return
	}
	if commanded := cur[ntcip.OIDSystemPatternControl]; commanded != c.lastPattern {
		c.m.released.WithLabelValues(c.cfg.Intersection).Inc()
		c.m.pattern.WithLabelValues(c.cfg.Intersection).Set(0)
		c.log.Warn("the controller no longer runs Greenwave's pattern; not taking it back before the next plan",
			zap.Int("greenwave_pattern", c.lastPattern), zap.Int("commanded", commanded))
		c.last, c.lastPattern = nil, 0
		return
	}
	act := []ntcip.Var{{OID: ntcip.OIDSystemPatternControl, Value: c.lastPattern}}
	if err := s.set("hold", act); err != nil {
		fail(err)
		return
	}
	c.m.holds.WithLabelValues(c.cfg.Intersection).Inc()
}

// attempt refuses, skips or writes p; it returns false when the write failed and should be retried.
func (c *controller) attempt(ctx context.Context, p *greenwavev1.SignalPlan) bool {
	out := Outcome{Intersection: c.cfg.Intersection, PlanID: p.GetPlanId()}
	defer func() {
		if c.onOutcome != nil {
			c.onOutcome(out)
		}
	}()
	refuse := func(reason string, err error) bool {
		out.Kind, out.Reason, out.Err = "refused", reason, err
		c.m.refused.WithLabelValues(c.cfg.Intersection, reason).Inc()
		c.log.Error("plan refused, not written; the controller stays on its plan", zap.String("plan_id", p.GetPlanId()),
			zap.String("reason", reason), zap.Error(err))
		return true
	}
	plan := wire.Plan(p)
	// The phase mapping first: a plan for other phases is a mapping problem even when Validate would reject it too.
	t, err := ntcip.Encode(c.in, c.cfg.Mapping(0), plan)
	if errors.Is(err, ntcip.ErrPhaseMapping) {
		return refuse(RefusedPhaseMapping, err)
	}
	if verr := signal.Validate(c.in, plan); verr != nil {
		return refuse(RefusedInvalid, verr)
	}
	if err != nil {
		return refuse(RefusedUnrepresentable, err)
	}
	bare := t
	bare.Pattern, bare.Split = 0, 0
	if c.last != nil && slices.Equal(c.last.Rows, bare.Rows) && c.last.CycleS == bare.CycleS && c.last.OffsetS == bare.OffsetS {
		out.Kind = "unchanged"
		c.m.unchanged.WithLabelValues(c.cfg.Intersection).Inc()
		return true
	}
	var checks phaseChecks
	if !c.cfg.SkipPhaseCheck {
		checks = phaseChecks{clearances: ntcip.Clearances(c.cfg.Mapping(0), plan), minGreenLimits: ntcip.MinimumGreenLimits(c.cfg.Mapping(0), plan, t)}
	}
	k, err := c.write(ctx, t, checks)
	if err != nil {
		out.Kind, out.Err = "failed", err
		var we *WriteError
		stage := "session"
		out.Reason = ReasonUnreachable
		if errors.As(err, &we) {
			out.Reason, stage = we.Reason, we.Stage
		}
		c.m.failures.WithLabelValues(c.cfg.Intersection, out.Reason, stage).Inc()
		c.log.Error("writing the plan failed, not activated; retrying with back-off", zap.String("plan_id", p.GetPlanId()),
			zap.String("reason", out.Reason), zap.String("stage", stage), zap.Error(err))
		return ctx.Err() != nil // a cancelled write is not retried
	}
	t.Pattern, t.Split = c.cfg.Slots[k].Pattern, c.cfg.Slots[k].Split
	out.Kind, out.Timing = "activated", t
	c.last, c.lastPattern = &bare, t.Pattern
	c.m.activated.WithLabelValues(c.cfg.Intersection).Inc()
	c.m.pattern.WithLabelValues(c.cfg.Intersection).Set(float64(t.Pattern))
	c.m.lastActivation.WithLabelValues(c.cfg.Intersection).SetToCurrentTime()
	c.log.Info("plan activated", zap.String("plan_id", p.GetPlanId()), zap.Int("pattern", t.Pattern), zap.Int("split", t.Split),
		zap.Int("cycle_s", t.CycleS), zap.Int("offset_s", t.OffsetS))
	return true
}

func (c *controller) write(ctx context.Context, t ntcip.Timing, checks phaseChecks) (int, error) {
	s, err := openSession(ctx, c.cfg, c.creds)
	if err != nil {
		return -1, &WriteError{Stage: "session", Reason: ReasonUnreachable, Err: err}
	}
	defer s.Close()
	return s.write(c.cfg.Slots, t, checks)
}
