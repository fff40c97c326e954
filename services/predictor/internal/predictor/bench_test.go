package predictor

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/greenwave-city/greenwave/pkg/app"
	"github.com/greenwave-city/greenwave/pkg/broadcast"
	"github.com/greenwave-city/greenwave/pkg/features"
	"github.com/greenwave-city/greenwave/pkg/kafkatest"
	"github.com/greenwave-city/greenwave/pkg/models"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/topics"
	"github.com/greenwave-city/greenwave/pkg/train"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// benchIntersections is the number of intersections the benchmarks cycle through: enough that a frame's
// prediction is never coalesced with the next of the same intersection.
const benchIntersections = 500

// benchStore returns trained models for every bench intersection: the snapshots of "i1", renamed.
func benchStore(b *testing.B) *models.Store {
	b.Helper()
	src := trainedStore(b, 200)
	store := models.NewStore()
	snaps, _ := src.List(models.Filter{}, "", 1<<20)
	for i := range benchIntersections {
		in := fmt.Sprint("b", i)
		for _, s := range snaps {
			c := *s // shares the rest, which nothing modifies
			c.IntersectionID = in
			c.ModelID = train.ModelID(in, s.ApproachID, time.Duration(s.HorizonS)*time.Second, "flow")
			store.Put(&c)
		}
	}
	return store
}

// BenchmarkPredictionLatency drives the predictor's Kafka loop (consume → predict → publish with acks → hand
// to subscribers) on kfake at a steady 10 000 feature vectors/s (5 000 two-approach frames/s) and reports the
// latency from producing a frame to its prediction reaching the hub (after Kafka acknowledged it): p50 and p99
// in milliseconds, and the vector rate actually achieved. b.N is the number of frames.
func BenchmarkPredictionLatency(b *testing.B) {
	const vectorsPerS, approaches, tick = 10_000, 2, 10 * time.Millisecond
	kafkaConn, names := kafkatest.Setup(b, 3)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pred := newTestPredictor(benchStore(b), time.Hour)
	var cfg Config // the defaults, as the service runs
	if err := app.Load(&cfg, func(string) (string, bool) { return "", false }); err != nil {
		b.Fatal(err)
	}
	svc := newService(serviceConfig{kafkaConn: kafkaConn, names: names, group: "bench-" + names.Features, modelPartitions: 3, buffer: 1 << 20, maxBatch: cfg.MaxBatch, commitInterval: cfg.CommitInterval, writeLinger: cfg.WriteLinger},
		pred, zap.NewNop(), prometheus.NewRegistry())
	// Record the service's own latency (frame consumed → prediction acknowledged), which the latency histogram
	// observes, value by value.
	var svcMu sync.Mutex
	svcLatencies := make([]time.Duration, 0, b.N)
	svc.metrics.latency = prometheus.ObserverFunc(func(s float64) {
		svcMu.Lock()
		svcLatencies = append(svcLatencies, time.Duration(s*float64(time.Second)))
		svcMu.Unlock()
	})
	done := make(chan error, 1)
	go func() { done <- svc.run(ctx) }()
	sub := svc.hub.Subscribe(1<<20, nil)
	defer sub.Close()
	for !svc.proc.Joined() || svc.ready() != nil {
		select {
		case err := <-done:
			b.Fatalf("service stopped: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	prod := stream.NewProducer(kafkaConn, stream.ProducerConfig{})
	defer prod.Close()

	frames := make([]stream.Output, b.N)
	for i := range frames {
		f := testFrame(i / benchIntersections)
		f.IntersectionID = fmt.Sprint("b", i%benchIntersections)
		v, err := proto.Marshal(wire.FrameProto(f))
		if err != nil {
			b.Fatal(err)
		}
		frames[i] = stream.Output{Topic: names.Features, Key: []byte(f.IntersectionID), Value: v,
			EventID: wire.FeaturesEventID(f.IntersectionID, f.WindowStart), Payload: wire.TopicFeatures.Payload()}
	}
	sent := make(map[string]time.Time, b.N)
	var mu sync.Mutex
	latencies := make([]time.Duration, 0, b.N)
	received := make(chan struct{})
	go func() {
		defer close(received)
		for len(latencies) < b.N {
			it, err := sub.Next(ctx)
			if err != nil {
				return
			}
			now := time.Now()
			mu.Lock()
			latencies = append(latencies, now.Sub(sent[it.Value.GetEventId()]))
			mu.Unlock()
		}
	}()
	perTick := vectorsPerS / approaches * int(tick) / int(time.Second)
	b.ResetTimer()
	start := time.Now()
	ticker := time.NewTicker(tick)
	for i := 0; i < b.N; i += perTick {
		batch := frames[i:min(i+perTick, b.N)]
		now := time.Now()
		mu.Lock()
		for _, o := range batch {
			sent[o.EventID] = now
		}
		mu.Unlock()
		if err := prod.Write(ctx, batch...); err != nil {
			b.Fatal(err)
		}
		<-ticker.C
	}
	ticker.Stop()
	select {
	case <-received:
	case err := <-done:
		b.Fatalf("service stopped: %v", err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if len(latencies) < b.N {
		b.Fatalf("%d of %d predictions received", len(latencies), b.N)
	}
	q := func(ls []time.Duration, p float64) float64 {
		slices.Sort(ls)
		return float64(ls[int(p*float64(len(ls)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(q(latencies, 0.50), "p50-ms")
	b.ReportMetric(q(latencies, 0.99), "p99-ms")
	svcMu.Lock()
	b.ReportMetric(q(svcLatencies, 0.50), "svc-p50-ms")
	b.ReportMetric(q(svcLatencies, 0.99), "svc-p99-ms")
	svcMu.Unlock()
	b.ReportMetric(float64(b.N*approaches)/elapsed.Seconds(), "vectors/s")
	b.ReportMetric(0, "ns/op") // per-frame wall time is the pacing, not a cost
	cancel()
	<-done
}

// bareServer is a plain grpc-go server stream: it sends a fixed list of messages to every subscriber, with no
// hub, queue or filter — the baseline of the fan-out benchmark.
// It sends the first message, waits for gate to close, then sends the rest.
type bareServer struct {
	greenwavev1.UnimplementedPredictionServiceServer
	msgs []*greenwavev1.SubscribeResponse
	gate chan struct{}
}

func (s *bareServer) Subscribe(_ *greenwavev1.SubscribeRequest, st greenwavev1.PredictionService_SubscribeServer) error {
	for i, m := range s.msgs {
		if i == 1 {
			select {
			case <-s.gate:
			case <-st.Context().Done():
				return st.Context().Err()
			}
		}
		if err := st.Send(m); err != nil {
			return err
		}
	}
	return nil
}

func serve(b *testing.B, svc greenwavev1.PredictionServiceServer) greenwavev1.PredictionServiceClient {
	b.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := grpc.NewServer()
	greenwavev1.RegisterPredictionServiceServer(srv, svc)
	go srv.Serve(lis) //nolint:errcheck // ends with Stop
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close(); srv.Stop() })
	return greenwavev1.NewPredictionServiceClient(conn)
}

// BenchmarkSubscribeFanout sends b.N predictions (full two-approach, three-horizon predictions as Predict makes
// them) to 100 Subscribe clients over loopback gRPC, once through the predictor's API and hub and once through a
// bare grpc-go server stream sending the same messages, and reports both delivery rates (messages the clients
// received per second, summed over the clients, until every client has the final state) and their ratio. Under
// pressure the hub coalesces to the newest prediction per intersection; what it coalesced away is not counted as
// delivered but reported on its own as hub-coalesced-share.
func BenchmarkSubscribeFanout(b *testing.B) {
	const subscribers = 100
	base := newTestPredictor(trainedStore(b, 200), time.Hour).Predict(testFrame(200))
	msgs := make([]*greenwavev1.IntersectionPrediction, b.N)
	for i := range msgs {
		p := proto.CloneOf(base)
		p.IntersectionId = fmt.Sprint("b", i%benchIntersections)
		p.EventId = fmt.Sprint(p.IntersectionId, "@", i)
		msgs[i] = p
	}
	start := &greenwavev1.IntersectionPrediction{IntersectionId: "start"}
	end := &greenwavev1.IntersectionPrediction{IntersectionId: "end"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// run opens the streams; every client first receives "start" (for the hub, the initial state: it proves
	// the subscription is registered), then publish runs, then the clients read until "end".
	run := func(client greenwavev1.PredictionServiceClient, publish func()) (time.Duration, int64) {
		var registered, finished sync.WaitGroup
		var delivered atomic.Int64
		for range subscribers {
			st, err := client.Subscribe(ctx, &greenwavev1.SubscribeRequest{})
			if err != nil {
				b.Fatal(err)
			}
			registered.Add(1)
			finished.Add(1)
			go func() {
				defer finished.Done()
				first := true
				for {
					r, err := st.Recv()
					if first {
						registered.Done()
						first = false
					}
					if err != nil || r.GetPrediction().GetIntersectionId() == "end" {
						return
					}
					if r.GetPrediction().GetIntersectionId() != "start" {
						delivered.Add(1)
					}
				}
			}()
		}
		registered.Wait()
		began := time.Now()
		publish()
		finished.Wait()
		return time.Since(began), delivered.Load()
	}

	b.ResetTimer()
	svc := newService(serviceConfig{buffer: 2 * benchIntersections}, newTestPredictor(models.NewStore(), time.Hour), zap.NewNop(), prometheus.NewRegistry())
	defer svc.hub.Close()
	svc.hub.Publish("start", start)
	hubTime, hubDelivered := run(serve(b, svc.api), func() {
		for _, m := range msgs {
			svc.hub.Publish(m.GetIntersectionId(), m)
		}
		svc.hub.Publish("end", end)
	})
	bare := &bareServer{msgs: []*greenwavev1.SubscribeResponse{{Prediction: start, Initial: true}}, gate: make(chan struct{})}
	for _, m := range msgs {
		bare.msgs = append(bare.msgs, &greenwavev1.SubscribeResponse{Prediction: m})
	}
	bare.msgs = append(bare.msgs, &greenwavev1.SubscribeResponse{Prediction: end})
	bareTime, bareDelivered := run(serve(b, bare), func() { close(bare.gate) })
	b.StopTimer()
	// Rates count only messages a client received: a prediction the hub coalesced away (replaced by a newer one
	// of the same intersection before the client took it) is not a delivery.
	hubRate := float64(hubDelivered) / hubTime.Seconds()
	bareRate := float64(bareDelivered) / bareTime.Seconds()
	b.ReportMetric(hubRate, "hub-delivered-msgs/s")
	b.ReportMetric(bareRate, "bare-delivered-msgs/s")
	b.ReportMetric(hubRate/bareRate, "hub/bare")
	// Under pressure the hub coalesces to the newest prediction per intersection: the share of the published
	// messages × clients it did not deliver (the bare stream delivers all of them).
	b.ReportMetric(1-float64(hubDelivered)/float64(b.N*subscribers), "hub-coalesced-share")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkHandle measures the predictor's work per feature frame without Kafka: decode the frame, predict every
// approach × horizon from compiled models, encode the prediction (partition.Handle).
func BenchmarkHandle(b *testing.B) {
	store := benchStore(b)
	p := &partition{pred: newTestPredictor(store, time.Hour), names: topics.DefaultNames(""), hub: broadcast.New[*greenwavev1.IntersectionPrediction](),
		metrics: newMetrics(prometheus.NewRegistry(), store, nil), now: time.Now}
	msgs := make([]kafka.Message, benchIntersections)
	for i := range msgs {
		f := testFrame(200)
		f.IntersectionID = fmt.Sprint("b", i)
		v, err := proto.Marshal(wire.FrameProto(f))
		if err != nil {
			b.Fatal(err)
		}
		msgs[i] = kafka.Message{Value: v}
	}
	ctx := context.Background()
	for _, m := range msgs { // compile every model first: the benchmark is the steady state
		if _, err := p.Handle(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
	p.batch, p.began = p.batch[:0], p.began[:0]
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := p.Handle(ctx, msgs[i%len(msgs)]); err != nil {
			b.Fatal(err)
		}
		if len(p.batch) == 1000 {
			p.batch, p.began = p.batch[:0], p.began[:0]
		}
	}
}

// deployedFrame is testFrame with the feature layout a deployed model has (features.Names, all present), so that
// models learned from it have the deployed input count.
func deployedFrame(i int) features.Frame {
	f := testFrame(i)
	f.FeatureSetVersion, f.Names = features.SetVersion, features.Names()
	rng := rand.New(rand.NewPCG(uint64(i), 3))
	for k := range f.Approaches {
		v := f.Approaches[k]
		v.Values = make([]float64, len(f.Names))
		v.Values[0] = 1 // bias
		for j := 1; j < len(v.Values); j++ {
			v.Values[j] = rng.Float64()
		}
		f.Approaches[k] = v
	}
	return f
}

// BenchmarkModelMemory measures the heap the predictor's models take when it holds 10 000 models of the deployed
// size (the default learner configuration on features.Names): each model is encoded as the trainer writes it to
// the models topic, decoded as the predictor reads it (so no two models share memory), put in the store and
// compiled by a prediction. It reports the live heap after a GC, less the heap before (heap-bytes), that per model,
// and the mean record size on the models topic (snapshot-bytes/model). Run it with -benchtime 1x.
func BenchmarkModelMemory(b *testing.B) { modelMemory(b, false) }

// BenchmarkServedModelMemory is BenchmarkModelMemory with the served form of each snapshot (train.Served: the
// promoted candidate's covariance only, no error windows or pending inputs), which is what the trainer publishes
// on the models topic; the complete form goes to its changelog.
func BenchmarkServedModelMemory(b *testing.B) { modelMemory(b, true) }

// modelMemory is BenchmarkModelMemory, with the served form of the snapshots when served is set.
func modelMemory(b *testing.B, served bool) {
	const wantModels = 10_000
	var templates []*train.Snapshot
	for _, ap := range []string{"n", "s"} {
		l, err := train.NewLearner("i1", ap, features.Names(), features.SetVersion, train.DefaultConfig())
		if err != nil {
			b.Fatal(err)
		}
		for i := range 300 {
			f := deployedFrame(i)
			for _, v := range f.Approaches {
				if v.ApproachID == ap {
					if _, err := l.Apply(f, v); err != nil {
						b.Fatal(err)
					}
				}
			}
		}
		templates = append(templates, l.Snapshots()...)
	}
	intersections := (wantModels + len(templates) - 1) / len(templates)
	topic := topics.DefaultNames("").Models
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	for b.Loop() {
		frame := deployedFrame(300)
		before := heap()
		store := models.NewStore()
		pred := newTestPredictor(store, 100*365*24*time.Hour)
		var recordBytes int
		for i := range intersections {
			in := fmt.Sprint("b", i)
			for _, s := range templates {
				c := *s // shares the rest with the template, but only until it is encoded
				c.IntersectionID = in
				c.ModelID = train.ModelID(in, s.ApproachID, time.Duration(s.HorizonS)*time.Second, "flow")
				enc := &c
				if served {
					enc = train.Served(enc)
				}
				out, err := wire.EncodeModel(topic, enc)
				if err != nil {
					b.Fatal(err)
				}
				recordBytes += len(out.Value)
				d, err := wire.DecodeModel(kafka.Message{Key: out.Key, Value: out.Value,
					Headers: []kafka.Header{{Key: stream.HeaderContentEncoding, Value: []byte(out.ContentEncoding)}}})
				if err != nil {
					b.Fatal(err)
				}
				store.Put(d)
			}
			f := frame
			f.IntersectionID = in
			if p := pred.Predict(f); len(p.GetApproaches()) == 0 {
				b.Fatalf("no prediction for %s", in)
			}
		}
		n := intersections * len(templates)
		used := float64(heap() - before)
		runtime.KeepAlive(pred)
		b.ReportMetric(float64(n), "models")
		b.ReportMetric(used, "heap-bytes")
		b.ReportMetric(used/float64(n), "heap-bytes/model")
		b.ReportMetric(float64(recordBytes)/float64(n), "snapshot-bytes/model")
	}
	b.ReportMetric(0, "ns/op")
}
