package cleaner

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/greenwave-city/greenwave/pkg/clean"
	"github.com/greenwave-city/greenwave/pkg/kafkatest"
	"github.com/greenwave-city/greenwave/pkg/stream"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// syncFixture is a partition whose weather follower the test holds: the weather observation of t0 is published
// on a kfake weather topic, but reaches the partition's weather table only when the test releases it.
type syncFixture struct {
	p       *partition
	table   *weatherTable
	record  kafka.Message // the published weather record, as the follower would read it
	waiting chan struct{} // receives when the partition starts waiting for the follower
}

func newSyncFixture(t *testing.T, limit time.Duration) *syncFixture {
	t.Helper()
	kafkaConn, names := kafkatest.Setup(t, 1)
	obs := &greenwavev1.WeatherReading{SchemaVersion: 1, ReadingId: "STN-1@t0", StationId: "STN-1", ObservedAt: timestamppb.New(t0),
		TemperatureC: proto.Float64(4.5)}
	b, err := proto.Marshal(obs)
	if err != nil {
		t.Fatal(err)
	}
	w := &kafka.Writer{Addr: kafkaConn.Addr(), Transport: kafkaConn.Transport(), Topic: names.Weather, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	if err := w.WriteMessages(context.Background(), kafka.Message{Key: []byte("STN-1"), Value: b}); err != nil {
		t.Fatal(err)
	}
	p := newTestPartition(t, 0)
	table := &weatherTable{t: clean.NewWeatherTable(clean.DefaultConfig())}
	p.weather = table
	p.wsync = newWeatherSync(kafkaWeatherEnds(kafkaConn, names.Weather, 1), limit, p.metrics.waits, nil)
	f := &syncFixture{p: p, table: table, waiting: make(chan struct{}, 1),
		record: kafka.Message{Topic: names.Weather, Partition: 0, Offset: 0, Value: b}}
	p.wsync.onWait = func() {
		select {
		case f.waiting <- struct{}{}:
		default: // already signalled
		}
	}
	return f
}

// release lets the held follower apply the published weather record.
func (f *syncFixture) release() {
	applyWeather(f.table, f.p.metrics, f.record)
	f.p.wsync.consumed(f.record.Partition, f.record.Offset)
}

// readings are 40 minutes of every I-100 detector, enough to close the first windows.
func (f *syncFixture) readings(t *testing.T) []kafka.Message {
	t.Helper()
	dets := []string{"I-100-N1", "I-100-N2", "I-100-S1", "I-100-S2", "I-100-E1", "I-100-W1"}
	var vals [][]byte
	for m := range 40 {
		for _, d := range dets {
			b, err := proto.Marshal(reading("I-100", d, m, 5))
			if err != nil {
				t.Fatal(err)
			}
			vals = append(vals, b)
		}
	}
	return messages(0, vals)
}

type handled struct {
	outs []stream.Output
	err  error
}

// run handles msgs in a goroutine, as the partition's goroutine would, stopping at the first error.
func (f *syncFixture) run(ctx context.Context, msgs []kafka.Message) <-chan handled {
	done := make(chan handled, 1)
	go func() {
		var all []stream.Output
		for _, m := range msgs {
			outs, err := f.p.Handle(ctx, m)
			var rej *stream.RejectError
			if err != nil && !errors.As(err, &rej) {
				done <- handled{all, err}
				return
			}
			all = append(all, outs...)
		}
		done <- handled{all, nil}
	}()
	return done
}

func firstFrame(t *testing.T, f *syncFixture, outs []stream.Output) *greenwavev1.IntersectionFeatures {
	t.Helper()
	for _, o := range outs {
		if o.Topic == f.p.names.Features {
			var fr greenwavev1.IntersectionFeatures
			if err := proto.Unmarshal(o.Value, &fr); err != nil {
				t.Fatal(err)
			}
			return &fr
		}
	}
	t.Fatal("no frame emitted")
	return nil
}

func TestWeatherSyncWaitsForFollower(t *testing.T) {
	t.Parallel()
	f := newSyncFixture(t, time.Hour)
	done := f.run(context.Background(), f.readings(t))
	select {
	case <-f.waiting:
	case h := <-done:
		t.Fatalf("the partition emitted without waiting for the follower that is behind (err %v)", h.err)
	}
	f.release()
	h := <-done
	if h.err != nil {
		t.Fatal(h.err)
	}
	fr := firstFrame(t, f, h.outs)
	if w := fr.GetWeather(); w.GetMissing() || w.GetTemperatureC() != 4.5 {
		t.Errorf("first frame's weather %v: want the held observation joined", w)
	}
	if n := testutil.ToFloat64(f.p.metrics.waits.WithLabelValues(waitCaughtUp)); n != 1 {
		t.Errorf("caught_up waits %v, want 1 (later windows find the follower caught up)", n)
	}
}

func TestWeatherSyncCanceled(t *testing.T) {
	t.Parallel()
	f := newSyncFixture(t, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := f.run(ctx, f.readings(t))
	select {
	case <-f.waiting:
	case h := <-done:
		t.Fatalf("the partition emitted without waiting for the follower that is behind (err %v)", h.err)
	}
	cancel()
	h := <-done
	if !errors.Is(h.err, context.Canceled) {
		t.Fatalf("handle after cancel: %v, want context.Canceled", h.err)
	}
	for _, o := range h.outs {
		if o.Topic == f.p.names.Features {
			var fr greenwavev1.IntersectionFeatures
			if err := proto.Unmarshal(o.Value, &fr); err != nil {
				t.Fatal(err)
			}
			if fr.GetWeather().GetMissing() {
				t.Errorf("a frame without the weather escaped the canceled wait: %v", fr.GetWindowStart())
			}
		}
	}
	if n := testutil.ToFloat64(f.p.metrics.waits.WithLabelValues(waitCanceled)); n != 1 {
		t.Errorf("canceled waits %v, want 1", n)
	}
}

func TestWeatherSyncTimeout(t *testing.T) {
	t.Parallel()
	f := newSyncFixture(t, time.Nanosecond)
	ends := f.p.wsync.ends
	f.p.wsync.ends = func(ctx context.Context) (map[int]int64, map[int]int64, error) {
		return ends(context.WithoutCancel(ctx)) // the offsets arrive; only the wait for the follower times out
	}
	h := <-f.run(context.Background(), f.readings(t))
	if h.err != nil {
		t.Fatal(h.err)
	}
	<-f.waiting
	if fr := firstFrame(t, f, h.outs); !fr.GetWeather().GetMissing() {
		t.Errorf("frame after a timed-out wait has weather %v: want missing (the follower never caught up)", fr.GetWeather())
	}
	if n := testutil.ToFloat64(f.p.metrics.waits.WithLabelValues(waitTimedOut)); n < 1 {
		t.Errorf("timed_out waits %v, want at least 1", n)
	}
}

func TestWeatherSyncNotBehind(t *testing.T) {
	t.Parallel()
	f := newSyncFixture(t, time.Hour)
	f.release() // the follower is caught up: nothing waits
	h := <-f.run(context.Background(), f.readings(t))
	if h.err != nil {
		t.Fatal(h.err)
	}
	if fr := firstFrame(t, f, h.outs); fr.GetWeather().GetMissing() {
		t.Errorf("frame weather missing with the follower caught up")
	}
	select {
	case <-f.waiting:
		t.Error("a partition waited although the follower was caught up")
	default:
	}
	if n := testutil.CollectAndCount(f.p.metrics.waits); n != 0 {
		t.Errorf("%d wait outcomes counted, want none", n)
	}
}

// A replay read at full speed fetches records far below the readings' high watermark: one observation of the
// weather topic's end covers them all, so the brokers are asked once, not once per window.
func TestWeatherSyncAsksOncePerFetch(t *testing.T) {
	t.Parallel()
	f := newSyncFixture(t, time.Hour)
	f.release()
	ends, asked := f.p.wsync.ends, 0
	f.p.wsync.ends = func(ctx context.Context) (map[int]int64, map[int]int64, error) {
		asked++
		return ends(ctx)
	}
	msgs := f.readings(t)
	for i := range msgs {
		msgs[i].HighWaterMark = int64(len(msgs)) // all fetched together
	}
	h := <-f.run(context.Background(), msgs)
	if h.err != nil {
		t.Fatal(h.err)
	}
	if n := byTopic(h.outs)[f.p.names.Features]; n < 2 || asked != 1 {
		t.Errorf("%d frames, %d end-offset requests: want ≥2 frames and one request", n, asked)
	}
}
