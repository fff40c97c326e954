package e2e

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/proto"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/stack"
	"github.com/greenwave-city/greenwave/pkg/dataset"
	"github.com/greenwave-city/greenwave/pkg/evaluate"
	"github.com/greenwave-city/greenwave/pkg/features"
	"github.com/greenwave-city/greenwave/pkg/kafkaconn"
	"github.com/greenwave-city/greenwave/pkg/kafkatest"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/topics"
	"github.com/greenwave-city/greenwave/pkg/topology"
	"github.com/greenwave-city/greenwave/pkg/train"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// equivalenceCase is one data slice of TestLiveEqualsEval.
type equivalenceCase struct {
	name, format, file string
	// topology returns the slice's topology: built in (Metro), imported from the file (SCATS) or a fixture.
	topology func(t *testing.T) topology.Topology
	// timeZone is the zone the slice's topology must carry (the data's own); neither eval nor the services are
	// given it any other way.
	timeZone string
	// noLateness runs the cleaner and the evaluation with no allowed lateness: a window then closes on the reading
	// that starts exactly at its end, where Metro stamps the next hour's weather observation too — the tie that
	// the weather join must not depend on (eval applies the reading first, the live cleaner has read the
	// observation first).
	noLateness bool
}

func equivalenceCases() []equivalenceCase {
	dir := filepath.Join("testdata", "equivalence")
	fixture := func(name string) func(t *testing.T) topology.Topology {
		return func(t *testing.T) topology.Topology {
			t.Helper()
			topo, err := topology.Load(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			return topo
		}
	}
	return []equivalenceCase{
		{name: "metro_3600s", format: dataset.FormatMetro, file: filepath.Join(dir, "metro.csv"), timeZone: dataset.MetroLocation,
			topology: func(*testing.T) topology.Topology { return dataset.MetroTopology() }},
		// The hours around two outages longer than the clock-jump tolerance (2012-10-11 10:00–14:00 and
		// 2012-10-12 18:00–23:00): the readings after each are held back and confirmed by the next one.
		{name: "metro_3600s_ties", format: dataset.FormatMetro, file: filepath.Join(dir, "metro-gaps.csv"), timeZone: dataset.MetroLocation,
			topology: func(*testing.T) topology.Topology { return dataset.MetroTopology() }, noLateness: true},
		{name: "scats_900s", format: dataset.FormatSCATS, file: filepath.Join(dir, "scats.csv"), timeZone: dataset.SCATSLocation,
			topology: func(t *testing.T) topology.Topology {
				t.Helper()
				f, err := os.Open(filepath.Join(dir, "scats.csv"))
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				topo, err := topology.ImportSCATS(f, topology.SCATSOptions{})
				if err != nil {
					t.Fatal(err)
				}
				return topo
			}},
		{name: "csv_60s", format: dataset.FormatCSV, file: filepath.Join(dir, "csv60.csv"), timeZone: "UTC", topology: fixture("topology-csv60.yaml")},
		{name: "csv_300s", format: dataset.FormatCSV, file: filepath.Join(dir, "csv300.csv"), timeZone: "Asia/Kolkata", topology: fixture("topology-csv300.yaml")},
	}
}

// TestLiveEqualsEval replays a slice of each data format — Metro (3 600-s windows), SCATS (900-s), canonical CSV
// with 60-s and 300-s windows — through the five services with their default horizons, and checks that what they
// publish equals what pkg/evaluate (the code of greenwave eval) computes on the same slice with its defaults, to
// the bit: every feature frame, the newest snapshot of every model (coefficients, covariances, pending inputs,
// metrics: proto.Equal), and every model-based prediction, recomputed from the offline learner's snapshot of the
// version the prediction names. The offline run also checks that train.Predict on a learner's snapshot gives
// the very forecast the evaluation scores, so the live predictions are eval's forecasts.
//
// The records go as one stream in event-time order, weather interleaved with the readings, as fast as the
// collector takes them; each run of weather records is a batch of its own, since the collector writes one
// batch's records to their topics concurrently. Records of one instant go weather first, as greenwave replay's
// batches reach the topics (the collector publishes a write's weather first), while the evaluation applies them
// in file order (Metro: the reading first): the metro_3600s_ties slice, with no allowed lateness, makes that tie
// fall at every window end, so the frames prove that the join does not depend on it. The cleaner joins weather from a table that a separate goroutine
// fills; it waits for that goroutine to reach the weather topic's end offset before it emits a window
// (CLEANER_WEATHER_WAIT), so its frames join what eval joins (docs/evaluation.md, "Live equals offline").
func TestLiveEqualsEval(t *testing.T) {
	parallelStack(t)
	for _, tc := range equivalenceCases() {
		t.Run(tc.name, func(t *testing.T) { liveEqualsEval(t, tc) })
	}
}

func liveEqualsEval(t *testing.T, tc equivalenceCase) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	topo := tc.topology(t)
	records := readRecords(t, tc.format, tc.file)
	chunks := splitRecords(records, equivalenceChunks)
	// The topology alone carries the data's zone: the built-in and imported ones are checked, since a wrong
	// zone there would make eval and the services agree on the wrong calendar.
	if topo.Zone() != tc.timeZone {
		t.Fatalf("topology time zone %q, want the data's %q", topo.Zone(), tc.timeZone)
	}

	// Offline, first pass: the model versions the evaluation reaches after each chunk of the input, and its
	// frames. greenwave eval's defaults: evaluate.DefaultConfig, which takes the time zone from the topology.
	cfg := evaluate.DefaultConfig()
	cfg.Warmup = 0
	cleanerEnv := []string(nil)
	if tc.noLateness {
		cfg.Clean.AllowedLateness = 0
		cleanerEnv = append(cleanerEnv, "CLEANER_ALLOWED_LATENESS=0s")
	}
	frames := map[string]features.Frame{}
	versions := map[string]uint64{}
	cfg.Observe = func(f features.Frame, v features.Vector, l *train.Learner, _ train.Update) {
		frames[wire.FeaturesEventID(f.IntersectionID, f.WindowStart)] = f
		lc := l.Config()
		for _, h := range lc.Horizons {
			versions[train.ModelID(f.IntersectionID, v.ApproachID, h, lc.Target)] = l.Version()
		}
	}
	ev, err := evaluate.New(topo, cfg)
	if err != nil {
		t.Fatal(err)
	}
	targets := make([]map[string]uint64, len(chunks))
	for k, chunk := range chunks {
		feed(t, ev, chunk)
		targets[k] = maps.Clone(versions)
	}
	final := targets[len(targets)-1]
	if len(final) == 0 {
		t.Fatal("the slice trained no model")
	}

	// Live: the five services with default settings but for the data's age, on one partition: the time zone
	// comes from the topology file alone (no CLEANER_TIME_ZONE or SIGNAL_PROFILE_TIME_ZONE).
	_, bins := binaries(t)
	kafkaConn, names := kafkatest.Setup(t, 1)
	prefix := strings.TrimSuffix(names.Readings, topics.DefaultNames("").Readings)
	topoFile := filepath.Join(t.TempDir(), "topology.yaml")
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(topo); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(topoFile, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := stack.Start(ctx, stack.Config{
		Brokers: kafkaConn.Brokers, TopicPrefix: prefix, TopologyFile: topoFile, BinDir: bins, Dir: t.TempDir(),
		// Error level: signal-control warns of every fallback plan, and these slices are too short for others.
		Stdout: testWriter{t}, LogFormat: "console", LogLevel: "error",
		ExtraEnv: map[string][]string{
			"collector": {"COLLECTOR_ALLOW_ANONYMOUS=true", "COLLECTOR_MAX_AGE=1000000h"},
			"cleaner":   cleanerEnv,
		},
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
	s := newSender(ctx, t, st.Addrs("collector").GRPC)
	// Chunk by chunk, each in batches of replayBatch records in file order, weather and readings mixed as
	// greenwave replay batches them; the next chunk goes once the trainer published the models of this one, so
	// that later frames are predicted with trained models.
	var live map[string]*greenwavev1.ModelSnapshot
	for k, chunk := range chunks {
		chunk = weatherFirst(chunk)
		for len(chunk) > 0 {
			// A batch is a run of records of one kind: the collector writes a batch's records to their topics
			// concurrently, so only a batch boundary (the ack) orders an observation before the readings after it.
			n := 1
			for n < len(chunk) && n < replayBatch && (chunk[n].Weather != nil) == (chunk[0].Weather != nil) {
				n++
			}
			var weather []*greenwavev1.WeatherReading
			var readings []*greenwavev1.TrafficReading
			for _, rec := range chunk[:n] {
				if rec.Weather != nil {
					weather = append(weather, wire.WeatherProto(*rec.Weather))
				} else {
					readings = append(readings, wire.ReadingProto(*rec.Reading))
				}
			}
			s.send(t, readings, weather)
			chunk = chunk[n:]
		}
		for {
			live = newestModels(ctx, t, kafkaConn, names.Models)
			done := true
			for id, v := range targets[k] {
				if live[id].GetVersion() < v {
					done = false
				}
			}
			if done {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("chunk %d: %d live models of %d at the evaluation's versions when the deadline came", k, len(live), len(targets[k]))
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	if len(s.rejected) > 0 {
		t.Fatalf("the collector rejected readings: %v", s.rejected)
	}
	var liveFrames map[string]*greenwavev1.IntersectionFeatures
	var preds map[string]*greenwavev1.IntersectionPrediction
	for {
		liveFrames = readByEventID(ctx, t, kafkaConn, names.Features, func() *greenwavev1.IntersectionFeatures { return &greenwavev1.IntersectionFeatures{} },
			func(m *greenwavev1.IntersectionFeatures) string { return m.GetEventId() })
		preds = readByEventID(ctx, t, kafkaConn, names.Predictions, func() *greenwavev1.IntersectionPrediction { return &greenwavev1.IntersectionPrediction{} },
			func(m *greenwavev1.IntersectionPrediction) string { return m.GetEventId() })
		if len(preds) >= len(liveFrames) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d predictions for %d frames when the deadline came", len(preds), len(liveFrames))
		case <-time.After(100 * time.Millisecond):
		}
	}
	live = newestModels(ctx, t, kafkaConn, names.Models)

	// Offline, second pass: the snapshots of the versions the live services published or predicted with, and
	// every forecast the evaluation scores checked against train.Predict on the learner's snapshot — the
	// predictor's computation.
	type modelVersion struct {
		id      string
		version uint64
	}
	need := map[modelVersion]bool{}
	for id, snap := range live {
		need[modelVersion{id, snap.GetVersion()}] = true
	}
	checkpointed := newestModels(ctx, t, kafkaConn, names.TrainerState)
	for id, snap := range checkpointed {
		need[modelVersion{id, snap.GetVersion()}] = true
	}
	for _, p := range preds {
		for _, ap := range p.GetApproaches() {
			for _, h := range ap.GetHorizons() {
				if !h.GetFallback() {
					need[modelVersion{h.GetModelId(), h.GetModelVersion()}] = true
				}
			}
		}
	}
	offline := map[modelVersion]*greenwavev1.ModelSnapshot{}
	checked := 0
	cfg.Observe = func(f features.Frame, v features.Vector, l *train.Learner, up train.Update) {
		for i, snap := range l.Snapshots() {
			if mv := (modelVersion{snap.ModelID, snap.Version}); need[mv] {
				offline[mv] = wire.SnapshotProto(snap)
			}
			fc, err := train.Predict(snap, f, v, train.DefaultIntervalConfidence)
			if errors.Is(err, train.ErrNotReady) {
				continue
			}
			if err != nil {
				t.Fatalf("predict %s v%d: %v", snap.ModelID, snap.Version, err)
			}
			if want := up.Horizons[i].Forecast; fc.Value != want {
				t.Fatalf("%s v%d: train.Predict gives %v, the evaluation scores the forecast %v", snap.ModelID, snap.Version, fc.Value, want)
			}
			checked++
		}
	}
	if ev, err = evaluate.New(topo, cfg); err != nil {
		t.Fatal(err)
	}
	feed(t, ev, records)

	for id, f := range liveFrames {
		want, ok := frames[id]
		if !ok {
			t.Errorf("live frame %s is not in the evaluation", id)
			continue
		}
		if got := wire.FrameProto(wire.Frame(f)); !proto.Equal(got, wire.FrameProto(want)) {
			t.Errorf("frame %s differs:\nlive    %v\noffline %v", id, got, wire.FrameProto(want))
		}
	}
	if len(liveFrames) != len(frames) {
		t.Errorf("%d live frames, the evaluation built %d before the end of its input", len(liveFrames), len(frames))
	}
	if len(live) != len(final) {
		t.Errorf("%d live models, the evaluation trained %d", len(live), len(final))
	}
	for id, snap := range live {
		want, ok := offline[modelVersion{id, snap.GetVersion()}]
		switch {
		case snap.GetVersion() != final[id]:
			t.Errorf("live model %s at v%d, the evaluation at v%d", id, snap.GetVersion(), final[id])
		case !ok:
			t.Errorf("live model %s v%d: the evaluation has no such version", id, snap.GetVersion())
		case !proto.Equal(snap, wire.SnapshotProto(train.Served(wire.Snapshot(want)))):
			t.Errorf("served model %s v%d differs from the evaluation's", id, snap.GetVersion())
		}
	}
	// The trainer's changelog holds the complete snapshots a restore reads: each equals the evaluation's at its
	// version.
	for id, snap := range checkpointed {
		want, ok := offline[modelVersion{id, snap.GetVersion()}]
		switch {
		case !ok:
			t.Errorf("checkpointed model %s v%d: the evaluation has no such version", id, snap.GetVersion())
		case !proto.Equal(snap, want):
			t.Errorf("checkpointed model %s v%d differs from the evaluation's", id, snap.GetVersion())
		}
	}
	predicted, fallbacks := 0, 0
	for id, p := range preds {
		f, ok := frames[id]
		if !ok {
			t.Errorf("prediction %s of a frame the evaluation did not build", id)
			continue
		}
		for _, ap := range p.GetApproaches() {
			v, ok := vectorOf(f, ap.GetApproachId())
			if !ok {
				t.Errorf("prediction %s: approach %s not in the frame", id, ap.GetApproachId())
				continue
			}
			for _, h := range ap.GetHorizons() {
				if h.GetFallback() {
					fallbacks++
					continue
				}
				snap, ok := offline[modelVersion{h.GetModelId(), h.GetModelVersion()}]
				if !ok {
					t.Errorf("prediction %s used %s v%d, which the evaluation never had", id, h.GetModelId(), h.GetModelVersion())
					continue
				}
				fc, err := train.Predict(wire.Snapshot(snap), f, v, h.GetConfidence())
				if err != nil {
					t.Errorf("prediction %s %s: offline %v", id, h.GetModelId(), err)
					continue
				}
				if h.GetValue() != fc.Value || h.GetLower() != fc.Lower || h.GetUpper() != fc.Upper || h.GetStdError() != fc.StdErr {
					t.Errorf("prediction %s %s v%d: live %v [%v, %v] ±%v, offline %v [%v, %v] ±%v", id, h.GetModelId(), h.GetModelVersion(),
						h.GetValue(), h.GetLower(), h.GetUpper(), h.GetStdError(), fc.Value, fc.Lower, fc.Upper, fc.StdErr)
				}
				predicted++
			}
		}
	}
	if predicted == 0 || checked == 0 {
		t.Errorf("%d model-based live forecasts and %d offline ones to compare: the slice is too short", predicted, checked)
	}
	// How often a partition found the weather follower behind and waited for it (a figure, not a condition:
	// whether it is ever behind depends on scheduling).
	waits := map[string]float64{}
	for _, outcome := range []string{"caught_up", "timed_out"} {
		n, err := metricSum(ctx, st.Addrs("cleaner").HTTP, `greenwave_cleaner_weather_waits_total{outcome="`+outcome+`"}`)
		if err != nil {
			t.Errorf("cleaner weather waits: %v", err)
		}
		waits[outcome] = n
	}
	t.Logf("%s: %d frames, %d models equal to the evaluation's; %d model-based live forecasts equal (%d fallbacks); %d scored offline forecasts equal to train.Predict; cleaner weather waits %v",
		tc.name, len(liveFrames), len(live), predicted, fallbacks, checked, waits)
}

// equivalenceChunks is how many parts TestLiveEqualsEval sends its input in, waiting for the models of each.
const equivalenceChunks = 4

// replayBatch is the most records TestLiveEqualsEval sends per batch: greenwave replay's default -batch.
const replayBatch = 1000

// feed gives records to an evaluator, without finishing it: the live cleaner keeps the last windows open too.
func feed(t *testing.T, ev *evaluate.Evaluator, records []dataset.Record) {
	t.Helper()
	for _, rec := range records {
		if rec.Weather != nil {
			ev.Weather(*rec.Weather)
		} else if err := ev.Reading(*rec.Reading); err != nil {
			t.Fatal(err)
		}
	}
}

// weatherFirst returns time-ordered records with the weather of each instant before its readings (a copy).
func weatherFirst(records []dataset.Record) []dataset.Record {
	out := slices.Clone(records)
	slices.SortStableFunc(out, func(a, b dataset.Record) int {
		if c := a.Time().Compare(b.Time()); c != 0 {
			return c
		}
		rank := func(r dataset.Record) int {
			if r.Weather != nil {
				return 0
			}
			return 1
		}
		return cmp.Compare(rank(a), rank(b))
	})
	return out
}

// splitRecords cuts time-ordered records into n consecutive parts of about equal size, never between two
// records of one event time.
func splitRecords(records []dataset.Record, n int) [][]dataset.Record {
	var parts [][]dataset.Record
	start := 0
	for k := range n {
		end := len(records) * (k + 1) / n
		for end > 0 && end < len(records) && records[end].Time().Equal(records[end-1].Time()) {
			end++
		}
		if end > start {
			parts = append(parts, records[start:end])
			start = end
		}
	}
	return parts
}

// readRecords reads a data file as greenwave eval does: every record, stable-sorted by event time.
func readRecords(t *testing.T, format, file string) []dataset.Record {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd, err := dataset.Open(format, f, file, dataset.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var out []dataset.Record
	for {
		rec, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rec)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time().Before(out[j].Time()) })
	return out
}

func vectorOf(f features.Frame, approach string) (features.Vector, bool) {
	for _, v := range f.Approaches {
		if v.ApproachID == approach {
			return v, true
		}
	}
	return features.Vector{}, false
}

// newestModels reads the (one-partition) models topic and returns the newest snapshot of every model id.
func newestModels(ctx context.Context, t *testing.T, kafkaConn kafkaconn.Conn, topic string) map[string]*greenwavev1.ModelSnapshot {
	t.Helper()
	out := map[string]*greenwavev1.ModelSnapshot{}
	if err := stream.ReadPartition(ctx, kafkaConn, topic, 0, func(m kafka.Message) error {
		d, err := wire.DecodeModel(m)
		if err != nil {
			return fmt.Errorf("decode %s@%d: %w", m.Key, m.Offset, err)
		}
		s := wire.SnapshotProto(d)
		if s.GetVersion() >= out[s.GetModelId()].GetVersion() {
			out[s.GetModelId()] = s
		}
		return nil
	}); err != nil {
		t.Fatalf("read %s: %v", topic, err)
	}
	return out
}

// readByEventID reads a one-partition topic and keeps one record per event id (a replayed record is equal).
func readByEventID[M proto.Message](ctx context.Context, t *testing.T, kafkaConn kafkaconn.Conn, topic string, newM func() M, id func(M) string) map[string]M {
	t.Helper()
	out := map[string]M{}
	if err := stream.ReadPartition(ctx, kafkaConn, topic, 0, func(m kafka.Message) error {
		msg := newM()
		if err := proto.Unmarshal(m.Value, msg); err != nil {
			return fmt.Errorf("decode %s@%d: %w", topic, m.Offset, err)
		}
		out[id(msg)] = msg
		return nil
	}); err != nil {
		t.Fatalf("read %s: %v", topic, err)
	}
	return out
}

// metricSum adds every series of a metric on a service's /metrics.
func metricSum(ctx context.Context, addr, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, name+"{") && !strings.HasPrefix(l, name+" ") {
			continue
		}
		f := strings.Fields(l)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("%q: %w", l, err)
		}
		sum += v
	}
	return sum, sc.Err()
}
