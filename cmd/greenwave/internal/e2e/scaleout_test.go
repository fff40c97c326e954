package e2e

import (
	"context"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/stack"
	"github.com/greenwave-city/greenwave/pkg/clean"
	"github.com/greenwave-city/greenwave/pkg/kafkaconn"
	"github.com/greenwave-city/greenwave/pkg/kafkatest"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/topics"
	"github.com/greenwave-city/greenwave/pkg/topology"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// scaleT0 is a Monday 00:00 UTC, aligned to every window. The input lies weeks in the past, so nothing depends on
// the wall clock: the cleaner's idle timeout is off (its default), and the idle checkpoints of the trainer and
// signal-control, which commit a finished replay's offsets, only decide when records are written, not what.
var scaleT0 = time.Date(2026, 10, 5, 0, 0, 0, 0, time.UTC)

// scaleMinutes is how many minutes of one-minute readings the fixed input holds per detector: 72 five-minute
// windows per intersection, enough for every horizon (up to 1 h) to get labels and forecast.
const scaleMinutes = 360

// scaleInput is the fixed input of the scale-out test: the weather, written first, and the readings minute by
// minute (records keyed by intersection, so per-partition order is the write order).
type scaleInput struct {
	weather []stream.Output
	minutes [][]stream.Output
}

// readings returns the readings of minutes [from, to).
func (in scaleInput) readings(from, to int) []stream.Output {
	return slices.Concat(in.minutes[from:to]...)
}

// buildScaleInput writes, for every detector of the topology, one-minute readings whose counts follow a daily
// shape per intersection plus seeded noise, with an identical duplicate, readings out of order within the allowed
// lateness and a late reading per intersection (dead-lettered), placed as the collector places them.
func buildScaleInput(t *testing.T, topo topology.Topology, names topics.Names) scaleInput {
	t.Helper()
	enc := func(m proto.Message) []byte {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var in scaleInput
	for m := -60; m <= scaleMinutes; m += 20 {
		at := scaleT0.Add(time.Duration(m) * time.Minute)
		w := &greenwavev1.WeatherReading{SchemaVersion: 1, ReadingId: fmt.Sprintf("STN-1@%d", at.Unix()), StationId: "STN-1",
			ObservedAt: timestamppb.New(at), TemperatureC: proto.Float64(4 + float64(m)/60),
			PrecipitationMmH: proto.Float64(float64((m+60)%100) / 25), VisibilityM: proto.Float64(9000 - float64((m+60)%80)*50)}
		in.weather = append(in.weather, stream.Output{Topic: names.Weather, Key: []byte("STN-1"), Value: enc(w),
			EventID: w.GetReadingId(), Payload: wire.TopicWeather.Payload()})
	}
	ix := topology.NewIndex(topo)
	out := func(r *greenwavev1.TrafficReading) stream.Output {
		return stream.Output{Topic: names.Readings, Key: []byte(r.GetIntersectionId()), Value: enc(r),
			EventID: r.GetReadingId(), Payload: wire.TopicReadings.Payload(), PartitionKey: ix.PartitionKey(r.GetIntersectionId())}
	}
	rng := rand.New(rand.NewPCG(15, 2))
	type held struct {
		r      *greenwavev1.TrafficReading
		sendAt int
	}
	var pending []held
	for m := range scaleMinutes {
		var chunk []stream.Output
		at := scaleT0.Add(time.Duration(m) * time.Minute)
		for xi, x := range topo.Intersections {
			for ai, a := range x.Approaches {
				for _, d := range a.Detectors {
					h := float64(m) / 60
					count := math.Round(6 + 5*math.Sin(h/2+float64(xi)) + 3*float64(ai) + 2*rng.NormFloat64())
					r := &greenwavev1.TrafficReading{SchemaVersion: 1, ReadingId: fmt.Sprintf("%s@%d", d, at.Unix()),
						IntersectionId: x.ID, DetectorId: d, ObservedAt: timestamppb.New(at), IntervalS: 60, Count: max(0, count)}
					switch {
					case ai == 0 && m == 2:
						pending = append(pending, held{r, 30}) // late: its window closed long before
						continue
					case ai == 1 && m%30 == 7:
						pending = append(pending, held{r, m + 2}) // out of order, within the lateness
						continue
					}
					chunk = append(chunk, out(r))
					if ai == 0 && m%45 == 3 {
						chunk = append(chunk, out(r)) // identical duplicate
					}
				}
			}
		}
		var keep []held
		for _, h := range pending {
			if h.sendAt == m {
				chunk = append(chunk, out(h.r))
			} else {
				keep = append(keep, h)
			}
		}
		pending = keep
		in.minutes = append(in.minutes, chunk)
	}
	return in
}

// scaleOutputs are what one run published, deduplicated by event id (a duplicate with other content fails the
// test), and the newest model snapshots.
type scaleOutputs struct {
	frames      map[string]*greenwavev1.IntersectionFeatures
	health      map[string]*greenwavev1.DetectorHealth
	dead        map[string]*greenwavev1.DeadLetter
	state       map[string]*greenwavev1.ModelSnapshot // newest complete snapshot per model id (trainer changelog)
	served      map[string]*greenwavev1.ModelSnapshot // newest served snapshot per model id (models topic)
	predictions map[string]*greenwavev1.IntersectionPrediction
	plans       map[string]*greenwavev1.SignalPlan
	// cleaner and signals are the newest changelog state per intersection of the cleaner and signal-control,
	// without the checkpoint bookkeeping (which emissions are not yet forgotten, which plans offset a restore
	// starts from): what differs with checkpoint timing, not with what was computed.
	cleaner map[string]clean.IntersectionState
	signals map[string]wire.SignalState
}

// scaleRun is one run of the scale-out test in a namespace of its own.
type scaleRun struct {
	t      *testing.T
	name   string
	conn   kafkaconn.Conn
	names  topics.Names
	prefix string
	cfg    stack.Config
	input  scaleInput
	prod   *stream.Producer
	// ref is the one-instance run's output (for the killed run's kill points) and rng its kill-point source.
	ref scaleOutputs
	rng *rand.Rand
}

// newRunSpace makes a namespace of its own (topics with 3 partitions under a fresh prefix) and the stack
// configuration of a run in it, without input.
func newRunSpace(t *testing.T, name, topoFile, bins, logLevel string) *scaleRun {
	t.Helper()
	conn, names := kafkatest.Setup(t, partitions)
	prefix := strings.TrimSuffix(names.Readings, topics.DefaultNames("").Readings)
	return &scaleRun{t: t, name: name, conn: conn, names: names, prefix: prefix,
		cfg: stack.Config{Brokers: conn.Brokers, TopicPrefix: prefix, TopologyFile: topoFile, BinDir: bins, Dir: t.TempDir(),
			Stdout: testWriter{t}, LogFormat: "console", LogLevel: logLevel}}
}

func newScaleRun(ctx context.Context, t *testing.T, name string, topo topology.Topology, topoFile, bins string) *scaleRun {
	t.Helper()
	r := newRunSpace(t, name, topoFile, bins, "warn")
	r.input = buildScaleInput(t, topo, r.names)
	r.prod = stream.NewProducer(r.conn, stream.ProducerConfig{})
	t.Cleanup(func() { r.prod.Close() })
	// All weather first: a frame joins what the weather topic held when its window closed.
	r.write(ctx, r.input.weather)
	return r
}

func (r *scaleRun) write(ctx context.Context, outs []stream.Output) {
	r.t.Helper()
	if err := r.prod.Write(ctx, outs...); err != nil {
		r.t.Fatalf("%s: write input: %v", r.name, err)
	}
}

// start runs services, each with its environment, and one extra instance of each when extra is set, and waits
// until every instance is ready (has joined its consumer group).
func (r *scaleRun) start(ctx context.Context, services []string, env map[string][]string, extra bool) *stack.Stack {
	r.t.Helper()
	cfg := r.cfg
	cfg.Services = services
	cfg.ExtraEnv = map[string][]string{}
	for _, s := range services {
		cfg.ExtraEnv[s] = env[s]
	}
	st, err := stack.Start(ctx, cfg)
	if err != nil {
		r.t.Fatalf("%s: start %v: %v", r.name, services, err)
	}
	r.t.Cleanup(func() {
		if err := st.Stop(); err != nil {
			r.t.Errorf("%s: stop %v: %v", r.name, services, err)
		}
	})
	if extra {
		r.startExtras(ctx, st)
	}
	if err := st.WaitReady(ctx); err != nil {
		r.t.Fatalf("%s: %v not ready: %v", r.name, services, err)
	}
	return st
}

// startExtras starts a second instance of every service of st; it does not wait for readiness.
func (r *scaleRun) startExtras(ctx context.Context, st *stack.Stack) []string {
	r.t.Helper()
	var names []string
	for _, s := range st.Services() {
		n, err := st.StartExtra(ctx, s)
		if err != nil {
			r.t.Fatalf("%s: %v", r.name, err)
		}
		names = append(names, n)
	}
	return names
}

// stopExtras stops the given extra instances of st (SIGTERM: each leaves its group, handing its partitions over).
func (r *scaleRun) stopExtras(st *stack.Stack, names []string) {
	r.t.Helper()
	for _, n := range names {
		if err := st.StopExtra(n); err != nil {
			r.t.Fatalf("%s: %v", r.name, err)
		}
	}
}

// killAt SIGKILLs the service twice, each time once topic holds (or, with committed, the service's group has
// committed) at least a seeded random share of about n records, and restarts it until it is ready again.
func (r *scaleRun) killAt(ctx context.Context, st *stack.Stack, service, topic string, n int64, committed bool) {
	r.t.Helper()
	points := []int64{1 + r.rng.Int64N(max(1, n/2)), n/2 + r.rng.Int64N(max(1, n/2-1))}
	for _, p := range points {
		for {
			done, end := r.committed(ctx, service, topic)
			if (committed && done >= p) || (!committed && end >= p) {
				break
			}
			select {
			case <-ctx.Done():
				r.t.Fatalf("%s: %s: %d of %d records of %s (committed %d) before the deadline, waiting for %d", r.name, service, end, n, topic, done, p)
			case <-st.Done():
				r.t.Fatalf("%s: %v", r.name, st.Err())
			case <-time.After(5 * time.Millisecond): // polling interval
			}
		}
		if err := st.Kill(service, syscall.SIGKILL); err != nil {
			r.t.Fatalf("%s: kill %s: %v", r.name, service, err)
		}
		done, end := r.committed(ctx, service, topic)
		at := fmt.Sprintf("%d records on %s", end, topic)
		if committed {
			at = fmt.Sprintf("%d of %s committed", done, topic)
		}
		if err := st.Restart(ctx, service); err != nil {
			r.t.Fatalf("%s: restart %s: %v", r.name, service, err)
		}
		if err := st.WaitReady(ctx); err != nil {
			r.t.Fatalf("%s: %s not ready after its restart: %v", r.name, service, err)
		}
		r.t.Logf("%s: %s SIGKILLed at %s (point %d), restarted", r.name, service, at, p)
	}
}

// feedUntilReady writes the readings of minutes [from, to) one minute at a time, each once the cleaner has
// committed every reading before it, until every instance of st is ready; then the rest at once. It returns the
// minute being written when they were ready.
func (r *scaleRun) feedUntilReady(ctx context.Context, st *stack.Stack, from, to int) int {
	r.t.Helper()
	ready := make(chan error, 1)
	go func() { ready <- st.WaitReady(ctx) }()
	for m := from; m < to; m++ {
		select {
		case err := <-ready:
			if err != nil {
				r.t.Fatalf("%s: %v", r.name, err)
			}
			r.write(ctx, r.input.readings(m, to))
			return m
		default:
		}
		r.write(ctx, r.input.minutes[m])
		r.waitCommitted(ctx, st, "cleaner", r.names.Readings, -1)
	}
	if err := <-ready; err != nil {
		r.t.Fatalf("%s: %v", r.name, err)
	}
	return to
}

// committed returns how many records of topic the service's consumer group has committed, over all partitions,
// and how many there are.
func (r *scaleRun) committed(ctx context.Context, service, topic string) (done, total int64) {
	r.t.Helper()
	client := r.conn.Client(10 * time.Second)
	parts := make([]int, partitions)
	reqs := make([]kafka.OffsetRequest, partitions)
	for p := range partitions {
		parts[p], reqs[p] = p, kafka.LastOffsetOf(p)
	}
	ends, err := stream.ListOffsets(ctx, client, map[string][]kafka.OffsetRequest{topic: reqs})
	if err != nil {
		r.t.Fatalf("%s: list offsets of %s: %v", r.name, topic, err)
	}
	got, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: r.prefix + "greenwave." + service, Topics: map[string][]int{topic: parts}})
	if err != nil {
		r.t.Fatalf("%s: fetch committed offsets of %s: %v", r.name, service, err)
	}
	for _, e := range ends[topic] {
		total += e.LastOffset
		for _, c := range got.Topics[topic] {
			if c.Partition == e.Partition && c.CommittedOffset > 0 {
				done += min(c.CommittedOffset, e.LastOffset)
			}
		}
	}
	return done, total
}

// waitCommitted polls until the service's group committed at least n records of topic (n < 0: all of them).
// Every service commits input offsets only after the outputs and state of the records before them are
// acknowledged, so from then on every output of those records is readable.
func (r *scaleRun) waitCommitted(ctx context.Context, st *stack.Stack, service, topic string, n int64) (done, total int64) {
	r.t.Helper()
	for {
		done, total = r.committed(ctx, service, topic)
		if (n < 0 && done == total) || (n >= 0 && done >= n) {
			return done, total
		}
		select {
		case <-ctx.Done():
			r.t.Fatalf("%s: %s committed %d of %d records of %s before the deadline (waiting for %d)", r.name, service, done, total, topic, n)
		case <-st.Done():
			r.t.Fatalf("%s: %v", r.name, st.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// progress says how far the predictor and signal-control have committed their input.
func (r *scaleRun) progress(ctx context.Context) string {
	r.t.Helper()
	pd, pt := r.committed(ctx, "predictor", r.names.Features)
	sd, stt := r.committed(ctx, "signalcontrol", r.names.Predictions)
	return fmt.Sprintf("predictor %d of %d frames, signal-control %d of %d predictions", pd, pt, sd, stt)
}

// owners returns, for each member of the service's consumer group, the partitions of topic it holds.
func (r *scaleRun) owners(ctx context.Context, service, topic string) [][]int {
	r.t.Helper()
	resp, err := r.conn.Client(10*time.Second).DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{r.prefix + "greenwave." + service}})
	if err != nil || len(resp.Groups) != 1 || resp.Groups[0].Error != nil {
		r.t.Fatalf("%s: describe group of %s: %v %+v", r.name, service, err, resp)
	}
	var out [][]int
	for _, m := range resp.Groups[0].Members {
		var ps []int
		for _, tp := range m.MemberAssignments.Topics {
			if tp.Topic == topic {
				ps = append(ps, tp.Partitions...)
			}
		}
		slices.Sort(ps)
		out = append(out, ps)
	}
	return out
}

// requireSplit fails the test unless the service's group has two members that both hold partitions of topic.
func (r *scaleRun) requireSplit(ctx context.Context, service, topic string) {
	r.t.Helper()
	o := r.owners(ctx, service, topic)
	if len(o) != 2 || len(o[0]) == 0 || len(o[1]) == 0 {
		r.t.Fatalf("%s: %s group members hold partitions %v of %s, want two members with some each", r.name, service, o, topic)
	}
	r.t.Logf("%s: %s instances hold partitions %v of %s", r.name, service, o, topic)
}

// readTopic reads every partition of a topic up to its end.
func (r *scaleRun) readTopic(ctx context.Context, topic string, fn func(kafka.Message)) {
	r.t.Helper()
	for part := range partitions {
		if err := stream.ReadPartition(ctx, r.conn, topic, part, func(m kafka.Message) error {
			fn(m)
			return nil
		}); err != nil {
			r.t.Fatalf("%s: read %s[%d]: %v", r.name, topic, part, err)
		}
	}
}

// newestModels reads a topic of model snapshots and returns the newest snapshot of every model id (the last
// record of its key: keys are partitioned by intersection, so a key's records are in offset order).
func (r *scaleRun) newestModels(ctx context.Context, topic string) map[string]*greenwavev1.ModelSnapshot {
	r.t.Helper()
	out := map[string]*greenwavev1.ModelSnapshot{}
	r.readTopic(ctx, topic, func(m kafka.Message) {
		d, err := wire.DecodeModel(m)
		if err != nil {
			r.t.Fatalf("%s: decode %s %s@%d: %v", r.name, topic, m.Key, m.Offset, err)
		}
		s := wire.SnapshotProto(d)
		if string(m.Key) != s.GetModelId() {
			r.t.Fatalf("%s: %s record key %q holds model %q", r.name, topic, m.Key, s.GetModelId())
		}
		out[s.GetModelId()] = s
	})
	return out
}

// collect reads every output topic. Dead letters name their source topic, which carries the namespace prefix:
// it is stripped so runs in different namespaces compare.
func (r *scaleRun) collect(ctx context.Context) scaleOutputs {
	r.t.Helper()
	o := scaleOutputs{frames: map[string]*greenwavev1.IntersectionFeatures{}, health: map[string]*greenwavev1.DetectorHealth{},
		dead: map[string]*greenwavev1.DeadLetter{}, predictions: map[string]*greenwavev1.IntersectionPrediction{},
		plans: map[string]*greenwavev1.SignalPlan{}}
	r.readTopic(ctx, r.names.Features, func(m kafka.Message) {
		f := &greenwavev1.IntersectionFeatures{}
		addUnique(r.t, o.frames, m, f, f.GetEventId)
	})
	r.readTopic(ctx, r.names.DetectorHealth, func(m kafka.Message) {
		h := &greenwavev1.DetectorHealth{}
		addUnique(r.t, o.health, m, h, h.GetEventId)
	})
	r.readTopic(ctx, r.names.DeadLetters, func(m kafka.Message) {
		d := &greenwavev1.DeadLetter{}
		addUnique(r.t, o.dead, m, d, func() string {
			d.EventId = strings.TrimPrefix(d.GetEventId(), r.prefix)
			d.SourceTopic = strings.TrimPrefix(d.GetSourceTopic(), r.prefix)
			return d.GetEventId()
		})
	})
	r.readTopic(ctx, r.names.Predictions, func(m kafka.Message) {
		p := &greenwavev1.IntersectionPrediction{}
		addUnique(r.t, o.predictions, m, p, p.GetEventId)
	})
	r.readTopic(ctx, r.names.Plans, func(m kafka.Message) {
		p := &greenwavev1.SignalPlan{}
		addUnique(r.t, o.plans, m, p, p.GetPlanId)
	})
	o.state = r.newestModels(ctx, r.names.TrainerState)
	o.served = r.newestModels(ctx, r.names.Models)
	o.cleaner, o.signals = map[string]clean.IntersectionState{}, map[string]wire.SignalState{}
	r.readTopic(ctx, r.names.CleanerState, func(m kafka.Message) {
		snap, err := wire.DecodeCleanerRecord(m)
		if err != nil {
			r.t.Fatalf("%s: decode cleaner state %s@%d: %v", r.name, m.Key, m.Offset, err)
		}
		st, err := wire.DecodeCleanerState(snap.State)
		if err != nil {
			r.t.Fatalf("%s: decode cleaner state %s@%d: %v", r.name, m.Key, m.Offset, err)
		}
		st.Emissions = nil
		o.cleaner[string(m.Key)] = st
	})
	r.readTopic(ctx, r.names.SignalState, func(m kafka.Message) {
		st, _, err := wire.DecodeSignalState(string(stream.Header(m, stream.HeaderPayload)), m.Value)
		if err != nil {
			r.t.Fatalf("%s: decode signal-control state %s@%d: %v", r.name, m.Key, m.Offset, err)
		}
		o.signals[string(m.Key)] = *st
	})
	return o
}

// scaleMode says how a run places its instances.
type scaleMode int

const (
	oneInstance  scaleMode = iota // one instance of every service throughout
	twoInstances                  // two instances of every stateful service, both in the group before their input
	rebalanced                    // one instance, a second started and stopped while input flows
	killed                        // one instance of each, SIGKILLed twice at seeded points and restarted
)

// Settings of the rebalanced run: small batches and frequent checkpoints, so that the stages take long enough for
// the membership changes to fall while input is in flight, and partitions change owner between checkpoints.
var rebalancedEnv = map[string][]string{
	"cleaner": {"CLEANER_MAX_BATCH=20", "CLEANER_CHECKPOINT_INTERVAL=300ms"},
	"trainer": {"TRAINER_MAX_BATCH=10", "TRAINER_CHECKPOINT_INTERVAL=1h"},
	// Its input is all there when it starts: every write lingers, so that it still runs when its second
	// instance has joined.
	"predictor":     {"PREDICTOR_MAX_BATCH=1", "PREDICTOR_COMMIT_INTERVAL=0s", "PREDICTOR_WRITE_LINGER=50ms"},
	"signalcontrol": {"SIGNAL_CHECKPOINT_INTERVAL=0s"},
}

// run runs the pipeline over the fixed input in two stages. First the cleaner and the trainer, with the readings
// written once they are in their groups (in the rebalanced run, chunk by chunk), until both committed their
// whole input. Then signal-control, and once it is in its group the predictor, until both committed theirs. The
// predictor starts only once the trainer is done because the prediction of a frame is a function of the frame
// and of the model snapshots the predictor holds: run beside the trainer, which snapshot a frame meets is a race
// in processing time, with one instance as with two. Started after it, every run predicts with the final models.
func (r *scaleRun) run(ctx context.Context, mode scaleMode) scaleOutputs {
	r.t.Helper()
	// Quiet partitions of this historical input are checkpointed (and their offsets committed) after a second,
	// not the default half a minute or ten seconds, so the run does not wait for it.
	env := map[string][]string{"cleaner": {"CLEANER_CHECKPOINT_INTERVAL=1s"}, "trainer": {"TRAINER_CHECKPOINT_IDLE=1s"}, "signalcontrol": {"SIGNAL_CHECKPOINT_IDLE=1s"},
		// The models are final when the predictor starts: a stale one has nothing to wait for.
		"predictor": {"PREDICTOR_MODEL_WAIT=0s"}}
	if mode == rebalanced || mode == killed {
		for s, e := range rebalancedEnv {
			env[s] = append(slices.Clone(env[s]), e...)
		}
	}
	waitFirstStage := func(st *stack.Stack) {
		r.waitCommitted(ctx, st, "cleaner", r.names.Readings, -1)
		r.waitCommitted(ctx, st, "trainer", r.names.Features, -1)
	}

	first := r.start(ctx, []string{"cleaner", "trainer"}, env, mode == twoInstances)
	switch mode {
	case rebalanced:
		// The second instances are started after the first two hours are processed; while they join, the
		// readings are written a minute at a time, each once the cleaner committed the ones before, so the
		// group rebalances while readings flow, and the rest of the first four hours follows at once. They are
		// stopped right after the last two hours are written, while those are processed.
		const joinAt, leaveAt = 120, 240
		r.write(ctx, r.input.readings(0, joinAt))
		waitFirstStage(first)
		extras := r.startExtras(ctx, first)
		m := r.feedUntilReady(ctx, first, joinAt, leaveAt)
		r.t.Logf("%s: %v joined while minute %d of the readings was written", r.name, extras, m)
		waitFirstStage(first)
		r.requireSplit(ctx, "cleaner", r.names.Readings)
		r.requireSplit(ctx, "trainer", r.names.Features)
		r.write(ctx, r.input.readings(leaveAt, scaleMinutes))
		r.stopExtras(first, extras)
		done, total := r.committed(ctx, "cleaner", r.names.Readings)
		r.t.Logf("%s: %v left with the cleaner at %d of %d readings", r.name, extras, done, total)
	case killed:
		// The cleaner is killed at two points of its output (published frames, committed or not: mid-checkpoint
		// as often as not), then the trainer, which runs beside it, at two points of its committed input.
		r.write(ctx, r.input.readings(0, scaleMinutes))
		r.killAt(ctx, first, "cleaner", r.names.Features, int64(len(r.ref.frames)), false)
		r.killAt(ctx, first, "trainer", r.names.Features, int64(len(r.ref.frames)), true)
	default:
		r.write(ctx, r.input.readings(0, scaleMinutes))
	}
	waitFirstStage(first)
	if mode == twoInstances {
		r.requireSplit(ctx, "cleaner", r.names.Readings)
		r.requireSplit(ctx, "trainer", r.names.Features)
	}
	if err := first.Stop(); err != nil {
		r.t.Fatalf("%s: stop cleaner and trainer: %v", r.name, err)
	}

	signals := r.start(ctx, []string{"signalcontrol"}, env, mode == twoInstances)
	predictors := r.start(ctx, []string{"predictor"}, env, mode == twoInstances)
	if mode == rebalanced {
		// The predictor's input is all there: its second instance joins a third of the way through and leaves
		// two thirds of the way, as does signal-control's.
		_, total := r.committed(ctx, "predictor", r.names.Features)
		r.waitCommitted(ctx, predictors, "predictor", r.names.Features, total/3)
		extras := append(r.startExtras(ctx, predictors), r.startExtras(ctx, signals)...)
		for _, st := range []*stack.Stack{predictors, signals} {
			if err := st.WaitReady(ctx); err != nil {
				r.t.Fatalf("%s: %v", r.name, err)
			}
		}
		r.t.Logf("%s: %v joined at %s", r.name, extras, r.progress(ctx))
		r.waitCommitted(ctx, predictors, "predictor", r.names.Features, 2*total/3)
		r.stopExtras(predictors, extras[:1])
		r.stopExtras(signals, extras[1:])
		r.t.Logf("%s: %v left at %s", r.name, extras, r.progress(ctx))
	}
	if mode == killed {
		r.killAt(ctx, predictors, "predictor", r.names.Predictions, int64(len(r.ref.predictions)), false)
		r.killAt(ctx, signals, "signalcontrol", r.names.Plans, int64(len(r.ref.plans)), false)
	}
	r.waitCommitted(ctx, predictors, "predictor", r.names.Features, -1)
	r.waitCommitted(ctx, signals, "signalcontrol", r.names.Predictions, -1)
	if mode == twoInstances {
		r.requireSplit(ctx, "predictor", r.names.Features)
		r.requireSplit(ctx, "signalcontrol", r.names.Predictions)
	}
	return r.collect(ctx)
}

// TestScaleOutEqualsOneInstance runs one fixed input (six intersections over 3 partitions, six hours of
// one-minute readings with duplicates, out-of-order and late readings) through the cleaner, trainer, predictor
// and signal-control three times, each in a namespace of its own: with one instance of each service; with two
// instances of each in one consumer group from the start, so that every partition is processed by one of them
// (checked: both members of every group hold partitions); and with one instance, a second started while input
// flows and stopped again later, forcing two rebalances per service in which partitions change owner mid-stream
// and the new owner restores the old owner's state from its changelog (and the predictor reads back what the old
// owner published); and with one instance of each, every service SIGKILLed twice at seeded points (the cleaner
// and the predictor at points of their output, between commits as often as not; the trainer at points of its
// committed input; signal-control at points of its plans) and restarted. The seed is logged; SCALEOUT_KILL_SEED
// reruns a schedule. The four runs must publish the same feature frames, detector health records, dead letters,
// predictions and plans — same event ids, proto.Equal content, no event id twice with different content — and
// end with the same newest complete model snapshot (trainer changelog) and served snapshot (models topic) of
// every model, and the same cleaner and signal-control state per intersection (changelog, without checkpoint
// bookkeeping). No field is exempt: every output is a function of event time and per-partition order alone.
//
// The two-instance run catches output that depends on which instance computes it or on what else an instance
// holds. The rebalanced run catches state that does not move with a partition: a cleaner window or a trainer's
// pending labels, a signal-control rate limit or profile lost or applied twice on handover, a prediction made
// again with other models. The killed run catches the same at a crash, where nothing is handed over: state and
// offsets that are not published in the right order, and output lost or changed between a publish and its commit.
// Checked by breaking restores: a trainer whose new owner starts its learners from scratch fails it (model
// snapshots differ), as does a signal-control that drops the restored current plan.
func TestScaleOutEqualsOneInstance(t *testing.T) {
	parallelStack(t)
	_, bins := binaries(t)
	topoFile, err := filepath.Abs(filepath.Join("testdata", "scaleout", "topology.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	topo, err := topology.Load(topoFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SCALEOUT_KILL_SEED"); s != "" {
		if _, err := fmt.Sscan(s, &seed); err != nil {
			t.Fatalf("SCALEOUT_KILL_SEED=%q: %v", s, err)
		}
	}
	t.Logf("kill points seeded with SCALEOUT_KILL_SEED=%d", seed)

	one := newScaleRun(ctx, t, "one instance", topo, topoFile, bins)
	parts := map[int]bool{}
	for _, o := range one.input.readings(0, scaleMinutes) {
		parts[stream.PartitionFor(o.PartitionKey, partitions)] = true
	}
	if len(parts) != partitions {
		t.Fatalf("the input's readings fill partitions %v of %d: the topology does not spread", slices.Sorted(maps.Keys(parts)), partitions)
	}
	want := one.run(ctx, oneInstance)
	checkScaleReference(t, topo, want)

	for _, tc := range []struct {
		name string
		mode scaleMode
	}{
		{"two instances", twoInstances},
		{"rebalanced", rebalanced},
		{"killed", killed},
	} {
		r := newScaleRun(ctx, t, tc.name, topo, topoFile, bins)
		r.ref, r.rng = want, rand.New(rand.NewPCG(seed, 15))
		got := r.run(ctx, tc.mode)
		compareRuns(t, tc.name, "frame", want.frames, got.frames)
		compareRuns(t, tc.name, "detector health", want.health, got.health)
		compareRuns(t, tc.name, "dead letter", want.dead, got.dead)
		compareRuns(t, tc.name, "model snapshot (changelog)", want.state, got.state)
		compareRuns(t, tc.name, "model snapshot (models topic)", want.served, got.served)
		compareRuns(t, tc.name, "prediction", want.predictions, got.predictions)
		compareRuns(t, tc.name, "plan", want.plans, got.plans)
		compareStates(t, tc.name, "cleaner state", want.cleaner, got.cleaner, func(a, b clean.IntersectionState) bool { return reflect.DeepEqual(a, b) })
		compareStates(t, tc.name, "signal-control state", want.signals, got.signals, signalStateEqual)
		if t.Failed() {
			return
		}
		t.Logf("%s equals one instance: %d frames, %d health records, %d dead letters, %d models, %d predictions, %d plans",
			tc.name, len(got.frames), len(got.health), len(got.dead), len(got.state), len(got.predictions), len(got.plans))
	}
}

// compareStates fails the test unless both maps hold the same intersections with equal states and returns how
// many differences it found; it names at most five.
func compareStates[S any](t *testing.T, run, what string, want, got map[string]S, equal func(a, b S) bool) (bad int) {
	t.Helper()
	if len(want) == 0 {
		t.Errorf("one instance: no %s on its changelog", what)
		bad++
	}
	for _, id := range slices.Sorted(maps.Keys(want)) {
		g, ok := got[id]
		switch {
		case !ok:
			t.Errorf("%s: %s of %s missing", run, what, id)
		case !equal(want[id], g):
			t.Errorf("%s: %s of %s differs:\none instance %s\n%-12s %s", run, what, id, clip(fmt.Sprintf("%+v", want[id]), 2000), run, clip(fmt.Sprintf("%+v", g), 2000))
		default:
			continue
		}
		if bad++; bad == 5 {
			return bad
		}
	}
	for _, id := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[id]; !ok {
			t.Errorf("%s: %s of %s not on the one-instance changelog", run, what, id)
			bad++
		}
	}
	return bad
}

// signalStateEqual compares two signal-control states: the plan with proto.Equal, the rest field by field.
func signalStateEqual(a, b wire.SignalState) bool {
	pa, pb := a.Plan, b.Plan
	a.Plan, b.Plan = nil, nil
	return proto.Equal(pa, pb) && reflect.DeepEqual(a, b)
}

// checkScaleReference fails the test when the one-instance run exercises too little for the comparison to mean
// anything: every intersection must have frames, predictions from trained models and plans, and the cleaner
// must have dead-lettered the late readings.
func checkScaleReference(t *testing.T, topo topology.Topology, o scaleOutputs) {
	t.Helper()
	windows := scaleMinutes / 5
	if least := len(topo.Intersections) * (windows - 2); len(o.frames) < least {
		t.Errorf("one instance: %d frames, want at least %d", len(o.frames), least)
	}
	if n := len(topo.Intersections) * 2 * 3; len(o.state) != n || len(o.served) != n {
		t.Errorf("one instance: %d models on the changelog, %d on the models topic, want %d", len(o.state), len(o.served), n)
	}
	if len(o.predictions) != len(o.frames) {
		t.Errorf("one instance: %d predictions of %d frames", len(o.predictions), len(o.frames))
	}
	if len(o.plans) == 0 || len(o.dead) == 0 || len(o.health) == 0 {
		t.Errorf("one instance: %d plans, %d dead letters, %d health records", len(o.plans), len(o.dead), len(o.health))
	}
	modelBased, byIntersection := 0, map[string]int{}
	for _, p := range o.predictions {
		for _, a := range p.GetApproaches() {
			for _, h := range a.GetHorizons() {
				if !h.GetFallback() {
					modelBased++
				}
			}
		}
	}
	predictive := 0
	for _, p := range o.plans {
		byIntersection[p.GetIntersectionId()]++
		if p.GetReason() == greenwavev1.PlanReason_PLAN_REASON_PREDICTIVE {
			predictive++
		}
	}
	if modelBased == 0 || predictive == 0 || len(byIntersection) != len(topo.Intersections) {
		t.Errorf("one instance: %d model-based horizon predictions, %d predictive plans, plans for %d of %d intersections: the input exercises too little",
			modelBased, predictive, len(byIntersection), len(topo.Intersections))
	}
	t.Logf("one instance: %d frames, %d dead letters, %d models, %d predictions (%d model-based horizon values), %d plans (%d predictive)",
		len(o.frames), len(o.dead), len(o.state), len(o.predictions), modelBased, len(o.plans), predictive)
}

// compareRuns fails the test unless both maps hold the same ids with proto.Equal messages and returns how many
// differences it found; it names at most five, each message cut short (a model snapshot's text runs to hundreds
// of kilobytes).
func compareRuns[M proto.Message](t *testing.T, run, what string, want, got map[string]M) (bad int) {
	t.Helper()
	for _, id := range slices.Sorted(maps.Keys(want)) {
		g, ok := got[id]
		switch {
		case !ok:
			t.Errorf("%s: %s %s missing (published by one instance)", run, what, id)
		case !proto.Equal(want[id], g):
			t.Errorf("%s: %s %s differs:\none instance %s\n%-12s %s", run, what, id, clip(fmt.Sprint(want[id]), 2000), run, clip(fmt.Sprint(g), 2000))
		default:
			continue
		}
		if bad++; bad == 5 {
			break
		}
	}
	for _, id := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[id]; !ok {
			t.Errorf("%s: %s %s not published by one instance", run, what, id)
			if bad++; bad == 10 {
				break
			}
		}
	}
	return bad
}
