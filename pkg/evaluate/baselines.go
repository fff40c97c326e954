package evaluate

import (
	"math"
	"time"

	"github.com/greenwave-city/greenwave/pkg/train"
)

// Names of the forecasters the model is compared with (HorizonReport.Baselines, HoldoutReport.Baselines).
const (
	// BaselinePersistence forecasts t+h with the target observed at t.
	BaselinePersistence = train.BaselinePersistence
	// BaselineSeasonalNaive forecasts t+h with the target observed at the same LOCAL time 7 days before (the
	// topology's time_zone): the same hour last week across daylight-saving changes too.
	BaselineSeasonalNaive = train.BaselineSeasonalNaive
	// BaselineHistoricalAverage forecasts t+h with the mean of every target observed up to t in t+h's LOCAL
	// time-of-week bucket (the topology's time_zone, as the calendar features and the model's profile).
	BaselineHistoricalAverage = train.BaselineHistoricalAverage
	// BaselineSeasonalProfile is the model's own recent weekly profile at t+h (train.HorizonUpdate.Profile)
	// without the regression: the seasonal component alone.
	BaselineSeasonalProfile = "seasonal_profile"
	// BaselineOLS is batch OLS on the model's own inputs, trained on the first 80 % of the rows in time and
	// scored on the last 20 % (HoldoutReport only).
	BaselineOLS = "holdout_ols"
)

// OnlineBaselines are the baselines scored on every pair the model is scored on, in report order.
var OnlineBaselines = []string{BaselinePersistence, BaselineSeasonalNaive, BaselineHistoricalAverage, BaselineSeasonalProfile}

// Positions of the forecasters in a forecastSet.
const (
	fModel = iota
	fPersistence
	fSeasonalNaive
	fHistoricalAverage
	fProfile
	numForecasters
)

// ModelName is the model's name among the forecasters (HorizonReport.Missing).
const ModelName = "model"

// forecasterNames are the report names in forecastSet order (ModelName first).
var forecasterNames = [numForecasters]string{ModelName, BaselinePersistence, BaselineSeasonalNaive, BaselineHistoricalAverage, BaselineSeasonalProfile}

// forecastSet holds every forecaster's forecast of one (series, target window), natural units, NaN for none.
type forecastSet [numForecasters]float64

// complete reports whether every forecaster has a forecast: the same-pairs rule (see the package documentation).
func (f *forecastSet) complete() bool {
	for _, v := range f {
		if math.IsNaN(v) {
			return false
		}
	}
	return true
}

// pairScore accumulates one horizon's pairs of one series under the same-pairs rule.
type pairScore struct {
	sums [numForecasters]errSums
	// dropped counts the labelled pairs left out of every row because some forecaster had no forecast;
	// missing[k] those of them forecaster k had none for (a pair may lack several).
	dropped int
	missing [numForecasters]int
	// modelAll scores the model on every labelled pair it forecast, dropped ones included (for reference).
	modelAll errSums
}

// pair scores one labelled pair: every forecaster when all have a forecast, none otherwise. It reports
// whether the pair was scored.
func (p *pairScore) pair(y float64, fs *forecastSet) bool {
	if !math.IsNaN(fs[fModel]) {
		p.modelAll.pair(y, fs[fModel])
	}
	if !fs.complete() {
		p.dropped++
		for k, v := range fs {
			if math.IsNaN(v) {
				p.missing[k]++
			}
		}
		return false
	}
	for k, v := range fs {
		p.sums[k].pair(y, v)
	}
	return true
}

func (p *pairScore) add(o *pairScore) {
	p.dropped += o.dropped
	p.modelAll.add(o.modelAll)
	for k := range p.sums {
		p.sums[k].add(o.sums[k])
		p.missing[k] += o.missing[k]
	}
}

// missingMap returns the non-zero missing counts by forecaster name.
func (p *pairScore) missingMap() map[string]int {
	out := map[string]int{}
	for k, n := range p.missing {
		if n > 0 {
			out[forecasterNames[k]] = n
		}
	}
	return out
}

// MissingReason says why forecaster (ModelName or a baseline name) can lack a forecast of a labelled pair,
// for reports that list the pairs left out (HorizonReport.Missing); "" for an unknown name.
func MissingReason(forecaster string) string {
	switch forecaster {
	case ModelName:
		return "the learner made no forecast (it skipped the window at t)"
	case BaselinePersistence:
		return "the target at t was not measured"
	case BaselineSeasonalNaive:
		return "no measured target at t+h's local time 7 d before (a gap, the first week, or a skipped DST hour)"
	case BaselineHistoricalAverage:
		return "no target measured yet in t+h's local time-of-week bucket"
	case BaselineSeasonalProfile:
		return "the model's profile has no data in t+h's local time-of-week bucket"
	}
	return ""
}

// seasonalHistory is the evaluation's own record of one series' observed targets, from which it computes the
// seasonal naive and historical average forecasts in local time (independently of the learner's internal
// baselines, which work in UTC: the same instant a week before, UTC hours of week).
type seasonalHistory struct {
	windowS, bucketS int64
	loc              *time.Location
	// ringT[k] and ringY[k] are the window start and observed target of slot k (start/windowS mod len), eight
	// days of windows (a local week before can be a week and an hour); a slot is valid for window w only when
	// ringT holds w.
	ringT []int64
	ringY []float64
	// sum and n are the all-time sums of observed targets per local time-of-week bucket.
	sum []float64
	n   []uint64
}

const weekS = 7 * 24 * 3600

func newSeasonalHistory(windowS int64, loc *time.Location) *seasonalHistory {
	bucketS := int64(3600) // the learner's rule (train: one hour when the window is at most an hour, else one window)
	if windowS > bucketS {
		bucketS = windowS
	}
	n := max((weekS+86400)/windowS, 1)
	h := &seasonalHistory{windowS: windowS, bucketS: bucketS, loc: loc, ringT: make([]int64, n), ringY: make([]float64, n),
		sum: make([]float64, (weekS+bucketS-1)/bucketS), n: make([]uint64, (weekS+bucketS-1)/bucketS)}
	for i := range h.ringT {
		h.ringT[i] = math.MinInt64
	}
	return h
}

// bucket returns the local time-of-week bucket of instant at (Unix s): weeks start on local Monday 00:00.
func (h *seasonalHistory) bucket(at int64) int {
	lt := time.Unix(at, 0).In(h.loc)
	tow := int64((int(lt.Weekday())+6)%7)*86400 + int64(lt.Hour()*3600+lt.Minute()*60+lt.Second())
	return int(tow / h.bucketS)
}

// record adds window start's observed target.
func (h *seasonalHistory) record(start int64, y float64) {
	k := (start / h.windowS) % int64(len(h.ringT))
	if k < 0 {
		k += int64(len(h.ringT))
	}
	h.ringT[k], h.ringY[k] = start, y
	b := h.bucket(start)
	h.sum[b] += y
	h.n[b]++
}

// lastWeek returns the seasonal naive forecast of instant at: the target observed at the same local wall-clock
// time seven days before, NaN when it was not measured, when that wall-clock time did not exist (the hour
// skipped when clocks went forward) or when no window starts at it (windows longer than the clock change).
func (h *seasonalHistory) lastWeek(at int64) float64 {
	lt := time.Unix(at, 0).In(h.loc)
	p := lt.AddDate(0, 0, -7)
	if p.Hour() != lt.Hour() || p.Minute() != lt.Minute() || p.Second() != lt.Second() {
		return math.NaN()
	}
	return h.observed(p.Unix())
}

// observed returns the target observed in window w, NaN when it was not (or is older than the ring).
func (h *seasonalHistory) observed(w int64) float64 {
	k := (w / h.windowS) % int64(len(h.ringT))
	if k < 0 {
		k += int64(len(h.ringT))
	}
	if h.ringT[k] != w {
		return math.NaN()
	}
	return h.ringY[k]
}

// average returns the historical average of at's local bucket, NaN when it has no observation.
func (h *seasonalHistory) average(at int64) float64 {
	b := h.bucket(at)
	if h.n[b] == 0 {
		return math.NaN()
	}
	return h.sum[b] / float64(h.n[b])
}
