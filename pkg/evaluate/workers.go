package evaluate

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/greenwave-city/greenwave/pkg/features"
)

// queueLen is each worker's queue of frames: enough to ride over the cleaners' bursts (a flush, a reading
// that closes several windows) without holding many frames in memory.
const queueLen = 256

// runOutput is what applying one run's frames adds to the report, kept per run so that runs can be applied
// in parallel and merged in input order (Evaluator.merge).
type runOutput struct {
	vectors int
	// counts holds the per-window counts of Cleaning (Windows, Imputed, Gaps, Flagged).
	counts  Cleaning
	holdout []holdoutRow
	trace   []seqTrace
	flags   []seqFlag
	// err is the first error applying a frame, the frame's seq in errSeq; the run's later frames are skipped.
	err    error
	errSeq uint64
}

// seqFlag is a Flag numbered in input order (Evaluator.seq): its frame's, or its own for a rejection.
type seqFlag struct {
	seq uint64
	Flag
}

// seqTrace is a TracePoint numbered with its frame's seq.
type seqTrace struct {
	seq uint64
	TracePoint
}

// pool applies frames on Config.Workers goroutines. Each run is given to one worker, which applies its
// frames in the order they were sent: per intersection, the sequential order.
type pool struct {
	jobs    []chan job // one per worker
	wg      sync.WaitGroup
	failed  atomic.Bool // some run's frame failed: stop early
	stopped bool
}

// job is one frame to apply to run r.
type job struct {
	r   *run
	f   features.Frame
	seq uint64
}

// newPool starts min(n, runs) workers and gives each run to one of them: the runs with the most approaches
// first, each to the least loaded worker, as the work per frame grows with the approaches (a learner each).
func newPool(e *Evaluator, n int) *pool {
	n = min(n, len(e.order))
	p := &pool{jobs: make([]chan job, n)}
	load := make([]int, n)
	runs := slices.Clone(e.order)
	slices.SortStableFunc(runs, func(a, b *run) int { return cmp.Compare(len(b.series), len(a.series)) })
	for _, r := range runs {
		r.worker = slices.Index(load, slices.Min(load))
		load[r.worker] += max(1, len(r.series))
	}
	for i := range p.jobs {
		p.jobs[i] = make(chan job, queueLen)
		p.wg.Add(1)
		go p.work(e, p.jobs[i])
	}
	return p
}

func (p *pool) work(e *Evaluator, jobs <-chan job) {
	defer p.wg.Done()
	for j := range jobs {
		if j.r.out.err != nil {
			continue
		}
		if err := e.frame(j.r, j.f, j.seq); err != nil {
			j.r.out.err, j.r.out.errSeq = err, j.seq
			p.failed.Store(true)
		}
	}
}

// send queues frame f of run r for its worker; it blocks while that worker's queue is full.
func (p *pool) send(r *run, f features.Frame, seq uint64) {
	p.jobs[r.worker] <- job{r: r, f: f, seq: seq}
}

// stop waits until the workers have applied every frame sent and ends them (once; nothing may be sent after),
// then returns the first error of the runs in input order, nil if none.
func (e *Evaluator) stop() error {
	if p := e.pool; p != nil && !p.stopped {
		p.stopped = true
		for _, c := range p.jobs {
			close(c)
		}
		p.wg.Wait()
	}
	var first *runOutput
	for _, r := range e.order {
		if o := &r.out; o.err != nil && (first == nil || o.errSeq < first.errSeq) {
			first = o
		}
	}
	if first == nil {
		return nil
	}
	return first.err
}

// merge adds the runs' outputs to the report, the flags and the trace in input order (as one goroutine
// appends them), and returns every run's hold-out rows.
func (e *Evaluator) merge() (*Report, []holdoutRow) {
	rep := &Report{Cleaning: e.cleaning}
	flags := slices.Clone(e.flags)
	var trace []seqTrace
	var holdout []holdoutRow
	for _, r := range e.order {
		o := &r.out
		rep.Vectors += o.vectors
		rep.Cleaning.Windows += o.counts.Windows
		rep.Cleaning.Imputed += o.counts.Imputed
		rep.Cleaning.Gaps += o.counts.Gaps
		rep.Cleaning.Flagged += o.counts.Flagged
		flags = append(flags, o.flags...)
		trace = append(trace, o.trace...)
		holdout = append(holdout, o.holdout...)
	}
	// Stable: one frame's flags and trace points share its seq, and one run appended them in order.
	slices.SortStableFunc(flags, func(a, b seqFlag) int { return cmp.Compare(a.seq, b.seq) })
	slices.SortStableFunc(trace, func(a, b seqTrace) int { return cmp.Compare(a.seq, b.seq) })
	for _, f := range flags {
		rep.Flags = append(rep.Flags, f.Flag)
	}
	for _, t := range trace {
		rep.Trace = append(rep.Trace, t.TracePoint)
	}
	return rep, holdout
}
