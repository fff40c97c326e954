package cleaner

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/greenwave-city/greenwave/pkg/clean"
	"github.com/greenwave-city/greenwave/pkg/kafkaconn"
	"github.com/greenwave-city/greenwave/pkg/stream"
)

// Outcomes of a wait for the weather follower (the greenwave_cleaner_weather_waits_total label).
const (
	waitCaughtUp = "caught_up" // the follower reached the end offset: the window joins what was published before it
	waitTimedOut = "timed_out" // CLEANER_WEATHER_WAIT elapsed: the window closed with the weather read so far
	waitCanceled = "canceled"  // the cleaner is stopping: the record's outputs are discarded, a restart redoes it
	waitNoEnd    = "end_unknown"
)

// weatherEnds reports, per weather partition, the first offset and the end offset (next to be written).
type weatherEnds func(ctx context.Context) (first, end map[int]int64, err error)

// weatherSync synchronises the two inputs of the cleaner in event time. A window joins only observations stamped
// strictly before its end (clean.WeatherTable.Lookup), and it closes on a reading starting at or after its end,
// so every observation it may join is older than that reading and, published in event-time order (greenwave
// replay interleaves the two streams by time, the collector publishes a write's weather first, gateways publish
// an observation when it is made), is in the log before it. A window whose closing reading is handled after the
// weather follower has consumed the weather topic up to the end offset it had when that reading was fetched
// therefore joins exactly what greenwave eval, which applies records in event-time order, joins — whichever way
// an observation stamped at the window end itself falls against that reading. A partition about to emit a
// window asks for that end offset and, only when the follower is behind it, waits for the follower — in
// processing time, bounded by limit, without changing any state, so restarts stay exact.
type weatherSync struct {
	ends  weatherEnds
	limit time.Duration
	waits *prometheus.CounterVec
	log   *zap.Logger

	mu sync.Mutex
	// pos is, per weather partition, the next offset the follower will consume.
	pos map[int]int64
	// advanced is closed (and replaced) whenever pos advances: the broadcast waiting partitions select on.
	advanced chan struct{}
	warned   bool
	// onWait, if set, is called when a partition starts waiting (a test hook).
	onWait func()
}

func newWeatherSync(ends weatherEnds, limit time.Duration, waits *prometheus.CounterVec, log *zap.Logger) *weatherSync {
	return &weatherSync{ends: ends, limit: limit, waits: waits, log: log, pos: map[int]int64{}, advanced: make(chan struct{})}
}

// consumed records that the follower has applied the record at offset of a weather partition to the table.
func (w *weatherSync) consumed(partition int, offset int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if offset+1 <= w.pos[partition] {
		return
	}
	w.pos[partition] = offset + 1
	close(w.advanced)
	w.advanced = make(chan struct{})
}

// behind reports whether the follower has yet to consume a record below target, and the channel closed at its
// next advance.
func (w *weatherSync) behind(target syncTarget) (bool, <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for p, end := range target.end {
		// Records below first are gone (retention): there is nothing left to wait for.
		if end > target.first[p] && w.pos[p] < end {
			return true, w.advanced
		}
	}
	return false, nil
}

// syncTarget is the weather topic's offsets as observed at one moment.
type syncTarget struct {
	first, end map[int]int64
}

// wait blocks until the follower has consumed up to target, the deadline passes or ctx ends, and returns the
// outcome ("" when the follower was not behind: nothing waited).
func (w *weatherSync) wait(ctx context.Context, target syncTarget, deadline time.Time) string {
	late, advanced := w.behind(target)
	if !late {
		return ""
	}
	if w.onWait != nil {
		w.onWait()
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		select {
		case <-advanced:
		case <-timer.C:
			w.waits.WithLabelValues(waitTimedOut).Inc()
			w.warnOnce("the weather follower did not reach the weather topic's end offset within CLEANER_WEATHER_WAIT; windows close with the weather read so far (counted in greenwave_cleaner_weather_waits_total{outcome=\"timed_out\"}, logged once)",
				zap.Duration("wait", w.limit))
			return waitTimedOut
		case <-ctx.Done():
			w.waits.WithLabelValues(waitCanceled).Inc()
			return waitCanceled
		}
		if late, advanced = w.behind(target); !late {
			w.waits.WithLabelValues(waitCaughtUp).Inc()
			return waitCaughtUp
		}
	}
}

func (w *weatherSync) warnOnce(msg string, fields ...zap.Field) {
	w.mu.Lock()
	warned := w.warned
	w.warned = true
	w.mu.Unlock()
	if !warned && w.log != nil {
		w.log.Warn(msg, fields...)
	}
}

// kafkaWeatherEnds asks the brokers for the weather topic's first and end offsets.
func kafkaWeatherEnds(kafkaConn kafkaconn.Conn, topic string, partitions int) weatherEnds {
	client := kafkaConn.Client(10 * time.Second)
	req := make([]kafka.OffsetRequest, 0, 2*partitions)
	for p := range partitions {
		req = append(req, kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p))
	}
	return func(ctx context.Context) (map[int]int64, map[int]int64, error) {
		offsets, err := stream.ListOffsetsWait(ctx, kafkaConn, "weather-sync "+topic, client, map[string][]kafka.OffsetRequest{topic: req})
		if err != nil {
			return nil, nil, fmt.Errorf("weather topic end offsets: %w", err)
		}
		first, end := map[int]int64{}, map[int]int64{}
		for _, po := range offsets[topic] {
			first[po.Partition], end[po.Partition] = po.FirstOffset, po.LastOffset
		}
		return first, end, nil
	}
}

// syncedLookup is the weather lookup of one handled record: before the first window it emits reads the
// weather, the partition synchronises with the weather follower (partition.syncWeather). Records that close no
// window never ask, so in live operation the cleaner asks the brokers at most once per window close.
type syncedLookup struct {
	p      *partition
	ctx    context.Context
	m      kafka.Message
	synced bool
	// canceled is set when ctx ended during the wait: the record's outputs must be discarded.
	canceled bool
}

func (l *syncedLookup) Lookup(station string, at time.Time) (clean.Weather, bool) {
	if !l.synced {
		l.synced = true
		l.canceled = l.p.syncWeather(l.ctx, l.m) == waitCanceled
	}
	if l.p.weather == nil {
		return clean.Weather{}, false
	}
	return l.p.weather.Lookup(station, at)
}

// syncWeather waits, if need be, until the weather follower has consumed the weather topic up to its end offset
// as observed after m was fetched. One observation covers every later record below the readings partition's high
// watermark at the fetch that returned m (they were in the log before the observation was made), so a replay
// read at full speed asks once per fetched batch, not once per window.
func (p *partition) syncWeather(ctx context.Context, m kafka.Message) string {
	s := p.wsync
	// One processing-time limit bounds the request and the wait together.
	deadline := time.Now().Add(s.limit)
	if m.Offset >= p.syncCovers || p.syncTarget.end == nil {
		ectx, cancel := context.WithDeadline(ctx, deadline)
		first, end, err := s.ends(ectx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				s.waits.WithLabelValues(waitCanceled).Inc()
				return waitCanceled
			}
			s.waits.WithLabelValues(waitNoEnd).Inc()
			s.warnOnce("cannot read the weather topic's end offsets; windows close with the weather read so far", zap.Error(err))
			return waitNoEnd
		}
		p.syncTarget = syncTarget{first: first, end: end}
		p.syncCovers = max(m.HighWaterMark, m.Offset+1)
	}
	outcome := s.wait(ctx, p.syncTarget, deadline)
	if outcome == waitTimedOut {
		// Do not wait again for the records this target covers: the next refresh (a record past syncCovers)
		// tries afresh, so a stuck follower costs at most one limit per fetched batch.
		p.syncTarget = syncTarget{first: map[int]int64{}, end: map[int]int64{}}
	}
	return outcome
}
