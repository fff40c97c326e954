package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// dummyService stands for a service's gRPC API (greenwave.v1.CollectorService and the like).
var dummyService = grpc.ServiceDesc{ServiceName: "test.v1.DummyService", HandlerType: (*any)(nil)}

func startServer(t *testing.T, ready *atomic.Bool) Addrs {
	t.Helper()
	cfg := Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", ShutdownTimeout: time.Second}
	s, err := New(cfg, zaptest.NewLogger(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	s.GRPC().RegisterService(&dummyService, struct{}{})
	s.Handle("POST /v1/things", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	s.AddReadiness("test", func() error {
		if !ready.Load() {
			return errors.New("warming up")
		}
		return nil
	})
	return runServer(t, s)
}

// runServer runs s until the test ends and returns its addresses.
func runServer(t *testing.T, s *Server) Addrs {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	addrs, err := s.Addrs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return addrs
}

func TestMethodNotAllowedIsJSON(t *testing.T) {
	t.Parallel()
	var ready atomic.Bool
	addrs := startServer(t, &ready)
	for _, tt := range []struct {
		method, path, allow string
		want                int
	}{
		{http.MethodGet, "/v1/things", "POST", http.StatusMethodNotAllowed},
		{http.MethodDelete, "/v1/things", "POST", http.StatusMethodNotAllowed},
		{http.MethodPost, "/healthz", "GET, HEAD", http.StatusMethodNotAllowed},
		{http.MethodPost, "/v1/things", "", http.StatusNoContent},
		{http.MethodGet, "/nowhere", "", http.StatusNotFound},
	} {
		req, _ := http.NewRequest(tt.method, "http://"+addrs.HTTP+tt.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body ErrorBody
		decodeErr := json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != tt.want || resp.Header.Get("Allow") != tt.allow {
			t.Errorf("%s %s: %d Allow %q, want %d Allow %q", tt.method, tt.path, resp.StatusCode, resp.Header.Get("Allow"), tt.want, tt.allow)
		}
		if tt.want == http.StatusMethodNotAllowed {
			if decodeErr != nil || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") ||
				body.Error.Code != "UNIMPLEMENTED" || !strings.Contains(body.Error.Message, tt.method) {
				t.Errorf("%s %s: body %+v (%v), content type %q", tt.method, tt.path, body, decodeErr, resp.Header.Get("Content-Type"))
			}
		}
	}
}

// TestHealthPerService: grpc.health.v1 answers for "" and for each gRPC service by full name, following
// readiness; an unknown name is NOT_FOUND.
func TestHealthPerService(t *testing.T) {
	t.Parallel()
	var ready atomic.Bool
	addrs := startServer(t, &ready)
	conn, err := grpc.NewClient(addrs.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	check := func(service string) healthpb.HealthCheckResponse_ServingStatus {
		t.Helper()
		resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			return healthpb.HealthCheckResponse_SERVICE_UNKNOWN
		}
		return resp.GetStatus()
	}
	for _, name := range []string{"", dummyService.ServiceName} {
		if got := check(name); got != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Errorf("Check(%q) before ready = %v, want NOT_SERVING", name, got)
		}
	}
	if got := check("test.v1.NoSuchService"); got != healthpb.HealthCheckResponse_SERVICE_UNKNOWN {
		t.Errorf("Check(unknown service) = %v, want NOT_FOUND", got)
	}
	ready.Store(true)
	// Watch streams status changes: wait for SERVING on the service's own name.
	stream, err := client.Watch(ctx, &healthpb.HealthCheckRequest{Service: dummyService.ServiceName})
	if err != nil {
		t.Fatal(err)
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("watch %s: %v", dummyService.ServiceName, err)
		}
		if resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			break
		}
	}
	if got := check(""); got != healthpb.HealthCheckResponse_SERVING {
		t.Errorf(`Check("") once ready = %v, want SERVING`, got)
	}
}
