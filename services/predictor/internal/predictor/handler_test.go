package predictor

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/greenwave-city/greenwave/pkg/models"
	"github.com/greenwave-city/greenwave/pkg/stream"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// TestHandleRejects: bad feature records are dead-lettered with a reason, never predicted or published.
func TestHandleRejects(t *testing.T) {
	t.Parallel()
	m := newMetrics(prometheus.NewRegistry(), models.NewStore(), nil)
	p := &partition{pred: newTestPredictor(models.NewStore(), time.Hour), metrics: m, now: time.Now}
	future, _ := proto.Marshal(&greenwavev1.IntersectionFeatures{SchemaVersion: 99, IntersectionId: "i1"})
	noID, _ := proto.Marshal(&greenwavev1.IntersectionFeatures{SchemaVersion: 1})
	tests := []struct {
		name   string
		value  []byte
		reason greenwavev1.RejectReason
	}{
		{"not protobuf", []byte{0xff, 0xff, 0xff}, greenwavev1.RejectReason_REJECT_REASON_MALFORMED},
		{"newer schema", future, greenwavev1.RejectReason_REJECT_REASON_UNSUPPORTED_SCHEMA},
		{"no intersection", noID, greenwavev1.RejectReason_REJECT_REASON_MALFORMED},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			outs, err := p.Handle(context.Background(), kafka.Message{Value: tt.value})
			var rej *stream.RejectError
			if !errors.As(err, &rej) || rej.Reason != tt.reason || len(outs) != 0 {
				t.Fatalf("Handle = %v, %v; want a %v rejection", outs, err, tt.reason)
			}
		})
	}
	if len(p.batch) != 0 {
		t.Fatal("a rejected record was queued for subscribers")
	}
}

func FuzzHandle(f *testing.F) {
	ok, _ := proto.Marshal(&greenwavev1.IntersectionFeatures{SchemaVersion: 1, IntersectionId: "i1"})
	f.Add(ok)
	f.Add([]byte{0x0a, 0x02, 'i'})
	m := newMetrics(prometheus.NewRegistry(), models.NewStore(), nil)
	pred := newTestPredictor(trainedStore(f, 100), time.Hour)
	f.Fuzz(func(t *testing.T, b []byte) {
		p := &partition{pred: pred, metrics: m, now: time.Now}
		outs, err := p.Handle(context.Background(), kafka.Message{Value: b})
		var rej *stream.RejectError
		if err != nil && !errors.As(err, &rej) {
			t.Fatalf("Handle returned a non-reject error on input: %v", err)
		}
		if err == nil && len(outs) != 1 {
			t.Fatalf("%d outputs for an accepted record", len(outs))
		}
	})
}
