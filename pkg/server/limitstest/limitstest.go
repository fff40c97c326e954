// Package limitstest holds many client streams open against a service, as slow or unread anonymous clients
// would, so the services' tests can check their caps by the caps' deterministic effects (how many streams were
// accepted, which status the others got) rather than by timing.
package limitstest

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// Hold opens n streams concurrently with open, which starts one stream under ctx and returns once the stream
// delivered its first message (nil) or failed (its error). It returns how many streams ended with each status
// code (codes.OK: delivered and still open). The open streams are never read again; release cancels them all.
func Hold(t testing.TB, n int, open func(ctx context.Context) error) (map[codes.Code]int, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		got = map[codes.Code]int{}
	)
	for range n {
		wg.Go(func() {
			code := status.Code(open(ctx))
			mu.Lock()
			got[code]++
			mu.Unlock()
		})
	}
	wg.Wait()
	return got, cancel
}

// WaitFor polls cond until it holds, failing the test after a minute: it waits for a state (a subscriber count
// falling to zero after the clients went away), it does not wait for time to pass.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within a minute", what)
		}
		time.Sleep(5 * time.Millisecond) // polling interval
	}
}

// Serve runs a plain gRPC server with the services register adds on a loopback port until the test ends, and
// returns a client connection to it: the services' API tests serve their API this way, without pkg/server.
func Serve(t testing.TB, register func(*grpc.Server)) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	register(srv)
	go srv.Serve(lis) //nolint:errcheck // ends with Stop
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		srv.Stop()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		srv.Stop()
	})
	return conn
}
