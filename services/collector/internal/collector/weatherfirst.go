package collector

import (
	"context"

	"github.com/greenwave-city/greenwave/pkg/stream"
)

// weatherFirst publishes the weather records of a write before its other records, and waits for their
// acknowledgement first. The cleaner joins weather by waiting until its weather follower has read the weather topic
// up to the end offset it sees when a reading closes a window (docs/cleaner.md, "Weather synchronisation"); that
// only guarantees the join if a gateway's weather observation is in the log before the readings sent after it.
// Within one Write, kafka-go writes the two topics concurrently, in no fixed order, and the stream sequencer groups
// consecutive batches into one Write — so without this, an hour's observation could land after the reading that
// closes the hour. The cost is one more round trip for writes that carry weather (few: gateways send weather every
// few minutes at most).
type weatherFirst struct {
	pub     Publisher
	weather string // the weather topic
}

// Write implements Publisher.
func (w weatherFirst) Write(ctx context.Context, outs ...stream.Output) error {
	var weather, rest []stream.Output
	for _, o := range outs {
		if o.Topic == w.weather {
			weather = append(weather, o)
		} else {
			rest = append(rest, o)
		}
	}
	if len(weather) == 0 || len(rest) == 0 {
		return w.pub.Write(ctx, outs...)
	}
	if err := w.pub.Write(ctx, weather...); err != nil {
		return err
	}
	return w.pub.Write(ctx, rest...)
}
