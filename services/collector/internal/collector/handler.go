package collector

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/greenwave-city/greenwave/pkg/clip"
	"github.com/greenwave-city/greenwave/pkg/ingest"
	"github.com/greenwave-city/greenwave/pkg/ingest/fiware"
	"github.com/greenwave-city/greenwave/pkg/ingest/gateways"
	"github.com/greenwave-city/greenwave/pkg/server"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// item is one reading of a batch on its way through validation, whatever API it came from.
type item struct {
	kind  greenwavev1.ReadingKind
	index int
	// path prefixes a violation's field: "readings[3]" for the canonical APIs, "[3]" for NGSI-LD.
	path string
	// ngsi maps canonical field names back to the entity attributes the gateway sent.
	ngsi    bool
	id      string
	traffic *greenwavev1.TrafficReading
	weather *greenwavev1.WeatherReading
	// pre is a problem found while decoding (NGSI-LD entities), before validation.
	pre *ingest.Violation
}

func (it item) field(f string) string {
	if it.ngsi {
		f = fiware.AttributeOf(wire.IngestKind(it.kind), f)
	}
	if f == "" {
		return it.path
	}
	return it.path + "." + f
}

// itemsOfBatch lists a canonical batch's readings.
func itemsOfBatch(b *greenwavev1.ReadingBatch) []item {
	items := make([]item, 0, len(b.GetReadings())+len(b.GetWeather()))
	for i, r := range b.GetReadings() {
		items = append(items, item{kind: greenwavev1.ReadingKind_READING_KIND_TRAFFIC, index: i, path: fmt.Sprintf("readings[%d]", i), id: r.GetReadingId(), traffic: r})
	}
	for i, w := range b.GetWeather() {
		items = append(items, item{kind: greenwavev1.ReadingKind_READING_KIND_WEATHER, index: i, path: fmt.Sprintf("weather[%d]", i), id: w.GetReadingId(), weather: w})
	}
	return items
}

// itemsOfEntities lists a decoded NGSI-LD batch.
func itemsOfEntities(es []fiware.Entity) []item {
	items := make([]item, len(es))
	for i, e := range es {
		items[i] = item{kind: wire.ReadingKind(e.Kind()), index: e.Index, path: fmt.Sprintf("[%d]", e.Index), ngsi: true, id: e.ID, pre: e.Violation}
		if e.Traffic != nil {
			items[i].traffic = wire.IngestTrafficProto(*e.Traffic)
		}
		if e.Weather != nil {
			items[i].weather = wire.IngestWeatherProto(*e.Weather)
		}
	}
	return items
}

// publishFunc writes a batch's accepted records and returns once Kafka acknowledged them.
type publishFunc func(ctx context.Context, outs ...stream.Output) error

// process validates a batch's items, publishes the accepted ones and returns the ack once Kafka acknowledged
// them all. A failed Kafka write acknowledges nothing (UNAVAILABLE): the gateway resends the same readings,
// whose ids are stable, so nothing is duplicated downstream.
func (s *Service) process(ctx context.Context, api string, gw *gateways.Gateway, batchID string, items []item, began time.Time, publish publishFunc) (*greenwavev1.BatchAck, error) {
	if len(batchID) > ingest.MaxIDLen {
		return nil, s.invalid(api, "malformed", 400, codes.InvalidArgument, "batch_id", "batch_id is %d bytes long, more than %d", len(batchID), ingest.MaxIDLen)
	}
	// Past the length check the batch id is at most clip.MaxID bytes: echoed whole in the ack and messages.
	if len(items) == 0 {
		return nil, s.invalid(api, "empty_batch", 400, codes.InvalidArgument, "readings", "the batch holds no readings and no weather observations")
	}
	if len(items) > s.maxBatch {
		return nil, s.invalid(api, "too_large", 413, codes.InvalidArgument, "readings", "the batch holds %d readings, more than the maximum %d", len(items), s.maxBatch)
	}
	if f := s.rateLimit(api, gw, len(items)); f != nil {
		return nil, f
	}
	ack := &greenwavev1.BatchAck{BatchId: batchID}
	now := s.now()
	// One receive timestamp message for the whole batch: per-reading allocations dominate the collector's
	// cost next to Kafka's.
	received := timestamppb.New(now)
	outs := make([]stream.Output, 0, len(items))
	denied := 0
	reject := func(it item, v *ingest.Violation) {
		reason := wire.IngestRejectReason(v.Reason)
		ack.Rejected = append(ack.Rejected, &greenwavev1.RejectedReading{
			Kind: it.kind, Index: uint32(it.index), ReadingId: clip.ID(it.id), Reason: reason, Field: it.field(v.Field), Description: v.Description,
		})
		s.metrics.rejected.WithLabelValues(kindLabel(it.kind), stream.ReasonLabel(reason), gw.ID).Inc()
		if v.Reason == ingest.ReasonPermissionDenied {
			denied++
		}
	}
	for _, it := range items {
		if it.pre != nil {
			reject(it, it.pre)
			continue
		}
		var out stream.Output
		var v *ingest.Violation
		switch {
		case it.traffic != nil:
			out, v = s.traffic(gw, it.traffic, now, received)
		case it.weather != nil:
			out, v = s.weather(gw, it.weather, now, received)
		default:
			v = &ingest.Violation{Reason: ingest.ReasonMalformed, Description: "empty reading"}
		}
		if v != nil {
			reject(it, v)
			continue
		}
		outs = append(outs, out)
		if it.kind == greenwavev1.ReadingKind_READING_KIND_WEATHER {
			ack.AcceptedWeather++
		} else {
			ack.AcceptedReadings++
		}
	}
	if denied == len(items) {
		// Nothing in the batch is the gateway's to publish: that is a credentials problem, not bad data.
		s.metrics.authDenied.WithLabelValues(gw.ID, "forbidden").Inc()
		s.authLog.Denied(server.PeerAddr(ctx), api, "forbidden", gw.ID)
		f := &failure{code: codes.PermissionDenied, httpStatus: http.StatusForbidden, label: "forbidden",
			message: fmt.Sprintf("gateway %q may publish none of the %d readings of the batch", gw.ID, len(items))}
		for _, r := range ack.Rejected {
			f.fields = append(f.fields, fieldViolation{Field: r.GetField(), Description: r.GetDescription()})
		}
		return nil, f
	}
	if err := publish(ctx, outs...); err != nil {
		s.metrics.produceErrors.Inc()
		s.log.Warn("publish batch failed", zap.String("gateway", gw.ID), zap.String("batch", batchID), zap.Error(err))
		return nil, &failure{code: codes.Unavailable, httpStatus: http.StatusServiceUnavailable, label: "kafka_unavailable", retryAfter: time.Second,
			message: fmt.Sprintf("publish batch %q to Kafka: %v (nothing was acknowledged; resend the batch)", batchID, err)}
	}
	s.metrics.accepted.WithLabelValues("traffic", gw.ID).Add(float64(ack.AcceptedReadings))
	s.metrics.accepted.WithLabelValues("weather", gw.ID).Add(float64(ack.AcceptedWeather))
	s.metrics.batchDuration.WithLabelValues(api).Observe(s.now().Sub(began).Seconds())
	return ack, nil
}

// traffic checks, stamps and encodes one traffic reading of gateway gw received at now (received).
func (s *Service) traffic(gw *gateways.Gateway, r *greenwavev1.TrafficReading, now time.Time, received *timestamppb.Timestamp) (stream.Output, *ingest.Violation) {
	// The permission check comes first so a gateway learns nothing about readings it may not publish.
	if ref, ok := s.topo.Detector(r.GetDetectorId()); ok && !gw.AllowsTraffic(r.GetDetectorId(), ref.Intersection) {
		return stream.Output{}, &ingest.Violation{Reason: ingest.ReasonPermissionDenied, Field: "detector_id",
			Description: fmt.Sprintf("gateway %q may not publish for detector %q (intersection %q)", gw.ID, clip.ID(r.GetDetectorId()), ref.Intersection)}
	}
	if v := wire.ValidateTraffic(r, s.topo, s.limits, now); v != nil {
		return stream.Output{}, v
	}
	wire.StampAt(r, gw.ID, received)
	out, err := wire.TopicReadings.Encode(s.names, r)
	if err != nil {
		return stream.Output{}, &ingest.Violation{Reason: ingest.ReasonMalformed, Description: err.Error()}
	}
	// Intersections linked by upstream references share a partition: the cleaner joins them.
	out.PartitionKey = s.topo.PartitionKey(r.GetIntersectionId())
	return out, nil
}

// weather checks, stamps and encodes one weather observation of gateway gw received at now (received).
func (s *Service) weather(gw *gateways.Gateway, w *greenwavev1.WeatherReading, now time.Time, received *timestamppb.Timestamp) (stream.Output, *ingest.Violation) {
	if st := w.GetStationId(); st != "" && !gw.AllowsStation(st) {
		return stream.Output{}, &ingest.Violation{Reason: ingest.ReasonPermissionDenied, Field: "station_id",
			Description: fmt.Sprintf("gateway %q may not publish for weather station %q", gw.ID, clip.ID(st))}
	}
	if v := wire.ValidateWeather(w, s.limits, now); v != nil {
		return stream.Output{}, v
	}
	wire.StampAt(w, gw.ID, received)
	out, err := wire.TopicWeather.Encode(s.names, w)
	if err != nil {
		return stream.Output{}, &ingest.Violation{Reason: ingest.ReasonMalformed, Description: err.Error()}
	}
	return out, nil
}

func kindLabel(k greenwavev1.ReadingKind) string {
	switch k {
	case greenwavev1.ReadingKind_READING_KIND_TRAFFIC:
		return "traffic"
	case greenwavev1.ReadingKind_READING_KIND_WEATHER:
		return "weather"
	}
	return "unknown"
}
