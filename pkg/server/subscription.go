package server

import (
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/greenwave-city/greenwave/pkg/broadcast"
)

// SubscriptionStatus is the gRPC status that ends a server stream fed by a broadcast subscription whose Next
// (or SubscribeCapped) returned err: RESOURCE_EXHAUSTED for a subscriber that fell too far behind (resume says
// what it gets when it subscribes again) or one past the service's subscriber cap, UNAVAILABLE when the hub
// closed, else the context's own status.
func SubscriptionStatus(err error, resume string) error {
	switch {
	case errors.Is(err, broadcast.ErrOverflow):
		return status.Error(codes.ResourceExhausted, "subscriber too slow: reconnect to resume from "+resume)
	case errors.Is(err, broadcast.ErrTooManySubscribers):
		return status.Error(codes.ResourceExhausted, err.Error()+": retry later, or close a stream you no longer read")
	case errors.Is(err, broadcast.ErrClosed):
		return status.Error(codes.Unavailable, "server shutting down")
	default:
		return status.FromContextError(err).Err()
	}
}
