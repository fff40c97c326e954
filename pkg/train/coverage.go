package train

import (
	"fmt"
	"math"
	"slices"

	"github.com/greenwave-city/greenwave/pkg/regression"
)

// coverage counts labels inside the promoted candidate's prediction interval made when the forecast was
// issued: cumulatively and over the last Config.RecentWindow labels.
type coverage struct {
	hits, n uint64
	// recent holds the last scored labels' hit flags, oldest first, at most the recent window.
	recent []bool
}

// add scores one label against its interval, keeping at most size recent flags.
func (c *coverage) add(hit bool, size int) {
	c.n++
	if hit {
		c.hits++
	}
	if len(c.recent) == size {
		c.recent = append(c.recent[:0], c.recent[1:]...)
	}
	c.recent = append(c.recent, hit)
}

func (c *coverage) state(confidence float64) *IntervalCoverage {
	return &IntervalCoverage{Confidence: confidence, Hits: c.hits, N: c.n, Recent: slices.Clone(c.recent)}
}

// restoreCoverage restores the counts. A snapshot without them (written before coverage was tracked) starts
// from zero; so does one counted at another confidence, whose pending intervals the caller then drops: the counts
// must describe intervals at the configured confidence, and starting over keeps the model (a mismatch of the
// other settings restarts the learner, which would be a high price for a changed reporting setting).
func restoreCoverage(p *IntervalCoverage, confidence float64, size int) (c coverage, keepPending bool, err error) {
	if p == nil || p.Confidence != confidence {
		return coverage{}, p == nil, nil
	}
	if p.Hits > p.N || len(p.Recent) > size || uint64(len(p.Recent)) > p.N {
		return coverage{}, false, fmt.Errorf("interval coverage %d hits of %d with %d recent (window %d): %w",
			p.Hits, p.N, len(p.Recent), size, ErrInvalidSnapshot)
	}
	return coverage{hits: p.Hits, n: p.N, recent: slices.Clone(p.Recent)}, true, nil
}

// interval returns the candidate's prediction interval at x in natural units (scaled by scale) and truncated to
// the target's physical range (target.physical), or NaN, NaN when the candidate has no noise estimate yet or
// the bounds are not sane.
func interval(c *regression.RLS, x []float64, confidence, scale float64, tgt target) (lo, hi float64) {
	l, h, err := c.Interval(x, confidence)
	if err != nil {
		return math.NaN(), math.NaN()
	}
	lo, hi = sane(l*scale), sane(h*scale)
	if math.IsNaN(lo) || math.IsNaN(hi) {
		return math.NaN(), math.NaN()
	}
	return tgt.physical(lo), tgt.physical(hi)
}

// Coverage is a model's empirical interval coverage: the share of labels that fell inside the prediction
// interval issued with their forecast.
type Coverage struct {
	// Confidence is the nominal coverage of the intervals counted.
	Confidence float64
	// Hits and N count labels inside the interval and labels scored, since the model started.
	Hits, N uint64
	// RecentHits and RecentN count the same over the most recent labels (at most the recent window).
	RecentHits, RecentN int
}

// Recent returns RecentHits/RecentN, or NaN without scored labels.
func (c Coverage) Recent() float64 { return ratio(uint64(c.RecentHits), uint64(c.RecentN)) }

// Cumulative returns Hits/N, or NaN without scored labels.
func (c Coverage) Cumulative() float64 { return ratio(c.Hits, c.N) }

func ratio(a, b uint64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}

// CoverageOf reads a snapshot's interval coverage; ok is false when the snapshot has none.
func CoverageOf(s *Snapshot) (c Coverage, ok bool) {
	p := s.IntervalCoverage
	if p == nil {
		return Coverage{}, false
	}
	c = Coverage{Confidence: p.Confidence, Hits: p.Hits, N: p.N, RecentN: len(p.Recent)}
	for _, h := range p.Recent {
		if h {
			c.RecentHits++
		}
	}
	return c, true
}
