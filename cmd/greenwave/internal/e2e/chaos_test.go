package e2e

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/stack"
	"github.com/greenwave-city/greenwave/pkg/clean"
	"github.com/greenwave-city/greenwave/pkg/dataset"
	"github.com/greenwave-city/greenwave/pkg/ingest"
	"github.com/greenwave-city/greenwave/pkg/signal"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/topology"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// chaosSites and chaosDays are the slice of the Boroondara SCATS file the chaos test replays: six sites with
// every approach counted on the first three days of October 2006 (6 624 fifteen-minute readings).
var (
	chaosSites = []string{"0970", "2000", "2200", "3002", "3120", "4030"}
	chaosDays  = []string{"1/10/2006", "2/10/2006", "3/10/2006"}
)

// chaosBatch is how many readings the chaos test's gateway sends per PublishReadings call.
const chaosBatch = 100

// chaosInput returns the SCATS rows the chaos test replays and where they come from. The real file is read
// from the shared data folder (GREENWAVE_DATA_DIR, else ../shared/data beside the repository or /work/shared/data);
// it is not shipped, its licence being unstated. Without it the test replays a synthetic file of the same layout,
// sites and days, and says so.
func chaosInput(t *testing.T) (csvBytes []byte, source string) {
	t.Helper()
	const rel = "boroondara_scats_oct2006/Scats Data October 2006.csv"
	var dirs []string
	if d := os.Getenv("GREENWAVE_DATA_DIR"); d != "" {
		dirs = append(dirs, d)
	}
	if root, err := filepath.Abs(filepath.Join("..", "..", "..", "..", "..", "shared", "data")); err == nil {
		dirs = append(dirs, root)
	}
	dirs = append(dirs, "/work/shared/data")
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, rel))
		if err != nil {
			continue
		}
		lines := strings.Split(string(b), "\n")
		out := slices.Clone(lines[:2])
		for _, l := range lines[2:] {
			rec, err := csv.NewReader(strings.NewReader(l)).Read()
			if err != nil || len(rec) < 10 {
				continue
			}
			if slices.Contains(chaosSites, rec[0]) && slices.Contains(chaosDays, rec[9]) {
				out = append(out, l)
			}
		}
		return []byte(strings.Join(out, "\n") + "\n"), fmt.Sprintf("%s (%d approach-days)", filepath.Join(d, rel), len(out)-2)
	}
	return syntheticSCATS(), "synthetic SCATS-layout file (the real one was not found; set GREENWAVE_DATA_DIR)"
}

// syntheticSCATS writes a file in the SCATS layout with the chaos slice's sites and days, four approaches each,
// whose counts follow a daily curve with seeded noise.
func syntheticSCATS() []byte {
	var b bytes.Buffer
	b.WriteString(",,,,,,,,,Start Time")
	for k := range 96 {
		fmt.Fprintf(&b, ",%d:%02d", k/4, k%4*15)
	}
	b.WriteString("\nSCATS Number,Location,CD_MELWAY,NB_LATITUDE,NB_LONGITUDE,HF VicRoads Internal,VR Internal Stat,VR Internal Loc,NB_TYPE_SURVEY,Date")
	for k := range 96 {
		fmt.Fprintf(&b, ",V%02d", k)
	}
	b.WriteString("\n")
	rng := rand.New(rand.NewPCG(2006, 10))
	for si, site := range chaosSites {
		for ai, dir := range []string{"N", "S", "E", "W"} {
			for _, day := range chaosDays {
				fmt.Fprintf(&b, "%s,MAIN_RD %s of CROSS_ST %d,060 G10,-37.8%d,145.0%d,1,2,3,1,%s", site, dir, si, si, ai, day)
				for k := range 96 {
					h := float64(k) / 4
					v := 20 + 60*math.Exp(-(h-8)*(h-8)/4) + 50*math.Exp(-(h-17)*(h-17)/5) + 10*float64(ai) + 5*rng.NormFloat64()
					fmt.Fprintf(&b, ",%d", max(0, int(v)))
				}
				b.WriteString(",,,\n")
			}
		}
	}
	return b.Bytes()
}

// chaosReadings reads the rows into readings in event-time order (a gateway sends what it measured as time goes
// on; the file is ordered by approach-day).
func chaosReadings(t *testing.T, b []byte) []*greenwavev1.TrafficReading {
	t.Helper()
	rd, err := dataset.Open(dataset.FormatSCATS, bytes.NewReader(b), "chaos.csv", dataset.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var recs []dataset.Record
	for {
		rec, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if rec.Reading != nil {
			recs = append(recs, rec)
		}
	}
	slices.SortStableFunc(recs, func(a, b dataset.Record) int { return a.Time().Compare(b.Time()) })
	out := make([]*greenwavev1.TrafficReading, len(recs))
	for i, rec := range recs {
		out[i] = wire.ReadingProto(*rec.Reading)
		if out[i].GetReadingId() == "" {
			// The id the collector would derive, sent explicitly so the test knows what it acknowledged.
			out[i].ReadingId = ingest.TrafficID(out[i].GetDetectorId(), rec.Reading.Start)
		}
	}
	return out
}

// chaosEvent is one disturbance of the chaos run's schedule.
type chaosEvent struct {
	// at is the batch before whose sending it happens (stage 1) or the share of the stage's output after which it
	// happens (stage 2, in per mille).
	at   int
	what string // "kill", "extra", "unextra", "broker", "resend"
	svc  string
}

func (e chaosEvent) String() string {
	if e.svc == "" {
		return e.what
	}
	return e.what + " " + e.svc
}

// chaosSchedule draws the seeded schedule: in stage 1 (collector, cleaner, trainer, fed batch by batch) each
// service is SIGKILLed twice, a second cleaner and trainer join and leave, and the broker restarts once when a
// restart command is given; in stage 2 (predictor, signal-control) each is SIGKILLed twice and a second instance
// of each joins and leaves.
func chaosSchedule(rng *rand.Rand, batches int, brokerRestart bool) (stage1, stage2 []chaosEvent) {
	at := func() int { return 2 + rng.IntN(batches-4) }
	for _, s := range []string{"collector", "cleaner", "trainer"} {
		stage1 = append(stage1, chaosEvent{at(), "kill", s}, chaosEvent{at(), "kill", s})
	}
	for _, s := range []string{"cleaner", "trainer"} {
		a, b := at(), at()
		stage1 = append(stage1, chaosEvent{min(a, b), "extra", s}, chaosEvent{max(a, b) + 1, "unextra", s})
	}
	// A gateway that lost an ack resends a batch Kafka already has: twice, a batch sent a little earlier.
	stage1 = append(stage1, chaosEvent{at(), "resend", ""}, chaosEvent{at(), "resend", ""})
	if brokerRestart {
		stage1 = append(stage1, chaosEvent{at(), "broker", ""})
	}
	for _, s := range []string{"predictor", "signalcontrol"} {
		stage2 = append(stage2, chaosEvent{50 + rng.IntN(400), "kill", s}, chaosEvent{500 + rng.IntN(400), "kill", s})
		a, b := rng.IntN(900), rng.IntN(900)
		stage2 = append(stage2, chaosEvent{min(a, b), "extra", s}, chaosEvent{max(a, b) + 50, "unextra", s})
	}
	order := func(a, b chaosEvent) int { return a.at - b.at }
	slices.SortStableFunc(stage1, order)
	slices.SortStableFunc(stage2, order)
	return stage1, stage2
}

// chaosRun is one run of the chaos test: a scaleRun (namespace, stack config, collection of the outputs) fed
// through the collector.
type chaosRun struct {
	*scaleRun
	readings []*greenwavev1.TrafficReading
	// acked are the ids of the readings the collector accepted (acknowledged), rejected those it rejected.
	acked, rejected map[string]bool
	// resends counts sends that failed and were sent again; brokerRestart is the command that restarts the
	// broker on the same data ("" for none).
	resends       int
	brokerRestart string
	log           []string
	// collectorDown is set while the collector is killed and not yet restarted: the gateway's next send fails,
	// and the collector is restarted then. brokerDone reports the end of a broker restart in progress.
	collectorDown bool
	brokerDone    chan error
}

// send publishes one batch to the collector until it is acknowledged, reconnecting to the collector's current
// address (it moves when the collector restarts) after every failure, as a gateway would.
func (r *chaosRun) send(ctx context.Context, st *stack.Stack, batch []*greenwavev1.TrafficReading, id string) {
	r.t.Helper()
	for attempt := 0; ; attempt++ {
		resp, err := func() (*greenwavev1.PublishReadingsResponse, error) {
			callCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			conn := dial(r.t, st.Addrs("collector").GRPC)
			defer conn.Close()
			return greenwavev1.NewCollectorServiceClient(conn).PublishReadings(callCtx, &greenwavev1.PublishReadingsRequest{
				Batch: &greenwavev1.ReadingBatch{BatchId: id, Readings: batch}})
		}()
		if err == nil {
			ack := resp.GetAck()
			rejected := map[int]bool{}
			for _, rj := range ack.GetRejected() {
				if rj.GetKind() == greenwavev1.ReadingKind_READING_KIND_TRAFFIC {
					rejected[int(rj.GetIndex())] = true
				}
			}
			for i, rd := range batch {
				if rejected[i] {
					r.rejected[rd.GetReadingId()] = true
				} else {
					r.acked[rd.GetReadingId()] = true
				}
			}
			return
		}
		switch status.Code(err) {
		case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Canceled:
		default:
			r.t.Fatalf("%s: batch %s: %v", r.name, id, err)
		}
		if r.collectorDown {
			if err := st.Restart(ctx, "collector"); err != nil {
				r.t.Fatalf("%s: restart collector: %v", r.name, err)
			}
			r.collectorDown = false
		}
		if ctx.Err() != nil {
			r.t.Fatalf("%s: batch %s not acknowledged before the deadline: %v", r.name, id, err)
		}
		r.resends++
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(min(attempt+1, 10)) * 100 * time.Millisecond): // retry backoff
		}
	}
}

// disturb applies one event to the stack.
func (r *chaosRun) disturb(ctx context.Context, st *stack.Stack, e chaosEvent, extras map[string]string) {
	r.t.Helper()
	switch e.what {
	case "kill":
		if r.collectorDown && e.svc == "collector" {
			return // still down from the last kill
		}
		if err := st.Kill(e.svc, syscall.SIGKILL); err != nil {
			r.t.Fatalf("%s: kill %s: %v", r.name, e.svc, err)
		}
		if e.svc == "collector" {
			r.collectorDown = true // restarted once the gateway has seen it fail
			break
		}
		if err := st.Restart(ctx, e.svc); err != nil {
			r.t.Fatalf("%s: restart %s: %v", r.name, e.svc, err)
		}
	case "extra":
		n, err := st.StartExtra(ctx, e.svc)
		if err != nil {
			r.t.Fatalf("%s: %v", r.name, err)
		}
		extras[e.svc] = n
	case "unextra":
		if err := st.StopExtra(extras[e.svc]); err != nil {
			r.t.Fatalf("%s: %v", r.name, err)
		}
		delete(extras, e.svc)
	case "broker":
		// The restart runs while the gateway goes on sending: the collector answers UNAVAILABLE until the broker
		// is back, and the gateway resends.
		r.brokerDone = make(chan error, 1)
		go func() {
			out, err := exec.CommandContext(ctx, "bash", "-c", r.brokerRestart).CombinedOutput()
			if err != nil {
				err = fmt.Errorf("restart the broker (%s): %w\n%s", r.brokerRestart, err, out)
			}
			r.brokerDone <- err
		}()
	}
	r.log = append(r.log, e.String())
	r.t.Logf("%s: %s", r.name, e)
}

// run runs the two stages, applying the schedule (nil: undisturbed), and collects the outputs.
func (r *chaosRun) run(ctx context.Context, stage1, stage2 []chaosEvent, frames int) scaleOutputs {
	r.t.Helper()
	env := map[string][]string{
		"collector":     {"COLLECTOR_ALLOW_ANONYMOUS=true", "COLLECTOR_MAX_AGE=1000000h"},
		"cleaner":       {"CLEANER_CHECKPOINT_INTERVAL=300ms", "CLEANER_MAX_BATCH=50"},
		"trainer":       {"TRAINER_CHECKPOINT_IDLE=1s", "TRAINER_MAX_BATCH=20"},
		"signalcontrol": {"SIGNAL_CHECKPOINT_IDLE=1s", "SIGNAL_CHECKPOINT_INTERVAL=0s"},
		"predictor":     {"PREDICTOR_MODEL_WAIT=0s", "PREDICTOR_MAX_BATCH=5", "PREDICTOR_COMMIT_INTERVAL=1s"},
	}
	extras := map[string]string{}

	first := r.start(ctx, []string{"collector", "cleaner", "trainer"}, env, false)
	next := 0
	for b := 0; b*chaosBatch < len(r.readings); b++ {
		for next < len(stage1) && stage1[next].at <= b {
			if e := stage1[next]; e.what == "resend" {
				// The whole batch just sent, again, under a new batch id, as a gateway whose ack was lost resends
				// it at once: its readings are on the topic twice, and the batch spans more than the allowed
				// lateness, so some second copies arrive after their windows closed. The cleaner must drop
				// them all as identical replays (the open windows or the replay memory, docs/cleaner.md).
				again := r.readings[max(0, b-1)*chaosBatch : b*chaosBatch]
				r.send(ctx, first, again, fmt.Sprint("resend-", b))
				r.log = append(r.log, fmt.Sprintf("resend %d readings of b%d", len(again), b-1))
			} else {
				r.disturb(ctx, first, e, extras)
			}
			next++
		}
		r.send(ctx, first, r.readings[b*chaosBatch:min(len(r.readings), (b+1)*chaosBatch)], fmt.Sprint("b", b))
	}
	for ; next < len(stage1); next++ {
		r.disturb(ctx, first, stage1[next], extras)
	}
	if r.collectorDown {
		if err := first.Restart(ctx, "collector"); err != nil {
			r.t.Fatalf("%s: restart collector: %v", r.name, err)
		}
		r.collectorDown = false
	}
	if r.brokerDone != nil {
		if err := <-r.brokerDone; err != nil {
			r.t.Fatalf("%s: %v", r.name, err)
		}
	}
	if err := first.WaitReady(ctx); err != nil {
		r.t.Fatalf("%s: %v", r.name, err)
	}
	r.t.Logf("%s: every batch acknowledged (%d resends)", r.name, r.resends)
	r.waitCommitted(ctx, first, "cleaner", r.names.Readings, -1)
	r.waitCommitted(ctx, first, "trainer", r.names.Features, -1)
	if err := first.Stop(); err != nil {
		r.t.Fatalf("%s: stop the first stage: %v", r.name, err)
	}
	r.t.Logf("%s: first stage done", r.name)

	signals := r.start(ctx, []string{"signalcontrol"}, env, false)
	predictors := r.start(ctx, []string{"predictor"}, env, false)
	byService := map[string]*stack.Stack{"predictor": predictors, "signalcontrol": signals}
	outTopic := map[string]string{"predictor": r.names.Predictions, "signalcontrol": r.names.Plans}
	for _, e := range stage2 {
		st := byService[e.svc]
		want := int64(frames) * int64(e.at) / 1000
		for {
			_, end := r.committed(ctx, e.svc, outTopic[e.svc])
			if end >= want {
				break
			}
			select {
			case <-ctx.Done():
				r.t.Fatalf("%s: %d of %d records on %s before the deadline", r.name, end, want, outTopic[e.svc])
			case <-st.Done():
				r.t.Fatalf("%s: %v", r.name, st.Err())
			case <-time.After(5 * time.Millisecond): // polling interval
			}
		}
		r.disturb(ctx, st, e, extras)
	}
	for _, st := range []*stack.Stack{predictors, signals} {
		if err := st.WaitReady(ctx); err != nil {
			r.t.Fatalf("%s: %v", r.name, err)
		}
	}
	r.waitCommitted(ctx, predictors, "predictor", r.names.Features, -1)
	r.waitCommitted(ctx, signals, "signalcontrol", r.names.Predictions, -1)
	r.t.Logf("%s: second stage done", r.name)
	return r.collect(ctx)
}

// readingsOnTopic reads the readings topic: how many records each reading id has, and the ids whose records
// differ in content other than received_at (a resent reading must be the same reading).
func (r *chaosRun) readingsOnTopic(ctx context.Context) (count map[string]int, changed []string) {
	r.t.Helper()
	count, first := map[string]int{}, map[string]*greenwavev1.TrafficReading{}
	r.readTopic(ctx, r.names.Readings, func(m kafka.Message) {
		rd := &greenwavev1.TrafficReading{}
		if err := proto.Unmarshal(m.Value, rd); err != nil {
			r.t.Fatalf("%s: decode reading %s@%d: %v", r.name, m.Key, m.Offset, err)
		}
		id := rd.GetReadingId()
		rd.ReceivedAt = nil // when the collector accepted this copy: processing time, informational
		if f, ok := first[id]; ok && !proto.Equal(f, rd) {
			changed = append(changed, id)
		} else if !ok {
			first[id] = rd
		}
		count[id]++
	})
	return count, changed
}

// deadReadings returns the reading ids the cleaner dead-lettered, with their reasons.
func deadReadings(o scaleOutputs) map[string]string {
	out := map[string]string{}
	for _, d := range o.dead {
		if strings.HasSuffix(d.GetSourceTopic(), "readings.raw") {
			out[d.GetEventId()] = d.GetReason().String()
		}
	}
	return out
}

// TestChaos replays a slice of a real data set (six Boroondara SCATS sites over three days, 6 624 readings) through
// the five services, as processes, over 3 partitions, twice in namespaces of their own: once undisturbed, and once
// under a seeded schedule of faults. In the first stage (collector, cleaner, trainer, the readings sent batch by
// batch to the collector's PublishReadings by a gateway that resends a batch until it is acknowledged) every
// service is SIGKILLed twice and restarted, the gateway twice resends readings Kafka already has (a lost ack), a
// second cleaner and a second trainer join and leave their groups, and
// the broker is restarted on its data once when GREENWAVE_CHAOS_BROKER_RESTART names a command that does it
// (make test-chaos, on Apache Kafka). In the second (predictor, signal-control) each is SIGKILLed twice at points
// of its output and a second instance of each joins and leaves. The stages run one after the other, as in
// TestScaleOutEqualsOneInstance: a prediction is a function of the frame and of the model snapshots the predictor
// holds, so beside a running trainer two runs would differ by timing alone.
//
// It prints an accounting table and fails on any discrepancy: every acknowledged reading id on the readings topic
// (resends identical) and nothing there that was never acknowledged; the same reading ids dead-lettered, with the
// same reasons, as undisturbed; the same feature frames, detector health, predictions, plans, newest model
// snapshots and cleaner and signal-control state, compared by id and field by field; no id published twice with
// different content; every plan valid for its intersection. The seed is logged; GREENWAVE_CHAOS_SEED reruns a
// schedule. It runs when GREENWAVE_CHAOS is set (make test-chaos).
//
// Breaks it catches: those of the scale-out and restart tests at crash points no other test reaches (a cleaner
// killed mid-checkpoint while a second instance holds half its partitions), and at the edge: a collector that
// acknowledges a batch before Kafka has it (ids missing), one that writes a batch it answered as failed behind the
// gateway's back out of order (a later window's reading makes the resent ones late: other dead letters, other
// frames), a cleaner that does not drop a resent reading as identical. Checked: a cleaner whose open windows do
// not recognise an identical resend (it dead-letters it as a conflicting duplicate) fails it on the dead letters
// and the detector health, and so does a cleaner without its replay memory (CLEANER_REPLAY_MEMORY=0s in the
// test's environment: the whole-batch resends' readings of closed windows are dead-lettered late).
func TestChaos(t *testing.T) {
	if os.Getenv("GREENWAVE_CHAOS") == "" {
		t.Skip("the chaos test runs under make test-chaos (GREENWAVE_CHAOS=1)")
	}
	parallelStack(t)
	_, bins := binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	began := time.Now()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("GREENWAVE_CHAOS_SEED"); s != "" {
		if _, err := fmt.Sscan(s, &seed); err != nil {
			t.Fatalf("GREENWAVE_CHAOS_SEED=%q: %v", s, err)
		}
	}
	brokerRestart := os.Getenv("GREENWAVE_CHAOS_BROKER_RESTART")
	raw, source := chaosInput(t)
	topo, err := topology.ImportSCATS(bytes.NewReader(raw), topology.SCATSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	topoFile := filepath.Join(t.TempDir(), "topology.yaml")
	y, err := yaml.Marshal(topo)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(topoFile, y, 0o644); err != nil {
		t.Fatal(err)
	}
	readings := chaosReadings(t, raw)
	ix := topology.NewIndex(topo)
	parts := map[int]bool{}
	for _, x := range topo.Intersections {
		parts[stream.PartitionFor(ix.PartitionKey(x.ID), partitions)] = true
	}
	if len(parts) != partitions {
		t.Fatalf("the slice's intersections fill partitions %v of %d", slices.Sorted(maps.Keys(parts)), partitions)
	}
	batches := (len(readings) + chaosBatch - 1) / chaosBatch
	stage1, stage2 := chaosSchedule(rand.New(rand.NewPCG(seed, 17)), batches, brokerRestart != "")
	fmt.Printf("chaos: seed GREENWAVE_CHAOS_SEED=%d; input %s: %d readings of %d intersections in %d batches; broker restart: %s\n",
		seed, source, len(readings), len(topo.Intersections), batches, either(brokerRestart != "", "yes", "no (set GREENWAVE_CHAOS_BROKER_RESTART)"))

	newRun := func(name string) *chaosRun {
		return &chaosRun{scaleRun: newRunSpace(t, name, topoFile, bins, "error"), readings: readings,
			acked: map[string]bool{}, rejected: map[string]bool{}, brokerRestart: brokerRestart}
	}
	calm := newRun("undisturbed")
	want := calm.run(ctx, nil, nil, 0)
	if len(want.frames) == 0 || len(want.plans) == 0 || len(want.served) == 0 {
		t.Fatalf("undisturbed: %d frames, %d plans, %d models: the slice exercises too little", len(want.frames), len(want.plans), len(want.served))
	}
	wild := newRun("chaos")
	got := wild.run(ctx, stage1, stage2, len(want.frames))

	// The accounting table.
	type row struct {
		what       string
		calm, wild int
		problem    string
	}
	var rows []row
	check := func(what string, calm, wild int, problem string) {
		rows = append(rows, row{what, calm, wild, problem})
	}
	counts, changed := wild.readingsOnTopic(ctx)
	calmCounts, _ := calm.readingsOnTopic(ctx)
	var missing, unacked []string
	for id := range wild.acked {
		if counts[id] == 0 {
			missing = append(missing, id)
		}
	}
	for id := range counts {
		if !wild.acked[id] {
			unacked = append(unacked, id)
		}
	}
	written := func(c map[string]int) (dup int) {
		for _, n := range c {
			dup += n - 1
		}
		return dup
	}
	check("readings acknowledged", len(calm.acked), len(wild.acked), problemIf(len(calm.acked) != len(wild.acked), "different counts"))
	check("readings rejected by the collector", len(calm.rejected), len(wild.rejected), problemIf(!maps.Equal(calm.rejected, wild.rejected), "different ids"))
	check("acknowledged ids missing from the readings topic", 0, len(missing), listProblem(missing))
	check("ids on the readings topic never acknowledged", 0, len(unacked), listProblem(unacked))
	check("readings written more than once (resends)", written(calmCounts), written(counts), "")
	check("resent readings with other content", 0, len(changed), listProblem(changed))
	deadCalm, deadWild := deadReadings(want), deadReadings(got)
	var deadDiff []string
	for id, reason := range deadCalm {
		if deadWild[id] != reason {
			deadDiff = append(deadDiff, id+" "+reason+" → "+either(deadWild[id] == "", "not dead-lettered", deadWild[id]))
		}
	}
	for id, reason := range deadWild {
		if _, ok := deadCalm[id]; !ok {
			deadDiff = append(deadDiff, id+" dead-lettered "+reason+" only under chaos")
		}
	}
	check("readings dead-lettered (ids and reasons)", len(deadCalm), len(deadWild), listProblem(deadDiff))
	compare := func(what string, calm, wild int, bad int) {
		check(what, calm, wild, problemIf(bad > 0, fmt.Sprintf("%d differences (see the errors above)", bad)))
	}
	compare("feature frames", len(want.frames), len(got.frames), compareRuns(t, "chaos", "frame", want.frames, got.frames))
	compare("detector health records", len(want.health), len(got.health), compareRuns(t, "chaos", "detector health", want.health, got.health))
	compare("dead letters", len(want.dead), len(got.dead), compareRuns(t, "chaos", "dead letter", want.dead, got.dead))
	compare("model snapshots (trainer changelog)", len(want.state), len(got.state), compareRuns(t, "chaos", "model snapshot", want.state, got.state))
	compare("model snapshots (models topic)", len(want.served), len(got.served), compareRuns(t, "chaos", "served model", want.served, got.served))
	compare("predictions", len(want.predictions), len(got.predictions), compareRuns(t, "chaos", "prediction", want.predictions, got.predictions))
	compare("plans", len(want.plans), len(got.plans), compareRuns(t, "chaos", "plan", want.plans, got.plans))
	compare("cleaner state (intersections)", len(want.cleaner), len(got.cleaner),
		compareStates(t, "chaos", "cleaner state", want.cleaner, got.cleaner, func(a, b clean.IntersectionState) bool { return reflect.DeepEqual(a, b) }))
	compare("signal-control state (intersections)", len(want.signals), len(got.signals),
		compareStates(t, "chaos", "signal-control state", want.signals, got.signals, signalStateEqual))
	var invalid []string
	for id, p := range got.plans {
		in, ok := ix.Intersection(p.GetIntersectionId())
		if !ok {
			invalid = append(invalid, id+": unknown intersection")
			continue
		}
		if err := signal.Validate(in, wire.Plan(p)); err != nil {
			invalid = append(invalid, id+": "+err.Error())
		}
	}
	check("plans outside their intersection's constraints", 0, len(invalid), listProblem(invalid))

	var tb strings.Builder
	fmt.Fprintf(&tb, "chaos accounting (seed %d, %s, %d resends by the gateway; faults: %s)\n", seed, time.Since(began).Round(time.Second), wild.resends, strings.Join(wild.log, ", "))
	fmt.Fprintf(&tb, "| %-50s | %11s | %11s | %s\n", "check", "undisturbed", "chaos", "result")
	for _, r := range rows {
		res := "ok"
		if r.problem != "" {
			res = "FAIL: " + r.problem
			t.Errorf("chaos: %s: %s", r.what, r.problem)
		}
		fmt.Fprintf(&tb, "| %-50s | %11d | %11d | %s\n", r.what, r.calm, r.wild, res)
	}
	fmt.Print(tb.String())
}

// problemIf returns problem when bad holds, else "".
func problemIf(bad bool, problem string) string {
	if bad {
		return problem
	}
	return ""
}

// listProblem names up to five items of a list of discrepancies ("" for none).
func listProblem(items []string) string {
	if len(items) == 0 {
		return ""
	}
	slices.Sort(items)
	if len(items) > 5 {
		return fmt.Sprintf("%d, e.g. %s", len(items), strings.Join(items[:5], "; "))
	}
	return strings.Join(items, "; ")
}

// either returns a when c holds, else b.
func either[T any](c bool, a, b T) T {
	if c {
		return a
	}
	return b
}
