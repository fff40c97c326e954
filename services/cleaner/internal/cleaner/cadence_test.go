package cleaner

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/greenwave-city/greenwave/pkg/stream"
)

// TestCadenceDue checks the checkpoint rule case by case, on an injected clock.
func TestCadenceDue(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	c := cadence{minInterval: 30 * time.Second, ratio: 0.5, maxDelay: time.Hour}
	live := now.Add(-6 * time.Minute)  // a live feed's watermark: the newest start minus the lateness
	replay := now.Add(-72 * time.Hour) // a backfill's
	base := cadenceState{pending: true, since: now.Add(-time.Minute), last: now.Add(-time.Minute), eventTime: live}
	with := func(f func(*cadenceState)) cadenceState { s := base; f(&s); return s }
	for _, tc := range []struct {
		name string
		c    cadence
		s    cadenceState
		idle time.Duration
		want string // the rule that fires, "" none
	}{
		{name: "interval 0 checkpoints every batch", c: cadence{}, s: cadenceState{}, want: dueEveryBatch},
		{name: "nothing pending", c: c, s: with(func(s *cadenceState) { s.pending = false; s.input = 1 << 20 }), want: ""},
		{name: "input pays for the state", c: c, s: with(func(s *cadenceState) { s.input, s.estimate = 20_000, 10_000 }), want: dueBytes},
		{name: "input short of paying for the state", c: c, s: with(func(s *cadenceState) { s.input, s.estimate = 19_999, 10_000 }), want: ""},
		{name: "paid for, but within the minimum interval", c: c,
			s: with(func(s *cadenceState) { s.input, s.estimate, s.last = 1<<20, 10_000, now.Add(-29*time.Second) }), want: ""},
		{name: "paid for, the minimum interval just over", c: c,
			s: with(func(s *cadenceState) { s.input, s.estimate, s.last = 20_000, 10_000, now.Add(-30*time.Second) }), want: dueBytes},
		{name: "first checkpoint of an assignment: no interval to wait", c: c,
			s: with(func(s *cadenceState) { s.input, s.estimate, s.last = 20_000, 10_000, time.Time{} }), want: dueBytes},
		{name: "nothing written yet costs nothing", c: c, s: with(func(s *cadenceState) { s.input, s.estimate = 1, 0 }), want: dueBytes},
		{name: "redeliveries only: no bytes, no state", c: c, s: with(func(s *cadenceState) { s.input, s.estimate = 0, 0 }), want: dueBytes},
		{name: "pending for the maximum delay", c: c,
			s: with(func(s *cadenceState) { s.input, s.estimate, s.since = 100, 10_000, now.Add(-time.Hour) }), want: dueMaxDelay},
		{name: "pending just under the maximum delay", c: c,
			s: with(func(s *cadenceState) { s.input, s.estimate, s.since = 100, 10_000, now.Add(-time.Hour+time.Second) }), want: ""},
		{name: "maximum delay, but within the minimum interval", c: c,
			s: with(func(s *cadenceState) {
				s.input, s.estimate, s.since, s.last = 100, 10_000, now.Add(-2*time.Hour), now.Add(-10*time.Second)
			}), want: ""},
		{name: "idle after a replay", c: c, idle: 30 * time.Second,
			s: with(func(s *cadenceState) { s.input, s.estimate, s.eventTime = 100, 10_000, replay }), want: dueReplayIdle},
		{name: "idle after a replay, not long enough", c: c, idle: 29 * time.Second,
			s: with(func(s *cadenceState) { s.input, s.estimate, s.eventTime = 100, 10_000, replay }), want: ""},
		{name: "end of a batch of a replay, short of paying", c: c, idle: 0,
			s: with(func(s *cadenceState) { s.input, s.estimate, s.eventTime = 100, 10_000, replay }), want: ""},
		{name: "idle in a live feed waits for the bytes", c: c, idle: 50 * time.Second,
			s: with(func(s *cadenceState) { s.input, s.estimate = 100, 10_000 }), want: ""},
		{name: "idle, event time just within the maximum delay: live", c: c, idle: time.Minute,
			s: with(func(s *cadenceState) { s.input, s.estimate, s.eventTime = 100, 10_000, now.Add(-time.Hour) }), want: ""},
		{name: "idle, no event time yet (every reading rejected)", c: c, idle: time.Minute,
			s: with(func(s *cadenceState) { s.input, s.estimate, s.eventTime = 100, 10_000, time.Time{} }), want: ""},
		{name: "a wrong clock ahead looks live", c: c, idle: time.Minute,
			s: with(func(s *cadenceState) { s.input, s.estimate, s.eventTime = 100, 10_000, now.Add(72*time.Hour) }), want: ""},
		{name: "a large ratio is the old every-interval cadence", c: cadence{minInterval: 30 * time.Second, ratio: 1e9, maxDelay: time.Hour},
			s: with(func(s *cadenceState) { s.input, s.estimate = 1, 1<<20 }), want: dueBytes},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			due, why := tc.c.due(tc.s, now, tc.idle)
			if why != tc.want || due != (tc.want != "") {
				t.Errorf("due(%+v, idle %v) = %v %q, want %q", tc.s, tc.idle, due, why, tc.want)
			}
		})
	}
}

// feedRun is what feed measured.
type feedRun struct {
	input, state int64           // bytes of readings handled and of state records written
	checkpoints  []time.Duration // processing time of every checkpoint since the start
	records      int             // state records written
	first        int64           // bytes of the first checkpoint (estimate 0: nothing to compare with)
}

// feed drives a partition the way stream.Processor does, on a simulated clock: every minute of processing time
// the intersection's detectors send the minute that just ended (one batch), CheckpointDue is asked at the end of
// the batch and, while a checkpoint is deferred, after every 30 s of silence. lag is how far the simulated
// readings are behind the processing clock (0: a live feed).
func feed(t *testing.T, p *partition, in string, minutes int, lag time.Duration) feedRun {
	t.Helper()
	ctx := context.Background()
	topo := loadTopology(t)
	inter, _ := topo.Intersection(in)
	var dets []string
	for _, a := range inter.Approaches {
		dets = append(dets, a.Detectors...)
	}
	start := t0.Add(lag)
	var run feedRun
	var off int64
	deferred := false
	checkpoint := func(at time.Time) {
		outs, err := p.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n := int64(0)
		for _, o := range outs {
			n += int64(stream.MessageBytes(o.Message()))
		}
		if len(run.checkpoints) == 0 {
			run.first = n
		}
		run.state += n
		run.records += len(outs)
		run.checkpoints = append(run.checkpoints, at.Sub(start))
		deferred = false
	}
	for m := range minutes {
		// The minute m is over at t0 + m + 1 min; it arrives a second later.
		now := start.Add(time.Duration(m+1)*time.Minute + time.Second)
		for i, d := range dets {
			b, err := proto.Marshal(reading(in, d, m, float64(3+(m+i)%7)))
			if err != nil {
				t.Fatal(err)
			}
			msg := kafka.Message{Topic: "test.greenwave.readings.raw", Key: []byte(in), Value: b, Offset: off,
				Headers: []kafka.Header{{Key: stream.HeaderEventID, Value: []byte(d)}}}
			off++
			run.input += int64(stream.MessageBytes(msg))
			if _, err := p.Handle(ctx, msg); err != nil {
				t.Fatal(err)
			}
		}
		if p.CheckpointDue(now, 0) {
			checkpoint(now)
		} else {
			deferred = true
		}
		// Silence until the next minute's batch: the processor asks after 30 s of it.
		if ask := now.Add(30 * time.Second); deferred && p.CheckpointDue(ask, 30*time.Second) {
			checkpoint(ask)
		}
	}
	return run
}

// TestCheckpointCadenceLiveFeed: on a live feed of one-minute readings (the demo's real-time phase), the state
// written follows the readings: at most ratio × their bytes after the first checkpoint, with checkpoints no
// closer than the minimum interval and no further apart than the maximum delay.
func TestCheckpointCadenceLiveFeed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		cad   cadence
		ratio float64 // the bound on state / input (after the first checkpoint)
		rule  string  // the rule of every checkpoint
	}{
		{name: "default", cad: cadence{minInterval: 30 * time.Second, ratio: 0.5, maxDelay: time.Hour}, ratio: 0.5, rule: dueBytes},
		{name: "tight ratio: the maximum delay decides", cad: cadence{minInterval: 30 * time.Second, ratio: 0.01, maxDelay: 20 * time.Minute}, rule: dueMaxDelay},
		{name: "generous ratio", cad: cadence{minInterval: 30 * time.Second, ratio: 5, maxDelay: time.Hour}, ratio: 5, rule: dueBytes},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newTestPartition(t, 0)
			p.cad = tc.cad
			run := feed(t, p, "I-101", 6*60, 0)
			if len(run.checkpoints) < 3 {
				t.Fatalf("%d checkpoints in 6 h: %v", len(run.checkpoints), run.checkpoints)
			}
			for i := 1; i < len(run.checkpoints); i++ {
				gap := run.checkpoints[i] - run.checkpoints[i-1]
				if gap < tc.cad.minInterval || gap > tc.cad.maxDelay+time.Minute {
					t.Errorf("checkpoints %d and %d %v apart: want %v..%v", i-1, i, gap, tc.cad.minInterval, tc.cad.maxDelay+time.Minute)
				}
			}
			after := float64(run.state - run.first)
			t.Logf("%d checkpoints (%d records), %d state bytes for %d reading bytes: %.3f× (%.3f× after the first)",
				len(run.checkpoints), run.records, run.state, run.input, float64(run.state)/float64(run.input), after/float64(run.input))
			if tc.ratio > 0 && after > tc.ratio*float64(run.input) {
				t.Errorf("state after the first checkpoint %.0f bytes > %.2f × %d reading bytes", after, tc.ratio, run.input)
			}
			// The first checkpoint is paid by anything (no size known yet); every later one by its rule.
			if got := testutil.ToFloat64(p.metrics.checkpoints.WithLabelValues(tc.rule)); int(got) < len(run.checkpoints)-1 {
				t.Errorf("%v checkpoints by rule %s, want at least %d of %d", got, tc.rule, len(run.checkpoints)-1, len(run.checkpoints))
			}
			if got := testutil.ToFloat64(p.metrics.checkpoints.WithLabelValues(dueReplayIdle)); got != 0 {
				t.Errorf("%v checkpoints of a live feed by rule %s", got, dueReplayIdle)
			}
		})
	}
}

// TestCheckpointCadenceReplay: a replay (readings days behind the clock) is checkpointed by its bytes while it
// runs, and its last records after the minimum interval of silence, as before the rule existed; a live feed
// that pauses is not.
func TestCheckpointCadenceReplay(t *testing.T) {
	t.Parallel()
	cad := cadence{minInterval: 30 * time.Second, ratio: 0.5, maxDelay: time.Hour}
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		lag  time.Duration
		want bool
	}{
		{name: "replay three days behind", lag: 72 * time.Hour, want: true},
		{name: "live feed", lag: 0, want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newTestPartition(t, 0)
			p.cad = cad
			feed(t, p, "I-100", 30, tc.lag)
			// One more reading after the last checkpoint, then silence.
			b, err := proto.Marshal(reading("I-100", "I-100-N1", 30, 4))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.Handle(ctx, kafka.Message{Key: []byte("I-100"), Value: b, Offset: 1_000}); err != nil {
				t.Fatal(err)
			}
			// feed's processing clock, lag ahead of the readings' event time.
			now := t0.Add(tc.lag + 31*time.Minute + time.Second)
			p.ck.last = now.Add(-time.Minute)
			if p.CheckpointDue(now, 0) {
				t.Fatal("a single reading paid for a snapshot")
			}
			if got := p.CheckpointDue(now.Add(30*time.Second), 30*time.Second); got != tc.want {
				t.Errorf("after 30 s of silence: due %v, want %v", got, tc.want)
			}
		})
	}
}

// TestCheckpointCadenceReplayBesideLiveFeed: a replay into a partition that also carries a live feed is committed
// once it ends (an intersection changed since the last checkpoint is days behind), and then the live feed alone
// is left to its bytes again.
func TestCheckpointCadenceReplayBesideLiveFeed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := newTestPartition(t, 0)
	p.cad = cadence{minInterval: 30 * time.Second, ratio: 0.5, maxDelay: time.Hour}
	feed(t, p, "I-100", 30, 0) // live: processing time is the readings' time
	// Start from a checkpoint: the feed's last readings may be just short of paying for one.
	if _, err := p.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	handle := func(in, det string, minute int, off int64) {
		b, err := proto.Marshal(reading(in, det, minute, 4))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Handle(ctx, kafka.Message{Key: []byte(in), Value: b, Offset: off}); err != nil {
			t.Fatal(err)
		}
	}
	now := t0.Add(31*time.Minute + time.Second)
	p.ck.last = now.Add(-time.Minute)
	handle("I-100", "I-100-N1", 30, 1_000)     // the live feed's next minute
	handle("I-101", "I-101-N1", -72*60, 1_001) // and a replayed reading three days old
	if p.CheckpointDue(now, 0) {
		t.Fatalf("two readings paid for a snapshot (rule %q)", p.why)
	}
	if !p.CheckpointDue(now.Add(30*time.Second), 30*time.Second) || p.why != dueReplayIdle {
		t.Fatalf("replay beside a live feed not checkpointed after 30 s of silence (rule %q)", p.why)
	}
	if _, err := p.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute)
	handle("I-100", "I-100-N1", 31, 1_002)
	if p.CheckpointDue(now, 0) || p.CheckpointDue(now.Add(30*time.Second), 30*time.Second) {
		t.Errorf("the live feed alone checkpointed by rule %q after one reading", p.why)
	}
}
