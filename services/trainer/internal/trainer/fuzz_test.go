package trainer

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/topics"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// FuzzHandle feeds arbitrary bytes to the features decoder: a record is applied or rejected with a RejectError,
// never a panic or another error (which would stop the partition).
func FuzzHandle(f *testing.F) {
	rng := rand.New(rand.NewPCG(1, 1))
	f.Add(mustMarshal(f, frame("I-1", 0, approachIDs(2), rng)))
	f.Add(mustMarshal(f, frame("I-1", 1, []string{"A0", "A0"}, rng)))
	f.Add([]byte{0xff, 0x01})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, _ := newTestPartition(topics.DefaultNames("fuzz."))
		// A valid frame first, so the fuzzed record also meets an existing learner.
		if _, err := p.Handle(context.Background(), messages(t, 0, frame("I-1", 0, approachIDs(2), rand.New(rand.NewPCG(2, 2))))[0]); err != nil {
			t.Fatal(err)
		}
		_, err := p.Handle(context.Background(), kafka.Message{Value: b})
		var rej *stream.RejectError
		if err != nil && !errors.As(err, &rej) {
			t.Fatalf("Handle = %v, want nil or a RejectError", err)
		}
	})
}

// FuzzListModelsRequest feeds arbitrary page tokens and sizes to ListModels: a page or INVALID_ARGUMENT.
func FuzzListModelsRequest(f *testing.F) {
	f.Add("", int32(0))
	f.Add(pageToken("I-1/N/900/flow"), int32(2))
	f.Add("!!", int32(-1))
	api := NewAPI(modelsStoreWith(), nil, 1, testRegistry())
	f.Fuzz(func(t *testing.T, token string, size int32) {
		resp, err := api.ListModels(context.Background(), &greenwavev1.ListModelsRequest{PageToken: token, PageSize: size})
		if err != nil {
			if fieldOf(err) == "" {
				t.Fatalf("error without a field violation: %v", err)
			}
			return
		}
		if len(resp.GetModels()) > maxPageSize {
			t.Fatalf("%d models in a page", len(resp.GetModels()))
		}
	})
}
