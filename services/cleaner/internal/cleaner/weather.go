package cleaner

import (
	"errors"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/greenwave-city/greenwave/pkg/clean"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/wire"
)

// weatherTable guards the shared global weather table: one goroutine follows the weather topic, the partition
// goroutines look it up.
type weatherTable struct {
	mu sync.Mutex
	t  *clean.WeatherTable
}

// Lookup joins the station's observation at event time at; a lookup also advances the table's horizon to at
// (clean.WeatherTable.Advance), which is what lets it drop old observations.
func (w *weatherTable) Lookup(station string, at time.Time) (clean.Weather, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t.Advance(at)
	return w.t.Lookup(station, at)
}

func (w *weatherTable) add(x clean.Weather) *clean.WeatherRejection {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.t.Add(x)
}

// applyWeather adds one record of the weather topic to the table, counting its outcome.
func applyWeather(weather *weatherTable, m *metrics, msg kafka.Message) {
	w, err := wire.TopicWeather.Decode(msg)
	var bad *stream.RejectError
	if errors.As(err, &bad) {
		m.weather.WithLabelValues(stream.ReasonLabel(bad.Reason)).Inc()
		return
	}
	if rej := weather.add(wire.Weather(w)); rej != nil {
		m.weather.WithLabelValues(string(rej.Reason)).Inc()
		return
	}
	m.weather.WithLabelValues("accepted").Inc()
}
