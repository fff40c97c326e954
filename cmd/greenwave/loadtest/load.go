package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/benchfig"
	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/stack"
)

// sample is one second's measurement: the committed lag of every group and the resident memory of every
// service.
type sample struct {
	at    time.Time
	lag   map[string]int64   // service → records
	rssMB map[string]float64 // service → MB
}

// sampler measures every second until stopped.
type sampler struct {
	mu      sync.Mutex
	samples []sample
	errs    int
}

// run samples every second until ctx ends. A service whose RSS exceeds limitMB (0: no limit) ends the run
// through breach: on a shared machine a service that outgrows its memory must not take the others down.
func (s *sampler) run(ctx context.Context, e *testEnv, progress io.Writer, limitMB float64, breach func(error)) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		sm := sample{at: time.Now(), lag: map[string]int64{}, rssMB: map[string]float64{}}
		// The groups concurrently: on a loaded machine a round of requests over TLS takes a while, and the
		// sample's time is its start.
		var mu sync.Mutex
		var wg sync.WaitGroup
		failed := 0
		for _, g := range e.groups() {
			wg.Go(func() {
				n, err := e.lag(ctx, g)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					failed++
					return
				}
				sm.lag[g.service] = n
			})
		}
		wg.Wait()
		for _, name := range stack.Services {
			if mb, err := rssMB(e.stack.Pid(name)); err == nil {
				sm.rssMB[name] = mb
				if limitMB > 0 && mb > limitMB {
					breach(fmt.Errorf("%s uses %.0f MB of resident memory, above --rss-limit-mb %.0f: stopped", name, mb, limitMB))
				}
			}
		}
		s.mu.Lock()
		s.errs += failed
		s.samples = append(s.samples, sm)
		if len(s.samples)%15 == 0 {
			fmt.Fprintf(progress, "loadtest: sample %d at %s: lag %v, RSS MB %v\n", len(s.samples),
				sm.at.Sub(s.samples[0].at).Round(time.Second), sm.lag, rounded(sm.rssMB))
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *sampler) snapshot() ([]sample, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sample(nil), s.samples...), s.errs
}

func rounded(m map[string]float64) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		out[k] = int(v + 0.5)
	}
	return out
}

// rssMB is VmRSS of /proc/PID/status in MB (10^6 bytes).
func rssMB(pid int) (float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb * 1024 / 1e6, err
		}
	}
	return 0, fmt.Errorf("pid %d: no VmRSS", pid)
}

// runLoad feeds the city's readings of o.simMinutes as fast as the collector acknowledges them, waits until
// every group has committed everything, and reports the rates, the lag and the memory.
func runLoad(ctx context.Context, e *testEnv, o options, stderr io.Writer) (benchfig.Figures, error) {
	var smp sampler
	ctx, abort := context.WithCancelCause(ctx)
	defer abort(nil)
	sctx, stopSampling := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { smp.run(sctx, e, stderr, o.rssLimitMB, abort) })
	defer func() {
		if c := context.Cause(ctx); c != nil && !errors.Is(c, context.Canceled) {
			fmt.Fprintf(stderr, "loadtest: %v\n", c)
		}
	}()
	defer func() { stopSampling(); wg.Wait() }()

	snd, err := newSender(ctx, e, o.inFlight)
	if err != nil {
		return benchfig.Figures{}, err
	}
	// Event time starts four days ago, so once the feed ends the trainer sees a finished replay and
	// checkpoints (TRAINER_CHECKPOINT_IDLE: event time more than TRAINER_CHECKPOINT_INTERVAL, 72 h, behind the
	// wall clock), and commits; the collector accepts readings up to COLLECTOR_MAX_AGE (30 days) old.
	base := time.Now().Add(-96 * time.Hour).Truncate(time.Hour)
	ticks := o.simMinutes * 60 / o.intervalS
	perBatch := max(1, o.batch/4)
	fmt.Fprintf(stderr, "loadtest: feeding %d ticks of %d readings (event time from %s) as fast as acknowledged\n",
		ticks, 4*o.intersections, base.Format(time.RFC3339))
	feedStart := time.Now()
	// Tick `ticks` is the flush: readings starting at the end of the simulated time close every intersection's
	// last window; they open a window of their own that stays open (not counted as readings in frames).
	for k := 0; k <= ticks; k++ {
		at := base.Add(time.Duration(k*o.intervalS) * time.Second)
		for from := 0; from < o.intersections; from += perBatch {
			if err := snd.send(ctx, readings(from, min(from+perBatch, o.intersections), at, o.intervalS)); err != nil {
				return benchfig.Figures{}, err
			}
		}
		select {
		case <-e.stack.Done():
			return benchfig.Figures{}, fmt.Errorf("stack ended: %v", e.stack.Err())
		default:
		}
	}
	if err := snd.finish(); err != nil {
		return benchfig.Figures{}, err
	}
	feedEnd := time.Now()
	fmt.Fprintf(stderr, "loadtest: fed %d readings in %s; waiting for every group to catch up\n", snd.accepted, feedEnd.Sub(feedStart).Round(time.Millisecond))
	dctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	if err := e.waitDrained(dctx); err != nil {
		return benchfig.Figures{}, fmt.Errorf("wait for the pipeline to drain: %w", err)
	}
	drained := time.Now()
	// A few seconds more of samples show the lag staying at 0 and the memory after the load.
	settle := time.NewTimer(5 * time.Second)
	select {
	case <-ctx.Done():
	case <-settle.C:
	}
	stopSampling()
	wg.Wait()

	frames, lastFrame, err := countTopic(ctx, e, e.names.Features)
	if err != nil {
		return benchfig.Figures{}, err
	}
	plans, lastPlan, err := countTopic(ctx, e, e.names.Plans)
	if err != nil {
		return benchfig.Figures{}, err
	}
	windows := ticks * o.intervalS / o.windowS
	if want := o.intersections * windows; frames < want || plans < want {
		return benchfig.Figures{}, fmt.Errorf("%d frames and %d plans after draining, want %d of each", frames, plans, want)
	}
	samples, sampleErrs := smp.snapshot()
	if err := writeSamples(filepath.Join(o.plotDir, "loadtest-samples.csv"), samples, feedStart); err != nil {
		return benchfig.Figures{}, err
	}
	if err := writePlots(o.plotDir, samples, feedStart, feedEnd); err != nil {
		return benchfig.Figures{}, err
	}
	return loadFigures(o, snd, samples, sampleErrs, feedStart, feedEnd, drained, lastFrame, lastPlan, frames, plans), nil
}

// countTopic counts a topic's records and returns the latest append time among them.
func countTopic(ctx context.Context, e *testEnv, topic string) (int, time.Time, error) {
	n := 0
	var last time.Time
	_, err := appended(ctx, e, topic, func(m kafka.Message) (windowKey, bool, error) {
		n++
		if m.Time.After(last) {
			last = m.Time
		}
		return windowKey{}, false, nil
	})
	return n, last, err
}

func loadFigures(o options, snd *sender, samples []sample, sampleErrs int, feedStart, feedEnd, drained, lastFrame, lastPlan time.Time, frames, plans int) benchfig.Figures {
	scale := ""
	if o.intersections != 2500 || o.simMinutes != 20 {
		scale = " (scaled down from 2 500 intersections × 20 simulated minutes)"
	}
	what := fmt.Sprintf("cmd/greenwave/loadtest --mode load on the real broker (SASL_SSL, %d partitions): %d intersections × 4 detectors (%d detectors) reporting every %d s, "+
		"%d simulated minutes%s fed on one StreamReadings stream (%d-reading batches, %d in flight) as fast as the collector acknowledged (acks=all), %d-s windows; %d readings accepted, %d frames, %d plans",
		o.partitions, o.intersections, 4*o.intersections, o.intervalS, o.simMinutes, scale, o.batch, o.inFlight, o.windowS, snd.accepted, frames, plans)
	endToEnd := lastPlan.Sub(feedStart).Seconds()
	rows := []benchfig.Row{
		{Name: "loadtest_readings_per_s", Value: float64(snd.accepted) / endToEnd, Unit: "readings/s",
			Setup: what + fmt.Sprintf("; readings accepted ÷ time from the first batch sent to the last plan appended (%.1f s)", endToEnd)},
		{Name: "loadtest_feed_readings_per_s", Value: float64(snd.accepted) / feedEnd.Sub(feedStart).Seconds(), Unit: "readings/s",
			Setup: fmt.Sprintf("as loadtest_readings_per_s, readings accepted ÷ feed time (%.1f s): the collector's pace, while the cleaner falls behind", feedEnd.Sub(feedStart).Seconds())},
		{Name: "loadtest_drain_s", Value: lastPlan.Sub(feedEnd).Seconds(), Unit: "s",
			Setup: fmt.Sprintf("as loadtest_readings_per_s: from the last batch acknowledged to the last plan appended (last frame %.1f s after the feed; every group's committed lag 0 after %.1f s)",
				lastFrame.Sub(feedEnd).Seconds(), drained.Sub(feedEnd).Seconds())},
	}
	var maxLag int64
	var perGroup []string
	for _, g := range []string{"cleaner", "trainer", "predictor", "signalcontrol"} {
		var m, final int64
		for _, s := range samples {
			m = max(m, s.lag[g])
		}
		if len(samples) > 0 {
			final = samples[len(samples)-1].lag[g]
		}
		maxLag = max(maxLag, m)
		perGroup = append(perGroup, fmt.Sprintf("%s %d (last %d)", g, m, final))
	}
	rows = append(rows, benchfig.Row{Name: "loadtest_max_lag_records", Value: float64(maxLag), Unit: "records",
		Setup: fmt.Sprintf("as loadtest_readings_per_s: the largest consumer lag of any group, sampled every second from the broker (high watermark − committed offset, summed over partitions; %d samples, %d failed): max (last sample) by group: %s; plot bench/loadtest-lag.svg",
			len(samples), sampleErrs, strings.Join(perGroup, ", "))})
	for _, svc := range stack.Services {
		var peak, half, last float64
		for _, s := range samples {
			peak = max(peak, s.rssMB[svc])
			if !s.at.After(feedStart.Add(feedEnd.Sub(feedStart) / 2)) {
				half = s.rssMB[svc]
			}
		}
		if len(samples) > 0 {
			last = samples[len(samples)-1].rssMB[svc]
		}
		env := ""
		if kv := o.serviceEnv[svc]; len(kv) > 0 {
			// --service-env settings (GOMEMLIMIT, say) change what the memory row means: name them.
			env = ", with " + strings.Join(kv, " ")
		}
		rows = append(rows, benchfig.Row{Name: "loadtest_rss_mb_" + svc, Value: peak, Unit: "MB",
			Setup: fmt.Sprintf("as loadtest_readings_per_s: peak resident memory (VmRSS) of %s%s, sampled every second [at half the feed %.0f MB, after draining %.0f MB]; plot bench/loadtest-rss.svg", svc, env, half, last)})
	}
	return benchfig.Figures{Rows: rows}
}

// writeSamples writes the samples as CSV: seconds since the feed started, then the lag of every group and the
// RSS of every service.
func writeSamples(path string, samples []sample, t0 time.Time) error {
	var b strings.Builder
	groups := []string{"cleaner", "trainer", "predictor", "signalcontrol"}
	b.WriteString("t_s")
	for _, g := range groups {
		b.WriteString(",lag_" + g)
	}
	for _, s := range stack.Services {
		b.WriteString(",rss_mb_" + s)
	}
	b.WriteString("\n")
	for _, s := range samples {
		fmt.Fprintf(&b, "%.1f", s.at.Sub(t0).Seconds())
		for _, g := range groups {
			fmt.Fprintf(&b, ",%d", s.lag[g])
		}
		for _, svc := range stack.Services {
			fmt.Fprintf(&b, ",%.1f", s.rssMB[svc])
		}
		b.WriteString("\n")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
