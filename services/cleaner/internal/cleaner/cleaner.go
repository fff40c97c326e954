// Package cleaner wires the cleaning core (pkg/clean) to Kafka: raw readings in, feature frames and dead letters
// out, per-intersection state snapshotted to a compacted changelog before input offsets are committed.
package cleaner

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"

	"github.com/greenwave-city/greenwave/pkg/app"
	"github.com/greenwave-city/greenwave/pkg/clean"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/topics"
	"github.com/greenwave-city/greenwave/pkg/topology"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// Config is the cleaner's configuration.
type Config struct {
	app.Common
	IdleTimeout     time.Duration `env:"CLEANER_IDLE_TIMEOUT" default:"0s" help:"processing-time idle timeout after which a quiet partition's windows are closed (0 disables; enabling it trades replay determinism for liveness with sparse detectors)"`
	AllowedLateness time.Duration `env:"CLEANER_ALLOWED_LATENESS" default:"5m" help:"how far behind the newest event time a reading may arrive and still count"`
	WeatherMaxAge   time.Duration `env:"CLEANER_WEATHER_MAX_AGE" default:"2h" help:"oldest weather observation joined to a window"`
	Holidays        []string      `env:"CLEANER_HOLIDAYS" default:"" help:"public holidays as YYYY-MM-DD, comma-separated, for the holiday feature"`
	TimeZone        string        `env:"CLEANER_TIME_ZONE" default:"UTC" help:"IANA time zone of the intersections, for time-of-day and weekday features"`
	MaxBatch        int           `env:"CLEANER_MAX_BATCH" default:"500" help:"records handled before outputs are flushed and offsets committed"`
}

// cleanConfig builds the core configuration.
func (c *Config) cleanConfig() (clean.Config, error) {
	cc := clean.DefaultConfig()
	cc.AllowedLateness = c.AllowedLateness
	cc.WeatherMaxAge = c.WeatherMaxAge
	loc, err := time.LoadLocation(c.TimeZone)
	if err != nil {
		return cc, fmt.Errorf("CLEANER_TIME_ZONE: %w", err)
	}
	cc.Location = loc
	for _, s := range c.Holidays {
		d, err := clean.ParseDate(s)
		if err != nil {
			return cc, fmt.Errorf("CLEANER_HOLIDAYS: %w", err)
		}
		cc.Holidays = append(cc.Holidays, d)
	}
	if err := cc.Validate(); err != nil {
		return cc, err
	}
	return cc, nil
}

// Validate reports every problem.
func (c *Config) Validate() []string {
	p := c.Common.Validate()
	if _, err := c.cleanConfig(); err != nil {
		p = append(p, err.Error())
	}
	return p
}

// weatherTable guards the shared global weather table: one goroutine follows the weather topic, the partition
// goroutines look it up.
type weatherTable struct {
	mu sync.RWMutex
	t  *clean.WeatherTable
}

func (w *weatherTable) Lookup(station string, at time.Time) (clean.Weather, bool) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.t.Lookup(station, at)
}

func (w *weatherTable) add(x clean.Weather) *clean.WeatherRejection {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.t.Add(x)
}

type metrics struct {
	frames   prometheus.Counter
	rejected *prometheus.CounterVec
	dropped  prometheus.Counter
	weather  *prometheus.CounterVec
	health   *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		frames: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "greenwave", Subsystem: "cleaner", Name: "frames_total",
			Help: "Intersection feature frames emitted (one per closed window)."}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "greenwave", Subsystem: "cleaner", Name: "rejected_total",
			Help: "Readings set aside to the dead-letter topic, by reason."}, []string{"reason"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "greenwave", Subsystem: "cleaner", Name: "replays_dropped_total",
			Help: "Identical replays of readings already applied, dropped silently."}),
		weather: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "greenwave", Subsystem: "cleaner", Name: "weather_total",
			Help: "Weather observations read, by outcome (accepted or a weather_* reason)."}, []string{"outcome"}),
		health: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "greenwave", Subsystem: "cleaner", Name: "detector_health_score",
			Help: "Detector health score, 0 (dead) to 1 (healthy)."}, []string{"intersection", "approach", "detector"}),
	}
	reg.MustRegister(m.frames, m.rejected, m.dropped, m.weather, m.health)
	return m
}

// partition is the handler of one assigned partition: the state of every intersection it holds.
type partition struct {
	topo    *topology.Index
	cfg     clean.Config
	names   topics.Names
	weather clean.WeatherLookup
	metrics *metrics
	states  map[string]*clean.Intersection
	dirty   map[string]bool
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
	p.states[id] = s
	return s, nil
}

// Handle implements stream.Handler.
func (p *partition) Handle(_ context.Context, m kafka.Message) ([]stream.Output, error) {
	var r greenwavev1.TrafficReading
	if err := proto.Unmarshal(m.Value, &r); err != nil {
		return nil, stream.Reject(greenwavev1.RejectReason_REJECT_REASON_MALFORMED, "decode reading: %v", err)
	}
	if err := wire.CheckVersion(r.GetSchemaVersion()); err != nil {
		return nil, stream.Reject(greenwavev1.RejectReason_REJECT_REASON_UNSUPPORTED_SCHEMA, "%v", err)
	}
	st, err := p.state(r.GetIntersectionId())
	if err != nil {
		return nil, err
	}
	if st == nil {
		return nil, &stream.RejectError{Reason: greenwavev1.RejectReason_REJECT_REASON_UNKNOWN_DETECTOR, EventID: r.GetReadingId(),
			Detail: fmt.Sprintf("intersection %q is not in the topology", r.GetIntersectionId())}
	}
	res := st.Add(wire.Reading(&r), p.weather)
	p.dirty[r.GetIntersectionId()] = true
	return p.outputs(res, m, r.GetReadingId())
}

// outputs turns a cleaning result into records: frames, and dead letters for rejected readings. A rejection of
// the current record carries its source offset; deferred rejections of buffered readings carry the reading.
func (p *partition) outputs(res clean.Result, m kafka.Message, currentID string) ([]stream.Output, error) {
	var outs []stream.Output
	p.metrics.dropped.Add(float64(res.Dropped))
	for _, rej := range res.Rejected {
		reason := wire.RejectReason(rej.Reason)
		p.metrics.rejected.WithLabelValues(string(rej.Reason)).Inc()
		re := &stream.RejectError{Reason: reason, Detail: rej.Detail, EventID: rej.Reading.ID, ObservedAt: rej.Reading.Start}
		src := m
		if rej.Reading.ID != currentID || m.Value == nil {
			b, err := proto.Marshal(wire.ReadingProto(rej.Reading))
			if err != nil {
				return nil, fmt.Errorf("encode rejected reading: %w", err)
			}
			src = kafka.Message{Topic: p.names.Readings, Partition: m.Partition, Offset: -1, Key: []byte(rej.Reading.IntersectionID), Value: b}
		}
		dl := stream.DeadLetter("cleaner", p.names.DeadLetters, src, re)
		if src.Offset < 0 { // no source offset: make the id unique per reading and reason instead
			dl.EventID = fmt.Sprintf("%s/%s", rej.Reading.ID, rej.Reason)
		}
		outs = append(outs, dl)
	}
	for _, f := range res.Frames {
		b, err := proto.Marshal(wire.FrameProto(f))
		if err != nil {
			return nil, fmt.Errorf("encode frame: %w", err)
		}
		outs = append(outs, stream.Output{Topic: p.names.Features, Key: []byte(f.IntersectionID), Value: b,
			EventID: wire.FeaturesEventID(f.IntersectionID, f.WindowStart), Payload: wire.PayloadFeatures})
		p.metrics.frames.Inc()
	}
	return outs, nil
}

// Tick implements stream.Ticker: the processing-time idle timeout.
func (p *partition) Tick(_ context.Context, now time.Time) ([]stream.Output, error) {
	var outs []stream.Output
	for _, id := range sortedKeys(p.states) {
		res := p.states[id].CloseIdle(now, p.weather)
		if len(res.Frames) == 0 && len(res.Rejected) == 0 {
			continue
		}
		p.dirty[id] = true
		o, err := p.outputs(res, kafka.Message{Partition: -1}, "")
		if err != nil {
			return nil, err
		}
		outs = append(outs, o...)
	}
	return outs, nil
}

// Checkpoint implements stream.Handler: the state of every intersection changed since the last checkpoint.
func (p *partition) Checkpoint(context.Context) ([]stream.Output, error) {
	var outs []stream.Output
	for _, id := range sortedKeys(p.dirty) {
		b, err := p.states[id].MarshalState()
		if err != nil {
			return nil, fmt.Errorf("marshal state of %s: %w", id, err)
		}
		outs = append(outs, stream.Output{Topic: p.names.CleanerState, Key: []byte(id), Value: b})
		for _, h := range p.states[id].DetectorHealth() {
			p.metrics.health.WithLabelValues(id, h.ApproachID, h.DetectorID).Set(h.Score)
		}
	}
	clear(p.dirty)
	return outs, nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// Run starts the cleaner and processes until ctx ends.
func Run(ctx context.Context, lookup func(string) (string, bool)) error {
	var cfg Config
	if err := app.Load(&cfg, lookup); err != nil {
		return err
	}
	cc, err := cfg.cleanConfig()
	if err != nil {
		return err
	}
	env, err := app.Setup("cleaner", &cfg.Common)
	if err != nil {
		return err
	}
	defer env.Log.Sync() //nolint:errcheck // nothing useful to do with a failed flush at exit
	names := cfg.Topics()
	counts, err := app.CheckTopics(ctx, cfg.Brokers, names.Readings, names.Weather, names.Features, names.DeadLetters, names.CleanerState)
	if err != nil {
		return err
	}
	if counts[names.CleanerState] != counts[names.Readings] {
		return fmt.Errorf("topic %s has %d partitions but %s has %d: a changelog must be co-partitioned with its input",
			names.CleanerState, counts[names.CleanerState], names.Readings, counts[names.Readings])
	}
	m := newMetrics(env.Registry)
	weather := &weatherTable{t: clean.NewWeatherTable(cc)}
	var weatherReady sync.Once
	weatherCaughtUp := make(chan struct{})
	prod := stream.NewProducer(cfg.Brokers, stream.ProducerConfig{})
	defer prod.Close()

	newHandler := func(ctx context.Context, part int) (stream.Handler, error) {
		// Frames join weather, so wait until the global weather table is loaded before handling readings.
		select {
		case <-weatherCaughtUp:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		p := &partition{topo: env.Topology, cfg: cc, names: names, weather: weather, metrics: m,
			states: map[string]*clean.Intersection{}, dirty: map[string]bool{}}
		raw := map[string][]byte{}
		err := stream.ReadPartition(ctx, cfg.Brokers, names.CleanerState, part, func(msg kafka.Message) error {
			if msg.Value == nil {
				delete(raw, string(msg.Key))
			} else {
				raw[string(msg.Key)] = msg.Value
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("restore cleaner state: %w", err)
		}
		for id, b := range raw {
			in, ok := env.Topology.Intersection(id)
			if !ok {
				env.Log.Warn("dropping state of an intersection no longer in the topology", zap.String("intersection", id))
				continue
			}
			s, err := clean.RestoreIntersection(in, cc, b)
			if err != nil {
				return nil, fmt.Errorf("restore state of %s: %w", id, err)
			}
			p.states[id] = s
		}
		env.Log.Info("partition state restored", zap.Int("partition", part), zap.Int("intersections", len(p.states)))
		return p, nil
	}
	proc := stream.NewProcessor(stream.ProcessorConfig{
		Brokers: cfg.Brokers, GroupID: cfg.Group("cleaner"), Topic: names.Readings, DeadLetterTopic: names.DeadLetters,
		Service: "cleaner", MaxBatch: cfg.MaxBatch, IdleTick: cfg.IdleTimeout,
	}, prod, newHandler, env.Log, stream.NewMetrics(env.Registry))

	env.Server.AddReadiness("weather", func() error {
		select {
		case <-weatherCaughtUp:
			return nil
		default:
			return errors.New("loading the weather topic")
		}
	})
	env.Server.AddReadiness("consumer-group", func() error {
		if !proc.Joined() {
			return errors.New("joining the consumer group")
		}
		return nil
	})
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return env.Server.Run(ctx) })
	g.Go(func() error {
		return stream.Follow(ctx, cfg.Brokers, names.Weather, counts[names.Weather], func(msg kafka.Message) error {
			var w greenwavev1.WeatherReading
			if err := proto.Unmarshal(msg.Value, &w); err != nil {
				m.weather.WithLabelValues("malformed").Inc()
				return nil
			}
			if rej := weather.add(wire.Weather(&w)); rej != nil {
				m.weather.WithLabelValues(string(rej.Reason)).Inc()
				return nil
			}
			m.weather.WithLabelValues("accepted").Inc()
			return nil
		}, func() { weatherReady.Do(func() { close(weatherCaughtUp) }) })
	})
	g.Go(func() error {
		return proc.Run(ctx)
	})
	return g.Wait()
}
