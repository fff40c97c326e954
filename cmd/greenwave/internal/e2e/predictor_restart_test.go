package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/stack"
	"github.com/greenwave-city/greenwave/pkg/kafkaconn"
	"github.com/greenwave-city/greenwave/pkg/kafkatest"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// groupProgress returns how many records of topic the consumer group has committed, over all partitions, and how
// many there are.
func groupProgress(ctx context.Context, t *testing.T, kafkaConn kafkaconn.Conn, group, topic string) (done, total int64) {
	t.Helper()
	client := kafkaConn.Client(10 * time.Second)
	parts := make([]int, partitions)
	var reqs []kafka.OffsetRequest
	for p := range partitions {
		parts[p] = p
		reqs = append(reqs, kafka.LastOffsetOf(p))
	}
	ends, err := stream.ListOffsets(ctx, client, map[string][]kafka.OffsetRequest{topic: reqs})
	if err != nil {
		t.Fatalf("list offsets: %v", err)
	}
	got, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
	if err != nil {
		t.Fatalf("fetch committed offsets: %v", err)
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

// predictorRun is the predictor alone on a namespace whose features and models topics the trainer filled.
type predictorRun struct {
	*trainerRun
	predictor *stack.Stack
}

// startPredictorRun trains models on the trainer restart input (the trainer runs to the end of its input and is
// stopped, so the models topic no longer changes), then starts the predictor with extra environment.
func startPredictorRun(ctx context.Context, t *testing.T, env ...string) *predictorRun {
	t.Helper()
	r := startTrainerRun(ctx, t, "TRAINER_CHECKPOINT_IDLE=1s")
	r.waitCommitted(ctx, -1)
	if err := r.stack.Stop(); err != nil {
		t.Fatalf("stop trainer: %v", err)
	}
	return &predictorRun{trainerRun: r, predictor: startService(ctx, t, "predictor", r.kafkaConn, r.prefix, env)}
}

// waitPredicted polls until the predictor's group committed at least n features records (n < 0: all of them).
func (r *predictorRun) waitPredicted(ctx context.Context, n int64) {
	r.t.Helper()
	for {
		done, total := groupProgress(ctx, r.t, r.kafkaConn, r.prefix+"greenwave.predictor", r.names.Features)
		if (n < 0 && done == total) || (n >= 0 && done >= n) {
			return
		}
		select {
		case <-ctx.Done():
			r.t.Fatalf("predictor committed %d of %d frames before the deadline (waiting for %d)", done, total, n)
		case <-r.predictor.Done():
			r.t.Fatalf("predictor exited: %v", r.predictor.Err())
		case <-time.After(20 * time.Millisecond): // polling interval
		}
	}
}

// waitPublished polls until the predictions topic holds at least n records: a kill point that, unlike a commit,
// can fall anywhere between two commits.
func (r *predictorRun) waitPublished(ctx context.Context, n int64) {
	r.t.Helper()
	for {
		_, end := groupProgress(ctx, r.t, r.kafkaConn, r.prefix+"greenwave.predictor", r.names.Predictions)
		if end >= n {
			return
		}
		select {
		case <-ctx.Done():
			r.t.Fatalf("%d of %d predictions published before the deadline", end, n)
		case <-r.predictor.Done():
			r.t.Fatalf("predictor exited: %v", r.predictor.Err())
		case <-time.After(5 * time.Millisecond): // polling interval
		}
	}
}

// predictions reads the predictions topic whole: the newest record per event id, and how many records each has.
func (r *predictorRun) predictions(ctx context.Context) (map[string]*greenwavev1.IntersectionPrediction, map[string]int) {
	r.t.Helper()
	out, count := map[string]*greenwavev1.IntersectionPrediction{}, map[string]int{}
	for part := range partitions {
		if err := stream.ReadPartition(ctx, r.kafkaConn, r.names.Predictions, part, func(m kafka.Message) error {
			p, err := wire.TopicPredictions.Decode(m)
			if err != nil {
				return fmt.Errorf("decode prediction %s@%d: %w", m.Key, m.Offset, err)
			}
			if prev, ok := out[p.GetEventId()]; ok && !proto.Equal(prev, p) {
				r.t.Errorf("prediction %s published twice with different content", p.GetEventId())
			}
			out[p.GetEventId()] = p
			count[p.GetEventId()]++
			return nil
		}); err != nil {
			r.t.Fatalf("read predictions[%d]: %v", part, err)
		}
	}
	return out, count
}

// TestPredictorRestartEquivalence predicts a fixed input (the trainer restart input, with the models the trainer
// learned from it) twice, in two namespaces: once uninterrupted, once slowed down (one frame per write) with offsets
// committed every 2 s while the predictor is SIGKILLed at seeded random points and restarted. Both runs must publish the
// same predictions: every event id of one in the other, with equal content (no lost or changed prediction), and
// the killed run each event id exactly once, since a restarted predictor keeps the predictions of replayed frames
// that were already on the topic (greenwave-source-offset).
//
// Breaks it catches: a prediction lost at a kill (offsets committed before the predictions were acknowledged), a
// replayed frame predicted again (a second record of its event id), a prediction that depends on anything but the
// frame and the models (different content).
func TestPredictorRestartEquivalence(t *testing.T) {
	parallelStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	session := "PREDICTOR_SESSION_TIMEOUT=1s"
	if kafkatest.Real() {
		session = "PREDICTOR_SESSION_TIMEOUT=6s"
	}
	const kills = 3
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("PREDICTOR_RESTART_SEED"); s != "" {
		if _, err := fmt.Sscan(s, &seed); err != nil {
			t.Fatalf("PREDICTOR_RESTART_SEED=%q: %v", s, err)
		}
	}
	t.Logf("kill points seeded with PREDICTOR_RESTART_SEED=%d", seed)
	rng := rand.New(rand.NewPCG(seed, 3))

	whole := startPredictorRun(ctx, t, session)
	whole.waitPredicted(ctx, -1)
	want, _ := whole.predictions(ctx)
	wantModels := newestModels(ctx, t, whole.kafkaConn, whole.names.Models)

	// One frame per write, each write lingering 20 ms: the run lasts seconds, so the kills land mid-way, and a kill
	// leaves up to 2 s of published but uncommitted predictions for the restart to replay.
	killed := startPredictorRun(ctx, t, session, "PREDICTOR_MAX_BATCH=1", "PREDICTOR_WRITE_LINGER=20ms", "PREDICTOR_COMMIT_INTERVAL=2s")
	// Both namespaces must serve the same models, or the comparison below would test the trainer, not the predictor.
	gotModels := newestModels(ctx, t, killed.kafkaConn, killed.names.Models)
	if len(wantModels) == 0 || len(gotModels) != len(wantModels) {
		t.Fatalf("the two namespaces' models topics hold %d and %d models", len(wantModels), len(gotModels))
	}
	for id, m := range wantModels {
		if !proto.Equal(m, gotModels[id]) {
			t.Fatalf("model %s differs between the two namespaces' models topics: the trainer's output is not deterministic", id)
		}
	}
	_, total := groupProgress(ctx, t, killed.kafkaConn, killed.prefix+"greenwave.predictor", killed.names.Features)
	points := make([]int64, kills)
	for i := range points {
		points[i] = rng.Int64N(total)
	}
	for i := range points {
		for j := i + 1; j < len(points); j++ {
			if points[j] < points[i] {
				points[i], points[j] = points[j], points[i]
			}
		}
	}
	for _, p := range points {
		killed.waitPublished(ctx, p)
		if err := killed.predictor.Kill("predictor", syscall.SIGKILL); err != nil {
			t.Fatalf("kill predictor: %v", err)
		}
		_, onTopic := killed.predictions(ctx)
		done, _ := groupProgress(ctx, t, killed.kafkaConn, killed.prefix+"greenwave.predictor", killed.names.Features)
		if err := killed.predictor.Restart(ctx, "predictor"); err != nil {
			t.Fatalf("restart predictor: %v", err)
		}
		if err := killed.predictor.WaitReady(ctx); err != nil {
			t.Fatalf("predictor not ready after restart: %v", err)
		}
		t.Logf("predictor SIGKILLed with %d of %d frames committed and %d predictions on the topic (kill point %d), restarted", done, total, len(onTopic), p)
	}
	killed.waitPredicted(ctx, -1)
	kept, err := metricSum(ctx, killed.predictor.Addrs("predictor").HTTP, "greenwave_predictor_replays_kept_total")
	if err != nil {
		t.Fatal(err)
	}
	got, count := killed.predictions(ctx)

	if int64(len(want)) != total {
		t.Fatalf("uninterrupted run: %d predictions of %d frames", len(want), total)
	}
	modelBased := 0
	for _, p := range want {
		if !p.GetApproaches()[0].GetHorizons()[0].GetFallback() {
			modelBased++
		}
	}
	if modelBased == 0 {
		t.Fatal("no model-based prediction: the input exercises too little")
	}
	compareByID(t, "prediction", want, got)
	for id, n := range count {
		if n != 1 {
			t.Errorf("prediction %s on the topic %d times after the restarts, want once", id, n)
		}
	}
	t.Logf("both runs: %d predictions (%d model-based); the last restart kept %v published predictions of replayed frames", len(want), modelBased, kept)
}
