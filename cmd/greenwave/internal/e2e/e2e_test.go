// Package e2e runs the five services as separate processes against a Kafka broker — a kfake cluster per test in
// `make test`, the real Apache Kafka broker in `make test-kafka` — and checks the pipeline end to end: readings
// sent to the collector over gRPC come out as signal plans over WatchPlans, and every accepted reading is
// accounted for downstream, even when the cleaner is killed with SIGKILL mid-stream.
package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/stack"
	"github.com/greenwave-city/greenwave/pkg/kafkaconn"
	"github.com/greenwave-city/greenwave/pkg/kafkatest"
	"github.com/greenwave-city/greenwave/pkg/sim"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/topics"
	"github.com/greenwave-city/greenwave/pkg/topology"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

const partitions = 3

// build is one `go build` of a set of services, shared by every test of the process that needs the same set.
type build struct {
	once      sync.Once
	root, dir string
	err       error
}

var builds sync.Map // comma-joined service names → *build

// serviceBinaries builds the named services (all five when none are named) once per test process and returns
// the repository root and the directory holding the binaries. A test that runs one service builds only that
// one, so it neither waits for nor depends on the others.
func serviceBinaries(t *testing.T, services ...string) (repoRoot, binDir string) {
	t.Helper()
	v, _ := builds.LoadOrStore(strings.Join(services, ","), &build{})
	b := v.(*build)
	b.once.Do(func() {
		wd, err := os.Getwd()
		if err != nil {
			b.err = err
			return
		}
		if b.root, b.err = stack.FindRepoRoot(wd); b.err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		b.dir, b.err = stack.Binaries(ctx, b.root, services...)
	})
	if b.err != nil {
		t.Fatalf("build services %v: %v", services, b.err)
	}
	return b.root, b.dir
}

// startService runs one service, built from this checkout, against the test's brokers and topics with the
// example topology and extra environment; it is stopped when the test ends.
func startService(ctx context.Context, t *testing.T, service string, kafkaConn kafkaconn.Conn, prefix string, env []string) *stack.Stack {
	t.Helper()
	root, bins := serviceBinaries(t, service)
	st, err := stack.Start(ctx, stack.Config{
		Brokers: kafkaConn.Brokers, TopicPrefix: prefix, TopologyFile: filepath.Join(root, "config", "topology.yaml"), BinDir: bins,
		Services: []string{service}, Dir: t.TempDir(), Stdout: testWriter{t}, LogFormat: "console", LogLevel: "warn",
		ExtraEnv: map[string][]string{service: env},
	})
	if err != nil {
		t.Fatalf("start %s: %v", service, err)
	}
	t.Cleanup(func() {
		if err := st.Stop(); err != nil {
			t.Errorf("stop %s: %v", service, err)
		}
	})
	return st
}

// binaries builds all five services.
func binaries(t *testing.T) (string, string) {
	t.Helper()
	return serviceBinaries(t)
}

type pipeline struct {
	t         *testing.T
	kafkaConn kafkaconn.Conn
	names     topics.Names
	stack     *stack.Stack
	topo      topology.Topology
	// simStart, when set, is where the simulated readings start (default: the hour a day before now), so two
	// pipelines of one test can be fed the same readings.
	simStart time.Time
}

func startPipeline(t *testing.T) *pipeline {
	t.Helper()
	return startPipelineEnv(t, nil)
}

// startPipelineWith is startPipeline with extra environment entries per service.
func startPipelineWith(t *testing.T, extraEnv map[string][]string) *pipeline {
	t.Helper()
	return startPipelineEnv(t, func(kafkaconn.Conn, topics.Names, string) map[string][]string { return extraEnv })
}

// startPipelineEnv is startPipeline with serviceEnv (when not nil) called once the topics exist: it returns
// extra environment entries per service (such as each service's own Kafka user).
func startPipelineEnv(t *testing.T, serviceEnv func(admin kafkaconn.Conn, names topics.Names, prefix string) map[string][]string) *pipeline {
	t.Helper()
	root, bins := binaries(t)
	kafkaConn, names := kafkatest.Setup(t, partitions)
	prefix := names.Readings[:len(names.Readings)-len(topics.DefaultNames("").Readings)]
	extraEnv := map[string][]string{"collector": {"COLLECTOR_ALLOW_ANONYMOUS=true"}}
	if serviceEnv != nil {
		for service, env := range serviceEnv(kafkaConn, names, prefix) {
			extraEnv[service] = append(extraEnv[service], env...)
		}
	}
	topoFile := filepath.Join(root, "config", "topology.yaml")
	topo, err := topology.Load(topoFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	st, err := stack.Start(ctx, stack.Config{
		Brokers: kafkaConn.Brokers, TopicPrefix: prefix, TopologyFile: topoFile, BinDir: bins, Dir: t.TempDir(),
		Stdout: testWriter{t}, LogFormat: "console", LogLevel: "warn",
		ExtraEnv: extraEnv,
	})
	if err != nil {
		t.Fatalf("start stack: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Stop(); err != nil {
			t.Errorf("stop stack: %v", err)
		}
	})
	if err := st.WaitReady(ctx); err != nil {
		t.Fatalf("stack not ready: %v", err)
	}
	return &pipeline{t: t, kafkaConn: kafkaConn, names: names, stack: st, topo: topo}
}

// testWriter sends service logs to the test log (shown on failure or with -v).
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", p)
	return len(p), nil
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// sender streams simulator ticks to the collector and tallies the acks.
type sender struct {
	stream   greenwavev1.CollectorService_StreamReadingsClient
	accepted int
	rejected map[greenwavev1.RejectReason]int
	sent     int
	batches  int
}

func newSender(ctx context.Context, t *testing.T, addr string) *sender {
	t.Helper()
	st, err := greenwavev1.NewCollectorServiceClient(dial(t, addr)).StreamReadings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return &sender{stream: st, rejected: map[greenwavev1.RejectReason]int{}}
}

func (s *sender) send(t *testing.T, readings []*greenwavev1.TrafficReading, weather []*greenwavev1.WeatherReading) {
	t.Helper()
	s.batches++
	id := fmt.Sprint("b", s.batches)
	if err := s.stream.Send(&greenwavev1.StreamReadingsRequest{Batch: &greenwavev1.ReadingBatch{BatchId: id, Readings: readings, Weather: weather}}); err != nil {
		t.Fatalf("send batch: %v", err)
	}
	resp, err := s.stream.Recv()
	if err != nil {
		t.Fatalf("receive ack: %v", err)
	}
	ack := resp.GetAck()
	if ack.GetBatchId() != id {
		t.Fatalf("ack for %q, want %q", ack.GetBatchId(), id)
	}
	s.sent += len(readings)
	s.accepted += int(ack.GetAcceptedReadings())
	for _, r := range ack.GetRejected() {
		if r.GetKind() == greenwavev1.ReadingKind_READING_KIND_TRAFFIC {
			s.rejected[r.GetReason()]++
		}
	}
	if got := int(ack.GetAcceptedReadings()) + countKind(ack.GetRejected(), greenwavev1.ReadingKind_READING_KIND_TRAFFIC); got != len(readings) {
		t.Fatalf("ack accounts for %d of %d readings", got, len(readings))
	}
}

func countKind(rs []*greenwavev1.RejectedReading, k greenwavev1.ReadingKind) int {
	n := 0
	for _, r := range rs {
		if r.GetKind() == k {
			n++
		}
	}
	return n
}

// feed sends `ticks` simulator intervals, calling between(i) before tick i; it returns the end of the data.
func (p *pipeline) feed(ctx context.Context, s *sender, ticks int, between func(i int)) (dataEnd time.Time) {
	return p.feedWith(ctx, s, ticks, between, nil)
}

// feedWith is feed with a hook run after each tick is sent (resend tests send it again there).
func (p *pipeline) feedWith(_ context.Context, s *sender, ticks int, between func(i int), after func(sim.Tick)) (dataEnd time.Time) {
	p.t.Helper()
	start := p.simStart
	if start.IsZero() {
		start = time.Now().Add(-24 * time.Hour).Truncate(time.Hour)
	}
	sm, err := sim.New(p.topo, sim.Config{Seed: 7, Start: start, IntervalS: 60, DuplicateRate: -1})
	if err != nil {
		p.t.Fatal(err)
	}
	var tick sim.Tick
	for i := range ticks {
		if between != nil {
			between(i)
		}
		tick = sm.Next()
		b := wire.SimBatch("", tick)
		s.send(p.t, b.Readings, b.Weather)
		if after != nil {
			after(tick)
		}
	}
	return tick.At.Add(time.Minute)
}

// flush sends one reading per detector far enough after the data that the watermark closes every window holding
// data. The flush readings themselves stay in open windows and are left out of the accounting.
func (p *pipeline) flush(s *sender, dataEnd time.Time) {
	p.t.Helper()
	at := dataEnd.Add(15 * time.Minute).Truncate(5 * time.Minute)
	var rs []*greenwavev1.TrafficReading
	for _, in := range p.topo.Intersections {
		for _, a := range in.Approaches {
			for _, d := range a.Detectors {
				rs = append(rs, &greenwavev1.TrafficReading{DetectorId: d, ObservedAt: timestampOf(at), IntervalS: 60, Count: 5})
			}
		}
	}
	s.send(p.t, rs, nil)
}

// readAll reads a topic whole (every partition up to its end).
func (p *pipeline) readAll(ctx context.Context, topic string) []kafka.Message {
	p.t.Helper()
	var out []kafka.Message
	for part := range partitions {
		err := stream.ReadPartition(ctx, p.kafkaConn, topic, part, func(m kafka.Message) error {
			out = append(out, m)
			return nil
		})
		if err != nil {
			p.t.Fatalf("read %s: %v", topic, err)
		}
	}
	return out
}

// accounted counts readings observed before dataEnd that reached a feature frame or the dead-letter topic.
// Frames and dead letters are deduplicated by event id: a restarted service may publish an identical record
// again (at-least-once), never a different one.
func (p *pipeline) accounted(ctx context.Context, dataEnd time.Time) (inFrames, deadLettered int) {
	p.t.Helper()
	frames := map[string]*greenwavev1.IntersectionFeatures{}
	for _, m := range p.readAll(ctx, p.names.Features) {
		var f greenwavev1.IntersectionFeatures
		if err := proto.Unmarshal(m.Value, &f); err != nil {
			p.t.Fatalf("decode frame: %v", err)
		}
		if prev, ok := frames[f.GetEventId()]; ok && !proto.Equal(prev, &f) {
			p.t.Errorf("frame %s published twice with different content", f.GetEventId())
		}
		frames[f.GetEventId()] = &f
	}
	for _, f := range frames {
		if f.GetWindowStart().AsTime().Before(dataEnd) {
			for _, a := range f.GetApproaches() {
				inFrames += int(a.GetReadings())
			}
		}
	}
	dls := map[string]bool{}
	for _, m := range p.readAll(ctx, p.names.DeadLetters) {
		var dl greenwavev1.DeadLetter
		if err := proto.Unmarshal(m.Value, &dl); err != nil {
			p.t.Fatalf("decode dead letter: %v", err)
		}
		if dl.GetService() != "cleaner" || dls[dl.GetSourceEventId()+"/"+dl.GetReason().String()] {
			continue
		}
		if dl.GetObservedAt() != nil && !dl.GetObservedAt().AsTime().Before(dataEnd) {
			continue
		}
		dls[dl.GetSourceEventId()+"/"+dl.GetReason().String()] = true
		deadLettered++
	}
	return inFrames, deadLettered
}

// waitAccounted polls the topics until every accepted reading is accounted for, or fails at the deadline.
func (p *pipeline) waitAccounted(ctx context.Context, accepted int, dataEnd time.Time) {
	p.t.Helper()
	for {
		inFrames, dead := p.accounted(ctx, dataEnd)
		if inFrames+dead == accepted {
			p.t.Logf("all %d accepted readings accounted for: %d in feature frames, %d dead-lettered with a reason", accepted, inFrames, dead)
			return
		}
		if inFrames+dead > accepted {
			p.t.Fatalf("%d readings in frames and %d dead letters exceed the %d accepted: something was counted twice", inFrames, dead, accepted)
		}
		select {
		case <-ctx.Done():
			p.t.Fatalf("only %d of %d accepted readings accounted for (%d in frames, %d dead-lettered)", inFrames+dead, accepted, inFrames, dead)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// waitPlans watches plans over gRPC until every intersection has one.
func (p *pipeline) waitPlans(ctx context.Context) map[string]*greenwavev1.SignalPlan {
	p.t.Helper()
	client := greenwavev1.NewSignalControlServiceClient(dial(p.t, p.stack.Addrs("signalcontrol").GRPC))
	ws, err := client.WatchPlans(ctx, &greenwavev1.WatchPlansRequest{})
	if err != nil {
		p.t.Fatal(err)
	}
	plans := map[string]*greenwavev1.SignalPlan{}
	for len(plans) < len(p.topo.Intersections) {
		resp, err := ws.Recv()
		if err != nil {
			p.t.Fatalf("watch plans (have %d of %d intersections): %v", len(plans), len(p.topo.Intersections), err)
		}
		pl := resp.GetPlan()
		if pl.GetReason() == greenwavev1.PlanReason_PLAN_REASON_UNSPECIFIED || pl.GetReasonDetail() == "" || pl.GetCycleS() <= 0 || len(pl.GetPhases()) == 0 {
			p.t.Errorf("plan without reason or timing: %v", pl)
		}
		plans[pl.GetIntersectionId()] = pl
	}
	return plans
}

func TestReadingsBecomePlans(t *testing.T) {
	parallelStack(t)
	p := startPipeline(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	s := newSender(ctx, t, p.stack.Addrs("collector").GRPC)
	dataEnd := p.feed(ctx, s, 90, nil)
	p.flush(s, dataEnd)
	if s.accepted == 0 {
		t.Fatal("collector accepted nothing")
	}
	t.Logf("sent %d readings: %d accepted, rejected by reason %v", s.sent, s.accepted, s.rejected)
	plans := p.waitPlans(ctx)
	for id, pl := range plans {
		t.Logf("plan %s: cycle %.1fs reason %s (%s)", id, pl.GetCycleS(), pl.GetReason(), pl.GetReasonDetail())
	}
	// Every plan a WatchPlans subscriber saw is on the plans topic too, with the same content, keyed by its
	// intersection; gRPC subscribers only ever see plans Kafka acknowledged.
	onTopic := map[string]*greenwavev1.SignalPlan{}
	for _, m := range p.readAll(ctx, p.names.Plans) {
		var pl greenwavev1.SignalPlan
		if err := proto.Unmarshal(m.Value, &pl); err != nil {
			t.Fatalf("decode plan: %v", err)
		}
		if string(m.Key) != pl.GetIntersectionId() {
			t.Errorf("plan %s keyed %q", pl.GetPlanId(), m.Key)
		}
		onTopic[pl.GetPlanId()] = &pl
	}
	for id, pl := range plans {
		if got, ok := onTopic[pl.GetPlanId()]; !ok || !proto.Equal(got, pl) {
			t.Errorf("plan %s of %s seen over WatchPlans is not on the plans topic as sent", pl.GetPlanId(), id)
		}
	}
	p.waitAccounted(ctx, s.accepted-countFlush(p.topo), dataEnd)
}

func TestCleanerKilledLosesNoReading(t *testing.T) {
	parallelStack(t)
	p := startPipeline(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	s := newSender(ctx, t, p.stack.Addrs("collector").GRPC)
	dataEnd := p.feed(ctx, s, 90, func(i int) {
		if i == 45 {
			if err := p.stack.Kill("cleaner", syscall.SIGKILL); err != nil {
				t.Fatalf("kill cleaner: %v", err)
			}
			if err := p.stack.Restart(ctx, "cleaner"); err != nil {
				t.Fatalf("restart cleaner: %v", err)
			}
		}
	})
	p.flush(s, dataEnd)
	p.waitPlans(ctx)
	p.waitAccounted(ctx, s.accepted-countFlush(p.topo), dataEnd)
}

func countFlush(topo topology.Topology) int {
	n := 0
	for _, in := range topo.Intersections {
		for _, a := range in.Approaches {
			n += len(a.Detectors)
		}
	}
	return n
}

func timestampOf(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }

// TestResendAfterLostAckCreatesNoDuplicate resends every batch, as a gateway does when an ack is lost: the
// collector accepts the resend again (it cannot know), but the readings keep their ids, so the cleaner drops the
// replays and every reading is counted downstream exactly once.
func TestResendAfterLostAckCreatesNoDuplicate(t *testing.T) {
	parallelStack(t)
	p := startPipeline(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	s := newSender(ctx, t, p.stack.Addrs("collector").GRPC)
	firstAccepted := 0
	dataEnd := p.feedWith(ctx, s, 40, nil, func(tick sim.Tick) {
		before := s.accepted
		b := wire.SimBatch("", tick)
		s.send(t, b.Readings, b.Weather) // the resend
		firstAccepted += s.accepted - before
	})
	p.flush(s, dataEnd)
	if s.accepted != 2*firstAccepted+countFlush(p.topo) {
		t.Fatalf("collector accepted %d readings, want every one twice (%d) plus the flush", s.accepted, 2*firstAccepted)
	}
	p.waitPlans(ctx)
	p.waitAccounted(ctx, firstAccepted, dataEnd)
}

// stackSlots bounds how many tests run service stacks at once: a stack is several race-instrumented service
// processes around an in-process kfake, and on a two-core machine eight of them at once starve each other past
// their deadlines (heartbeats missed, groups churning). Larger machines keep running several at a time.
var stackSlots = make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2))

// parallelStack marks the test parallel and waits for a stack slot, which it holds until the test ends.
// Tests call it first, before creating their deadline contexts, so waiting does not eat into a deadline.
func parallelStack(t *testing.T) {
	t.Parallel()
	stackSlots <- struct{}{}
	t.Cleanup(func() { <-stackSlots })
}
