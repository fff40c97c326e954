package server

import (
	"context"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/greenwave-city/greenwave/pkg/broadcast"
)

func TestSubscriptionStatus(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		err  error
		want codes.Code
	}{
		{broadcast.ErrOverflow, codes.ResourceExhausted},
		{fmt.Errorf("next: %w", broadcast.ErrOverflow), codes.ResourceExhausted},
		{broadcast.ErrClosed, codes.Unavailable},
		{context.Canceled, codes.Canceled},
		{context.DeadlineExceeded, codes.DeadlineExceeded},
	} {
		if got := status.Code(SubscriptionStatus(tt.err, "the current plans")); got != tt.want {
			t.Errorf("SubscriptionStatus(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
