package stream_test

import (
	"context"
	"errors"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/greenwave-city/greenwave/pkg/stream"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

func TestDecoded(t *testing.T) {
	t.Parallel()
	dec := stream.DecoderFunc[string](func(m kafka.Message) (string, error) {
		if string(m.Value) == "bad" {
			return "", stream.Reject(greenwavev1.RejectReason_REJECT_REASON_MALFORMED, "bad value")
		}
		return string(m.Value), nil
	})
	var got []string
	h := stream.Decoded(dec, func(_ context.Context, m kafka.Message, v string) ([]stream.Output, error) {
		got = append(got, v)
		return []stream.Output{{Key: m.Key, Value: []byte(v)}}, nil
	})
	for _, tt := range []struct {
		name, value string
		wantReject  bool
	}{
		{"decoded", "ok", false},
		{"rejected before the handler", "bad", true},
	} {
		outs, err := h(context.Background(), kafka.Message{Key: []byte("k"), Value: []byte(tt.value)})
		var rej *stream.RejectError
		if errors.As(err, &rej) != tt.wantReject || (len(outs) == 1) == tt.wantReject {
			t.Errorf("%s: outputs %v, error %v", tt.name, outs, err)
		}
	}
	if len(got) != 1 || got[0] != "ok" {
		t.Errorf("handler saw %v, want only the decoded value", got)
	}
}

func TestHome(t *testing.T) {
	t.Parallel()
	const n = 6
	home := stream.PartitionFor("I-100", n)
	for _, tt := range []struct {
		name          string
		partition, n  int
		wantPartition int
		wantOwned     bool
	}{
		{"home partition", home, n, home, true},
		{"another partition", (home + 1) % n, n, home, false},
		{"count unknown", 3, 0, 3, true},
	} {
		if got, ok := stream.Home("I-100", tt.partition, tt.n); got != tt.wantPartition || ok != tt.wantOwned {
			t.Errorf("%s: Home = %d, %v; want %d, %v", tt.name, got, ok, tt.wantPartition, tt.wantOwned)
		}
	}
}
