package wire

import (
	"github.com/greenwave-city/greenwave/pkg/sim"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// SimBatch is the batch a gateway would send for one simulator tick: its readings, then its weather.
func SimBatch(batchID string, t sim.Tick) *greenwavev1.ReadingBatch {
	b := &greenwavev1.ReadingBatch{BatchId: batchID, Readings: make([]*greenwavev1.TrafficReading, len(t.Readings))}
	for i, r := range t.Readings {
		b.Readings[i] = IngestTrafficProto(r)
	}
	for _, w := range t.Weather {
		b.Weather = append(b.Weather, IngestWeatherProto(w))
	}
	return b
}
