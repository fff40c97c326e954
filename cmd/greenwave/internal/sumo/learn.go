package sumo

import (
	"context"
	"fmt"
	"path/filepath"
	"time"
)

// DefaultLearn is the learning period of `greenwave sumo --learn`: long enough for the models of a 120-s window
// to forecast (43 labels, 45 windows: docs/sumo.md, "Short windows") with a margin, so the scored run is planned
// from predictions from its first window on.
const DefaultLearn = 2 * time.Hour

// learnSeed is the SUMO seed of learning play k: other traffic than the scored run's, the same for every run.
func learnSeed(k int) int { return 1000 + k }

// learn plays the scenario on the stack before the scored run, the way a deployment has history before the day it
// is judged on: the plays are stamped o.Learn before the scored run's epoch and follow each other without a gap,
// each until its vehicles have all arrived (on a window boundary) or the period is over; the last one ends exactly
// at the scored run's epoch, so event time runs on into it. Each play is Greenwave in the loop as the scored run
// is (readings, lock-step, plans applied) with its own SUMO seed (learnSeed). Its trips are not scored nor
// recorded (--record); the loop's counts of the learning are kept apart (LoopStats.Learning) and the scored run's
// start from zero.
func (r *runner) learn(ctx context.Context) error {
	l := r.loop
	scored := l.epoch
	if rec := r.sensors.rec; rec != nil { // --record writes the scored run only
		r.sensors.rec = nil
		defer func() { r.sensors.rec = rec }()
	}
	period := r.o.Learn.Truncate(l.window)
	if period <= 0 {
		return nil
	}
	l.epoch = scored.Add(-period)
	plays := 0
	for k := 0; l.epoch.Before(scored); k++ {
		left := scored.Sub(l.epoch)
		play := &runner{o: r.o, sc: r.sc, tmp: r.tmp, progress: r.progress, loop: l, sensors: r.sensors, stderr: r.stderr,
			res: Result{Scenario: r.sc.Name, Controller: r.o.Controller}, tripinfo: filepath.Join(r.tmp, fmt.Sprintf("learn-%d.xml", k))}
		play.o.End, play.o.Seed = left, learnSeed(k)
		r.progress("learning play %d: %s of simulated time from %s (seed %d)", k+1, fmtSim(left), l.epoch.Format(time.RFC3339), play.o.Seed)
		if err := play.start(ctx); err != nil {
			return fmt.Errorf("sumo: learning play %d: %w", k+1, err)
		}
		err := play.run(ctx)
		if cerr := play.client.Close(); cerr != nil && err == nil {
			err = cerr
		}
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("sumo: interrupted, no result: %w", ctx.Err())
			}
			return fmt.Errorf("learning play %d: %w", k+1, err)
		}
		if play.elapsed <= 0 {
			return fmt.Errorf("sumo: learning play %d: the scenario has no traffic", k+1)
		}
		l.epoch = l.epoch.Add(play.elapsed)
		plays++
	}
	l.endPlay()
	clear(l.fresh) // received in the learning period: the scored run counts its own plans
	st := l.stats
	learned := LearnStats{Plays: plays, Windows: st.Windows, Readings: st.Readings, Plans: st.Plans, Timeouts: st.Timeouts}
	l.stats = LoopStats{Rejected: map[string]int{}, Received: map[string]int{}, Learning: learned}
	r.progress("learning: %d plays, %d windows, %d plans, %d windows timed out; the scored run starts at %s",
		learned.Plays, learned.Windows, learned.Plans, learned.Timeouts, scored.Format(time.RFC3339))
	return nil
}

// LearnStats counts the learning period before the scored run (--learn).
type LearnStats struct {
	// Plays are the SUMO runs of the learning period; Windows, Readings and Plans what went through the loop;
	// Timeouts the windows whose plans did not all arrive in time.
	Plays, Windows, Readings, Plans, Timeouts int
}
