package server

import (
	"context"
	"testing"
	"time"

	"github.com/greenwave-city/greenwave/pkg/broadcast"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

// TestShutdownEndsSubscriptions checks that a subscription stream open at shutdown ends at once with
// UNAVAILABLE "server shutting down" (so the client reconnects elsewhere), through the hook that closes its hub.
// Without OnShutdown the graceful stop would wait for the stream for the whole ShutdownTimeout and then cut it
// with a transport error instead: this test then fails on the status message.
func TestShutdownEndsSubscriptions(t *testing.T) {
	hub := broadcast.New[int]()
	subscribed := make(chan struct{})
	watch := grpc.ServiceDesc{
		ServiceName: "test.v1.WatchService",
		HandlerType: (*any)(nil),
		Streams: []grpc.StreamDesc{{
			StreamName:    "Watch",
			ServerStreams: true,
			Handler: func(_ any, st grpc.ServerStream) error {
				if err := st.RecvMsg(&emptypb.Empty{}); err != nil {
					return err
				}
				sub := hub.Subscribe(8, nil)
				defer sub.Close()
				close(subscribed)
				for {
					if _, err := sub.Next(st.Context()); err != nil {
						return SubscriptionStatus(err, "the current values")
					}
				}
			},
		}},
	}
	cfg := Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", ShutdownTimeout: time.Minute}
	s, err := New(cfg, zaptest.NewLogger(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	s.GRPC().RegisterService(&watch, struct{}{})
	s.OnShutdown(hub.Close)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	addrs, err := s.Addrs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(addrs.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	st, err := conn.NewStream(context.Background(), &watch.Streams[0], "/test.v1.WatchService/Watch")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SendMsg(&emptypb.Empty{}); err != nil {
		t.Fatal(err)
	}
	if err := st.CloseSend(); err != nil {
		t.Fatal(err)
	}
	<-subscribed
	cancel()
	err = st.RecvMsg(&emptypb.Empty{})
	if s, _ := status.FromError(err); s.Code() != codes.Unavailable || s.Message() != "server shutting down" {
		t.Fatalf("stream ended with %v, want UNAVAILABLE server shutting down", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}
