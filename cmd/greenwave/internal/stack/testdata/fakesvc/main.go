// Command fakesvc stands in for a Greenwave service in tests of the stack and of `greenwave dev`. Its role is
// the base name it was started as (copies are made as collector, cleaner, …). Like a real service it serves via
// pkg/server: it writes ADDR_FILE once listening, answers /healthz and /readyz, and stops on SIGTERM or SIGINT.
// As "collector" it acks every StreamReadings batch (rejecting readings whose interval is not over yet as
// FUTURE_TIMESTAMP); as "signalcontrol" it sends a fixed-time plan on WatchPlans every FAKE_PLAN_EVERY.
//
// Behaviour switches (environment):
//
//	FAKE_IGNORE_TERM=1          ignore SIGTERM (stop only by SIGKILL)
//	FAKE_NEVER_READY=1          /readyz always answers 503
//	FAKE_EXIT_AFTER=DURATION    exit with status 3 after DURATION
//	FAKE_EXIT_AT_START=1        exit with status 2 before listening
//	FAKE_LOG_LINES=N            print N numbered lines to stdout and N to stderr at start
//	FAKE_GRANDCHILD_PID_FILE=F  start a sleeping grandchild and write its pid to F
//	FAKE_PLAN_EVERY=DURATION    plan interval of signalcontrol (default 100ms)
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/greenwave-city/greenwave/pkg/server"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

func main() {
	if os.Getenv("FAKE_ROLE") == "sleeper" {
		time.Sleep(time.Hour)
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "fakesvc:", err)
		os.Exit(1)
	}
}

func run() error {
	role := filepath.Base(os.Args[0])
	fmt.Printf("fake %s starting\n", role)
	if os.Getenv("FAKE_EXIT_AT_START") == "1" {
		fmt.Fprintf(os.Stderr, "fake %s: told to fail at start\n", role)
		os.Exit(2)
	}
	n, _ := strconv.Atoi(os.Getenv("FAKE_LOG_LINES"))
	for i := range n {
		fmt.Printf("stdout line %d\n", i)
		fmt.Fprintf(os.Stderr, "stderr line %d\n", i)
	}
	if f := os.Getenv("FAKE_GRANDCHILD_PID_FILE"); f != "" {
		c := exec.Command(os.Args[0])
		c.Env = append(os.Environ(), "FAKE_ROLE=sleeper")
		if err := c.Start(); err != nil {
			return err
		}
		if err := os.WriteFile(f, []byte(strconv.Itoa(c.Process.Pid)), 0o644); err != nil {
			return err
		}
	}

	sigs := []os.Signal{syscall.SIGINT, syscall.SIGTERM}
	if os.Getenv("FAKE_IGNORE_TERM") == "1" {
		signal.Ignore(syscall.SIGTERM)
		sigs = sigs[:1]
	}
	ctx, stop := signal.NotifyContext(context.Background(), sigs...)
	defer stop()
	if d, err := time.ParseDuration(os.Getenv("FAKE_EXIT_AFTER")); err == nil {
		time.AfterFunc(d, func() {
			fmt.Fprintf(os.Stderr, "fake %s: exiting as told\n", role)
			os.Exit(3)
		})
	}

	srv, err := server.New(server.Config{
		GRPCAddr: os.Getenv("GRPC_ADDR"), HTTPAddr: os.Getenv("HTTP_ADDR"), AddrFile: os.Getenv("ADDR_FILE"),
		ShutdownTimeout: time.Second,
	}, zap.NewNop(), prometheus.NewRegistry())
	if err != nil {
		return err
	}
	if os.Getenv("FAKE_NEVER_READY") == "1" {
		srv.AddReadiness("fake", func() error { return fmt.Errorf("told never to be ready") })
	}
	switch role {
	case "collector":
		greenwavev1.RegisterCollectorServiceServer(srv.GRPC(), collector{})
	case "signalcontrol":
		every, err := time.ParseDuration(os.Getenv("FAKE_PLAN_EVERY"))
		if err != nil {
			every = 100 * time.Millisecond
		}
		greenwavev1.RegisterSignalControlServiceServer(srv.GRPC(), signalControl{every: every})
	}
	err = srv.Run(ctx)
	fmt.Printf("fake %s stopped\n", role)
	return err
}

type collector struct {
	greenwavev1.UnimplementedCollectorServiceServer
}

func (collector) StreamReadings(stream greenwavev1.CollectorService_StreamReadingsServer) error {
	for {
		req, err := stream.Recv()
		if err != nil {
			return nil
		}
		b := req.GetBatch()
		ack := &greenwavev1.BatchAck{BatchId: b.GetBatchId(), AcceptedWeather: uint32(len(b.GetWeather()))}
		now := time.Now()
		for i, r := range b.GetReadings() {
			end := r.GetObservedAt().AsTime().Add(time.Duration(r.GetIntervalS()) * time.Second)
			if end.After(now) {
				ack.Rejected = append(ack.Rejected, &greenwavev1.RejectedReading{
					Kind: greenwavev1.ReadingKind_READING_KIND_TRAFFIC, Index: uint32(i), ReadingId: r.GetReadingId(),
					Reason: greenwavev1.RejectReason_REJECT_REASON_FUTURE_TIMESTAMP, Field: fmt.Sprintf("readings[%d].observed_at", i),
				})
				continue
			}
			ack.AcceptedReadings++
		}
		if err := stream.Send(&greenwavev1.StreamReadingsResponse{Ack: ack}); err != nil {
			return err
		}
	}
}

type signalControl struct {
	greenwavev1.UnimplementedSignalControlServiceServer
	every time.Duration
}

func (s signalControl) WatchPlans(_ *greenwavev1.WatchPlansRequest, stream greenwavev1.SignalControlService_WatchPlansServer) error {
	t := time.NewTicker(s.every)
	defer t.Stop()
	at := time.Date(2026, 11, 26, 7, 35, 0, 0, time.UTC)
	for i := 0; ; i++ {
		plan := &greenwavev1.SignalPlan{
			SchemaVersion: 1, PlanId: fmt.Sprintf("I-100/%d", i), IntersectionId: "I-100",
			ValidFrom: timestamppb.New(at), ValidUntil: timestamppb.New(at.Add(5 * time.Minute)),
			CycleS: 70, Reason: greenwavev1.PlanReason_PLAN_REASON_FIXED_TIME, ReasonDetail: "fake: no predictions",
			Phases: []*greenwavev1.PhaseTiming{{PhaseId: "NS", GreenS: 34, YellowS: 4, AllRedS: 2}, {PhaseId: "EW", GreenS: 24, YellowS: 4, AllRedS: 2}},
		}
		if err := stream.Send(&greenwavev1.WatchPlansResponse{Plan: plan, Initial: i == 0}); err != nil {
			return err
		}
		at = at.Add(5 * time.Minute)
		select {
		case <-stream.Context().Done():
			return nil
		case <-t.C:
		}
	}
}
