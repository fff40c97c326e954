package predictor

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/protobuf/proto"

	"github.com/greenwave-city/greenwave/pkg/features"
	"github.com/greenwave-city/greenwave/pkg/models"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/train"
	"github.com/greenwave-city/greenwave/pkg/wire"
)

// hourlyFrame is testFrame with a one-hour window.
func hourlyFrame(i int) features.Frame {
	f := testFrame(i)
	f.WindowStart = epoch.Add(time.Duration(i) * time.Hour)
	f.WindowEnd = f.WindowStart.Add(time.Hour)
	return f
}

// TestHorizonRule: auto predicts the trainer's horizons for each frame's window (train.ConfigFor); given
// horizons that do not fit a window are an error naming PREDICTOR_HORIZONS.
func TestHorizonRule(t *testing.T) {
	t.Parallel()
	auto := newHorizonRule(nil)
	for _, f := range []features.Frame{testFrame(0), hourlyFrame(0)} {
		ws := int(f.WindowEnd.Sub(f.WindowStart) / time.Second)
		cfg, err := train.ConfigFor(train.BaseConfig(), ws)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := auto.of(f); err != nil || !slices.Equal(got, cfg.Horizons) {
			t.Fatalf("window %d s: %v, %v; want the trainer's %v", ws, got, err, cfg.Horizons)
		}
	}
	given := newHorizonRule([]time.Duration{15 * time.Minute})
	if _, err := given.of(testFrame(0)); err != nil {
		t.Fatal(err)
	}
	if _, err := given.of(hourlyFrame(0)); err == nil || !strings.Contains(err.Error(), "PREDICTOR_HORIZONS=15m does not fit") {
		t.Fatalf("err %v", err)
	}
}

// TestHandleRejectsHorizonsThatDoNotFit: a frame whose window the configured horizons do not fit is
// dead-lettered, counted by cause, logged once.
func TestHandleRejectsHorizonsThatDoNotFit(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	core, logs := observer.New(zapcore.InfoLevel)
	pred := newTestPredictor(models.NewStore(), time.Hour)
	pred.horizons = newHorizonRule([]time.Duration{15 * time.Minute})
	p := &partition{pred: pred, metrics: newMetrics(reg, models.NewStore(), nil), rejections: newRejections(reg, zap.New(core)), now: time.Now}
	for i := range 3 {
		b, err := proto.Marshal(wire.FrameProto(hourlyFrame(i)))
		if err != nil {
			t.Fatal(err)
		}
		outs, err := p.Handle(context.Background(), kafka.Message{Value: b})
		var rej *stream.RejectError
		if !errors.As(err, &rej) || len(outs) != 0 || !strings.Contains(rej.Detail, "PREDICTOR_HORIZONS") {
			t.Fatalf("Handle = %v, %v; want a rejection naming PREDICTOR_HORIZONS", outs, err)
		}
	}
	if n := testutil.ToFloat64(p.rejections.counter.WithLabelValues(causeHorizons)); n != 3 {
		t.Fatalf("%v counted, want 3", n)
	}
	if n := logs.Len(); n != 1 {
		t.Fatalf("%d log lines, want 1", n)
	}
}
