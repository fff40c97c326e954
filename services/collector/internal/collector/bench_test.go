package collector

import (
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/greenwave-city/greenwave/pkg/ingest"
	"github.com/greenwave-city/greenwave/pkg/kafkatest"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// benchBatch is the batch size a gateway sends; benchInFlight how many batches it keeps unacknowledged.
const (
	benchBatch    = 500
	benchInFlight = 8
)

// benchReadings returns n valid readings spread over the test topology's detectors, one interval each.
func benchReadings(n int) []*greenwavev1.TrafficReading {
	dets := []string{"D1", "D2", "D3", "X1", "X2"}
	start := time.Now().Add(-7 * 24 * time.Hour).Truncate(time.Minute)
	out := make([]*greenwavev1.TrafficReading, n)
	for i := range out {
		out[i] = &greenwavev1.TrafficReading{
			DetectorId: dets[i%len(dets)], ObservedAt: timestamppb.New(start.Add(time.Duration(i/len(dets)) * time.Minute)),
			IntervalS: 60, Count: float64(5 + i%20), OccupancyRatio: proto.Float64(0.1), SpeedKmh: proto.Float64(45),
		}
	}
	return out
}

// BenchmarkIngest measures readings/s into Kafka through the collector's gRPC stream (validation, conversion,
// acks=all, ack after Kafka acked) against a plain kafka-go producer writing the same records to the same broker
// with the same settings, in the same run. Set KAFKA_BROKERS for a real broker (`make bench` does); without it
// both sides run against kfake. The ratio is reported as the metric collector/plain: the median over the ops,
// each of which runs both sides in alternating order.
func BenchmarkIngest(b *testing.B) {
	kafkaConn, names := kafkatest.Setup(b, 3)
	const perOp = benchBatch * benchInFlight * 4
	readings := benchReadings(perOp)
	ix := testIndex(b)

	// Plain producer: the same records, marshalled once, same writer settings as the collector's producer.
	plain := stream.NewProducer(kafkaConn, stream.ProducerConfig{})
	defer plain.Close()
	outs := make([]stream.Output, len(readings))
	for i, r := range readings {
		r := proto.CloneOf(r)
		// Exactly what the collector writes: validated and stamped reading, same key, same headers.
		if v := wire.ValidateTraffic(r, ix, ingest.DefaultLimits(), time.Now()); v != nil {
			b.Fatalf("bench reading invalid: %v", v.Description)
		}
		wire.Stamp(r, "anonymous", time.Now())
		v, _ := proto.Marshal(r)
		outs[i] = stream.Output{Topic: names.Readings, Key: []byte(r.GetIntersectionId()), Value: v, EventID: r.GetReadingId(), Payload: wire.TopicReadings.Payload()}
	}

	// The collector, served on loopback.
	prod := stream.NewProducer(kafkaConn, stream.ProducerConfig{})
	defer prod.Close()
	svc, err := New(Options{Publisher: prod, Topology: ix, Names: names, AllowAnonymous: true, StreamInFlight: benchInFlight,
		Log: zap.NewNop(), Registry: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	gs := grpc.NewServer(svc.ServerOptions()...)
	greenwavev1.RegisterCollectorServiceServer(gs, svc)
	go gs.Serve(lis) //nolint:errcheck // ends with Stop below
	defer gs.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	client := greenwavev1.NewCollectorServiceClient(conn)
	ctx := context.Background()

	// writePlain writes the records with benchInFlight concurrent writers of benchBatch records, like the
	// gateway's in-flight window.
	writePlain := func() time.Duration {
		began := time.Now()
		errc := make(chan error, benchInFlight)
		per := len(outs) / benchInFlight
		for w := range benchInFlight {
			go func() {
				var err error
				for i := w * per; i < (w+1)*per && err == nil; i += benchBatch {
					err = plain.Write(ctx, outs[i:i+benchBatch]...)
				}
				errc <- err
			}()
		}
		for range benchInFlight {
			if err := <-errc; err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(began)
	}
	// streamCollector sends the readings through one StreamReadings stream and waits for every ack.
	streamCollector := func() time.Duration {
		began := time.Now()
		st, err := client.StreamReadings(ctx)
		if err != nil {
			b.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			acked := 0
			for {
				resp, err := st.Recv()
				if err == io.EOF {
					break
				}
				if err != nil {
					done <- err
					return
				}
				acked += int(resp.GetAck().GetAcceptedReadings())
			}
			if acked != len(readings) {
				done <- fmt.Errorf("acked %d of %d", acked, len(readings))
				return
			}
			done <- nil
		}()
		for i := 0; i < len(readings); i += benchBatch {
			if err := st.Send(&greenwavev1.StreamReadingsRequest{Batch: &greenwavev1.ReadingBatch{BatchId: fmt.Sprint(i), Readings: readings[i : i+benchBatch]}}); err != nil {
				b.Fatal(err)
			}
		}
		if err := st.CloseSend(); err != nil {
			b.Fatal(err)
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		return time.Since(began)
	}

	// Each op runs both sides, alternating which goes first so that neither always meets the broker in the
	// state the other left (log segment rolls, page cache, a background flush); the rates reported are the
	// medians over the ops, and collector/plain the median of the per-op ratios.
	var plainRates, collRates, ratios []float64
	n := float64(len(readings))
	b.ResetTimer()
	for i := range b.N {
		var plainDur, collDur time.Duration
		if i%2 == 0 {
			plainDur = writePlain()
			collDur = streamCollector()
		} else {
			collDur = streamCollector()
			plainDur = writePlain()
		}
		plainRates = append(plainRates, n/plainDur.Seconds())
		collRates = append(collRates, n/collDur.Seconds())
		ratios = append(ratios, plainDur.Seconds()/collDur.Seconds())
	}
	b.StopTimer()
	b.ReportMetric(median(plainRates), "plain-readings/s")
	b.ReportMetric(median(collRates), "collector-readings/s")
	b.ReportMetric(median(ratios), "collector/plain")
}

// median returns the median of xs (the mean of the middle two for an even count); it sorts xs.
func median(xs []float64) float64 {
	slices.Sort(xs)
	m := len(xs) / 2
	if len(xs)%2 == 0 {
		return (xs[m-1] + xs[m]) / 2
	}
	return xs[m]
}
