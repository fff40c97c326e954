package signalcontrol

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// watchIntersections are the intersections of watchTopology, each shaped like testTopology's A.
var watchIntersections = []string{"A", "B", "C"}

var watchTopology = func() string {
	var b strings.Builder
	b.WriteString("version: 1\nrevision: watch-1\nintersections:\n")
	for _, id := range watchIntersections {
		fmt.Fprintf(&b, `  - id: %[1]s
    approaches:
      - {id: N, lanes: 2, saturation_flow_vph_per_lane: 1800, detectors: [%[1]s-N]}
      - {id: E, lanes: 1, saturation_flow_vph_per_lane: 1800, detectors: [%[1]s-E]}
    phases:
      - {id: NS, approaches: [N], min_green_s: 10, max_green_s: 60, yellow_s: 4, all_red_s: 2, lost_time_s: 4}
      - {id: EW, approaches: [E], min_green_s: 8, max_green_s: 50, yellow_s: 4, all_red_s: 2, lost_time_s: 4}
    timing: {min_cycle_s: 40, max_cycle_s: 150}
    fixed_time: {NS: 34, EW: 24}
`, id)
	}
	return b.String()
}()

// windowOf returns the window number k of a plan issued for windowStart(k).
func windowOf(t *testing.T, p *greenwavev1.SignalPlan) int {
	t.Helper()
	for k := range 10000 {
		if p.GetPlanId() == wire.PlanID(p.GetIntersectionId(), windowStart(k)) {
			return k
		}
	}
	t.Fatalf("plan %s is not for a test window", p.GetPlanId())
	return -1
}

// TestWatchPlansDeliversEveryPlan is the WatchPlans completeness test. Predictions of many windows of several
// intersections are written at once, so that signal-control handles several windows of an intersection in one
// batch. A WatchPlans client that keeps up receives every plan the plans topic carries, in window order per
// intersection, none coalesced; a subscriber that reads nothing until the end receives each intersection's
// latest plan, and the coalesced counts of what it did receive account for every plan it did not.
func TestWatchPlansDeliversEveryPlan(t *testing.T) {
	t.Parallel()
	const windows = 100 // per intersection, after the first
	h := newHarnessWith(t, watchTopology)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Registered before any plan exists: it sees every plan as an update. Its queue holds 4 plans.
	stalled := h.hub.Subscribe(4, nil)
	defer stalled.Close()
	watch, err := h.client.WatchPlans(ctx, &greenwavev1.WatchPlansRequest{})
	if err != nil {
		t.Fatal(err)
	}
	prod := stream.NewProducer(h.kafkaConn, stream.ProducerConfig{})
	defer prod.Close()

	// Window 0 of every intersection first: once the watch received those plans (initial or not), it is
	// registered, and every later plan reaches it as an update.
	var first []stream.Output
	for _, id := range watchIntersections {
		first = append(first, h.prediction(id, 0))
	}
	if err := prod.Write(ctx, first...); err != nil {
		t.Fatal(err)
	}
	for range watchIntersections {
		if r, err := watch.Recv(); err != nil || windowOf(t, r.GetPlan()) != 0 {
			t.Fatalf("first plans: %v, %v", r, err)
		}
	}
	var outs []stream.Output
	for k := 1; k <= windows; k++ {
		for _, id := range watchIntersections {
			outs = append(outs, h.prediction(id, k))
		}
	}
	if err := prod.Write(ctx, outs...); err != nil {
		t.Fatal(err)
	}

	// The keeping-up client: every plan, in order, coalesced 0.
	next := map[string]int{}
	got := map[string]bool{}
	for _, id := range watchIntersections {
		next[id] = 1
		got[wire.PlanID(id, windowStart(0))] = true
	}
	for range len(outs) {
		r, err := watch.Recv()
		if err != nil {
			t.Fatalf("watch ended after %d of %d plans: %v", len(got), len(outs)+len(first), err)
		}
		p := r.GetPlan()
		id, k := p.GetIntersectionId(), windowOf(t, p)
		if k != next[id] || r.GetCoalesced() != 0 || r.GetInitial() {
			t.Fatalf("plan %s (initial %v, coalesced %d): want window %d of %s, not coalesced", p.GetPlanId(), r.GetInitial(), r.GetCoalesced(), next[id], id)
		}
		next[id]++
		got[p.GetPlanId()] = true
	}

	// What it received is exactly what the plans topic holds.
	onTopic := map[string]bool{}
	for part := range 2 {
		if err := stream.ReadPartition(ctx, h.kafkaConn, h.names.Plans, part, func(m kafka.Message) error {
			var p greenwavev1.SignalPlan
			if err := proto.Unmarshal(m.Value, &p); err != nil {
				return err
			}
			onTopic[p.GetPlanId()] = true
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if len(onTopic) != len(got) {
		t.Errorf("plans topic holds %d plans, the watch received %d", len(onTopic), len(got))
	}
	for id := range onTopic {
		if !got[id] {
			t.Errorf("plan %s is on the topic but was not watched", id)
		}
	}

	// The stalled subscriber: every plan was published while it read nothing. Per intersection it receives
	// increasing windows ending with the last, each one's coalesced counting exactly the windows skipped.
	last := map[string]int{}
	for _, id := range watchIntersections {
		last[id] = -1
	}
	delivered, coalesced := 0, 0
	for done := 0; done < len(watchIntersections); {
		it, err := stalled.Next(ctx)
		if err != nil {
			t.Fatalf("stalled subscriber after %d plans: %v", delivered, err)
		}
		id, k := it.Key, windowOf(t, it.Value)
		if k <= last[id] || it.Coalesced != k-last[id]-1 {
			t.Fatalf("stalled subscriber: %s window %d with coalesced %d after window %d", id, k, it.Coalesced, last[id])
		}
		last[id] = k
		delivered, coalesced = delivered+1, coalesced+it.Coalesced
		if k == windows {
			done++
		}
	}
	if delivered+coalesced != len(first)+len(outs) || coalesced == 0 {
		t.Errorf("stalled subscriber: %d delivered + %d coalesced, want %d in all with some coalesced", delivered, coalesced, len(first)+len(outs))
	}
	cctx, stop := context.WithCancel(ctx)
	stop()
	if _, err := stalled.Next(cctx); !errors.Is(err, context.Canceled) {
		t.Errorf("stalled subscriber after the last plans: %v, want nothing more queued", err)
	}
}
