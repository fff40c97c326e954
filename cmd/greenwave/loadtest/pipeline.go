package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/benchfig"
	"github.com/greenwave-city/greenwave/pkg/stream"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// windowKey names one window of one intersection.
type windowKey struct {
	intersection string
	start        int64 // Unix seconds
}

// runPipeline feeds readings in real time and measures, for every plan of a measured window, the time from the
// closing reading's append to the plan's append.
func runPipeline(ctx context.Context, e *testEnv, o options, stderr io.Writer) (benchfig.Figures, error) {
	snd, err := newSender(ctx, e, 64)
	if err != nil {
		return benchfig.Figures{}, err
	}
	interval := time.Duration(o.intervalS) * time.Second
	win := time.Duration(o.windowS) * time.Second
	start := time.Now().Truncate(time.Second).Add(time.Second)
	// The window holding the start is partial and the next one warms up (first frames, first plans of each
	// intersection); the measured windows follow.
	firstMeasured := start.Truncate(win).Add(2 * win)
	nWin := max(1, int((time.Duration(o.minutes*float64(time.Minute))+win-1)/win))
	lastEnd := firstMeasured.Add(time.Duration(nWin) * win)
	// Every intersection's last measured window closes on its first reading starting at or after lastEnd, sent
	// one interval later.
	feedEnd := lastEnd.Add(2 * interval)
	byPhase := make([][]int, o.intervalS)
	for i := range o.intersections {
		byPhase[i%o.intervalS] = append(byPhase[i%o.intervalS], i)
	}
	fmt.Fprintf(stderr, "loadtest: feeding %.0f readings/s in real time until %s (%d measured windows from %s)\n",
		float64(4*o.intersections)/float64(o.intervalS), feedEnd.Format(time.TimeOnly), nWin, firstMeasured.Format(time.TimeOnly))
	timer := time.NewTimer(0)
	defer timer.Stop()
	lost := 0
	for now := start; now.Before(feedEnd); now = now.Add(time.Second) {
		timer.Reset(time.Until(now))
		select {
		case <-ctx.Done():
			return benchfig.Figures{}, ctx.Err()
		case <-e.stack.Done():
			return benchfig.Figures{}, fmt.Errorf("stack ended: %v", e.stack.Err())
		case <-timer.C:
		}
		// A detector reports when its counting interval ends: the reading starts one interval ago. Intersection
		// i reports at the seconds ≡ i (mod interval), so the load is spread evenly over each interval.
		var rs []*greenwavev1.TrafficReading
		for _, i := range byPhase[int(now.Unix()%int64(o.intervalS))] {
			rs = append(rs, readings(i, i+1, now.Add(-interval), o.intervalS)...)
		}
		if err := snd.send(ctx, rs); err != nil {
			// The collector ends the stream when a write to Kafka fails (a broker starved of CPU on the shared
			// machine loses partition leadership for seconds): a gateway opens a new stream and goes on; the
			// batch is lost, and the latency of the windows around it counts the stall.
			lost += len(rs)
			fmt.Fprintf(stderr, "loadtest: %v; opening a new stream (%d readings lost)\n", err, len(rs))
			snd.s.Close(func(*greenwavev1.BatchAck) error { return nil })
			if snd, err = newSender(ctx, e, 64); err != nil {
				return benchfig.Figures{}, err
			}
		}
	}
	if err := snd.finish(); err != nil {
		return benchfig.Figures{}, err
	}
	// The cleaner commits its input only with its snapshots (CLEANER_CHECKPOINT_*), so committed offsets do not
	// say when the last window is through: poll the topics until every measured window closed has its plan.
	dctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	for {
		fig, missing, err := pipelineFigures(dctx, e, o, firstMeasured, lastEnd, lost)
		if err != nil || missing == 0 {
			return fig, err
		}
		select {
		case <-dctx.Done():
			return benchfig.Figures{}, fmt.Errorf("%d measured windows closed without a plan: %w", missing, dctx.Err())
		case <-time.After(2 * time.Second):
		}
	}
}

// appended reads a topic whole and maps each record's window to its append time (the first record of a window;
// a replayed duplicate is later). window extracts the window from a record (ok false: skip it).
func appended(ctx context.Context, e *testEnv, topic string, window func(kafka.Message) (windowKey, bool, error)) (map[windowKey]time.Time, error) {
	out := map[windowKey]time.Time{}
	md, err := e.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil || len(md.Topics) != 1 {
		return nil, fmt.Errorf("metadata of %s: %v", topic, err)
	}
	for _, p := range md.Topics[0].Partitions {
		err := stream.ReadPartition(ctx, e.conn, topic, p.ID, func(m kafka.Message) error {
			k, ok, err := window(m)
			if err != nil {
				return fmt.Errorf("%s[%d]@%d: %w", topic, p.ID, m.Offset, err)
			}
			if _, seen := out[k]; ok && !seen {
				out[k] = m.Time
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// closes reads the readings topic and returns, per intersection window with data, the append time of the
// reading that closed it: with no allowed lateness, the intersection's first reading (in its partition's order,
// which is the cleaner's) starting at or after the window's end.
func closes(ctx context.Context, e *testEnv, windowS int64) (map[windowKey]time.Time, error) {
	open := map[string]int64{} // intersection → start of its newest window with data
	out := map[windowKey]time.Time{}
	md, err := e.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{e.names.Readings}})
	if err != nil || len(md.Topics) != 1 {
		return nil, fmt.Errorf("metadata of %s: %v", e.names.Readings, err)
	}
	for _, p := range md.Topics[0].Partitions {
		err := stream.ReadPartition(ctx, e.conn, e.names.Readings, p.ID, func(m kafka.Message) error {
			var r greenwavev1.TrafficReading
			if err := proto.Unmarshal(m.Value, &r); err != nil {
				return fmt.Errorf("readings[%d]@%d: %w", p.ID, m.Offset, err)
			}
			in := string(m.Key)
			ws := r.GetObservedAt().AsTime().Unix() / windowS * windowS
			cur, ok := open[in]
			switch {
			case !ok:
				open[in] = ws
			case ws > cur:
				out[windowKey{in, cur}] = m.Time
				open[in] = ws
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// pipelineFigures computes the latency of every plan of a measured window; missing counts the measured windows
// closed without a plan (yet).
func pipelineFigures(ctx context.Context, e *testEnv, o options, firstMeasured, lastEnd time.Time, lost int) (fig benchfig.Figures, missing int, err error) {
	closed, err := closes(ctx, e, int64(o.windowS))
	if err != nil {
		return benchfig.Figures{}, 0, err
	}
	frames, err := appended(ctx, e, e.names.Features, func(m kafka.Message) (windowKey, bool, error) {
		var f greenwavev1.IntersectionFeatures
		err := proto.Unmarshal(m.Value, &f)
		return windowKey{f.GetIntersectionId(), f.GetWindowStart().AsTime().Unix()}, err == nil, err
	})
	if err != nil {
		return benchfig.Figures{}, 0, err
	}
	preds, err := appended(ctx, e, e.names.Predictions, func(m kafka.Message) (windowKey, bool, error) {
		var p greenwavev1.IntersectionPrediction
		err := proto.Unmarshal(m.Value, &p)
		return windowKey{p.GetIntersectionId(), p.GetWindowStart().AsTime().Unix()}, err == nil, err
	})
	if err != nil {
		return benchfig.Figures{}, 0, err
	}
	reasons := map[string]int{}
	plans, err := appended(ctx, e, e.names.Plans, func(m kafka.Message) (windowKey, bool, error) {
		var p greenwavev1.SignalPlan
		if err := proto.Unmarshal(m.Value, &p); err != nil {
			return windowKey{}, false, err
		}
		// plan_id is "<intersection>/<window start, Unix seconds>" (pkg/wire.PlanID).
		i := strings.LastIndexByte(p.GetPlanId(), '/')
		ws, err := strconv.ParseInt(p.GetPlanId()[i+1:], 10, 64)
		if i < 0 || err != nil {
			return windowKey{}, false, nil // an override's plan: no window
		}
		reasons[p.GetReason().String()]++
		return windowKey{p.GetIntersectionId(), ws}, true, nil
	})
	if err != nil {
		return benchfig.Figures{}, 0, err
	}
	var total, toFrame, toPred, toPlan []float64
	// Every measured plan's timings, for reading where a slow one lost its time (written beside the service logs).
	var perPlan strings.Builder
	perPlan.WriteString("intersection,window_start,closed_at,close_to_frame_ms,frame_to_prediction_ms,prediction_to_plan_ms,total_ms\n")
	for k, closedAt := range closed {
		if k.start < firstMeasured.Unix() || k.start >= lastEnd.Unix() {
			continue
		}
		planAt, ok := plans[k]
		if !ok {
			missing++
			continue
		}
		total = append(total, ms(planAt.Sub(closedAt)))
		f, p := frames[k], preds[k]
		if !f.IsZero() && !p.IsZero() {
			toFrame = append(toFrame, ms(f.Sub(closedAt)))
			toPred = append(toPred, ms(p.Sub(f)))
			toPlan = append(toPlan, ms(planAt.Sub(p)))
		}
		fmt.Fprintf(&perPlan, "%s,%d,%s,%.0f,%.0f,%.0f,%.0f\n", k.intersection, k.start, closedAt.UTC().Format(time.RFC3339Nano),
			ms(f.Sub(closedAt)), ms(p.Sub(f)), ms(planAt.Sub(p)), ms(planAt.Sub(closedAt)))
	}
	if missing > 0 || len(total) == 0 {
		return benchfig.Figures{}, max(missing, 1), nil
	}
	if err := os.WriteFile(filepath.Join(e.dir, "plans.csv"), []byte(perPlan.String()), 0o644); err != nil {
		return benchfig.Figures{}, 0, err
	}
	rate := float64(4*o.intersections) / float64(o.intervalS)
	setup := fmt.Sprintf("cmd/greenwave/loadtest --mode pipeline on the real broker (SASL_SSL): the five services as processes, %d intersections × 4 detectors "+
		"reporting every %d s in real time (%.0f readings/s, spread evenly over the interval), %d-s windows, CLEANER_ALLOWED_LATENESS=0; "+
		"per plan, the broker's append time (LogAppendTime) of the plan minus that of the reading that closed its window (the intersection's first reading "+
		"at or after the window end), queueing included; %d plans of the windows %s–%s UTC; no model is trained within the run (warm-up), so plans are fallbacks "+
		"from persistence predictions (reasons %s) — the same path through every service; %d readings lost to failed collector writes",
		o.intersections, o.intervalS, rate, o.windowS, len(total), firstMeasured.UTC().Format(time.TimeOnly), lastEnd.UTC().Format(time.TimeOnly), reasonList(reasons), lost)
	stages := fmt.Sprintf("close→frame p50 %.1f / p99 %.1f ms, frame→prediction p50 %.1f / p99 %.1f ms, prediction→plan p50 %.1f / p99 %.1f ms",
		pct(toFrame, 50), pct(toFrame, 99), pct(toPred, 50), pct(toPred, 99), pct(toPlan, 50), pct(toPlan, 99))
	return benchfig.Figures{Rows: []benchfig.Row{
		{Name: "pipeline_latency_p50_ms", Value: pct(total, 50), Unit: "ms", Setup: setup + " [" + stages + "]"},
		{Name: "pipeline_latency_p99_ms", Value: pct(total, 99), Unit: "ms",
			Setup: fmt.Sprintf("as pipeline_latency_p50_ms, the 99th percentile over the %d plans [max %.1f ms]", len(total), pct(total, 100)),
			Aim:   &benchfig.Aim{Bound: 50}},
	}}, 0, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// pct is the p-th percentile of xs by nearest rank (p 100: the maximum); NaN-free, 0 for none.
func pct(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	r := int(float64(len(s))*p/100+0.999999) - 1
	return s[min(max(r, 0), len(s)-1)]
}

func reasonList(m map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", strings.TrimPrefix(k, "PLAN_REASON_"), m[k]))
	}
	return strings.Join(parts, ", ")
}
