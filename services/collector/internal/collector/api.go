package collector

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/greenwave-city/greenwave/pkg/ingest/gateways"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// GRPCStatus renders the refusal as a gRPC status with google.rpc details: BadRequest field violations for bad
// requests, RetryInfo when retrying later can succeed.
func (f *failure) GRPCStatus() *status.Status {
	st := status.New(f.code, f.message)
	var details []protoadapt.MessageV1
	if len(f.fields) > 0 {
		br := &errdetails.BadRequest{}
		for _, v := range f.fields {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: v.Field, Description: v.Description})
		}
		details = append(details, br)
	}
	if f.retryAfter > 0 {
		details = append(details, &errdetails.RetryInfo{RetryDelay: durationpb.New(f.retryAfter)})
	}
	if len(details) == 0 {
		return st
	}
	withDetails, err := st.WithDetails(details...)
	if err != nil {
		return st
	}
	return withDetails
}

// ServerOptions are the gRPC options the collector needs: the authentication interceptors (on CollectorService
// only; health and reflection stay open) and the message size limit.
func (s *Service) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			if !strings.HasPrefix(info.FullMethod, servicePrefix) {
				return handler(ctx, req)
			}
			ctx, err := s.authenticateGRPC(ctx, info.FullMethod)
			if err != nil {
				return nil, err
			}
			return handler(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
			if !strings.HasPrefix(info.FullMethod, servicePrefix) {
				return handler(srv, ss)
			}
			ctx, err := s.authenticateGRPC(ss.Context(), info.FullMethod)
			if err != nil {
				return err
			}
			return handler(srv, &authedStream{ServerStream: ss, ctx: ctx})
		}),
		grpc.MaxRecvMsgSize(s.maxBytes),
	}
}

type authedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (a *authedStream) Context() context.Context { return a.ctx }

// caller returns the authenticated gateway; a Service registered without its interceptors refuses everyone
// rather than publishing unauthenticated data.
func (s *Service) caller(ctx context.Context) (*gateways.Gateway, error) {
	if g := gatewayOf(ctx); g != nil {
		return g, nil
	}
	return nil, status.Error(codes.Unauthenticated, "no authenticated gateway (the collector's interceptors are not installed)")
}

// checkSize enforces COLLECTOR_MAX_MESSAGE_BYTES on a decoded message. gRPC's MaxRecvMsgSize refuses larger
// messages before decoding; this repeats the check so the limit holds even when the server was built with a
// larger one, answering as gRPC itself does.
func (s *Service) checkSize(api string, m proto.Message) *failure {
	if n := proto.Size(m); n > s.maxBytes {
		return s.invalid(api, "too_large", 413, codes.ResourceExhausted, "batch", "the message is %d bytes, more than the maximum %d", n, s.maxBytes)
	}
	return nil
}

// PublishReadings implements the unary RPC.
func (s *Service) PublishReadings(ctx context.Context, req *greenwavev1.PublishReadingsRequest) (*greenwavev1.PublishReadingsResponse, error) {
	began := s.now()
	gw, err := s.caller(ctx)
	if err != nil {
		return nil, err
	}
	if f := s.checkSize("grpc_unary", req); f != nil {
		return nil, f
	}
	release, f := s.admit("grpc_unary")
	if f != nil {
		return nil, f
	}
	defer release()
	ack, err := s.process(ctx, "grpc_unary", gw, req.GetBatch().GetBatchId(), itemsOfBatch(req.GetBatch()), began, s.pub.Write)
	if err != nil {
		return nil, err
	}
	return &greenwavev1.PublishReadingsResponse{Ack: ack}, nil
}

// outcome is one stream batch's result.
type outcome struct {
	ack *greenwavev1.BatchAck
	err error
}

// StreamReadings implements the long-lived stream. Up to COLLECTOR_STREAM_IN_FLIGHT batches are validated and
// published concurrently; acks go out strictly in request order, each only after Kafka acknowledged its batch.
// When the window is full the stream stops reading, so HTTP/2 flow control pushes back on the gateway. The
// first batch that fails ends the stream with its status after the acks of every earlier batch: the gateway
// resends from the first unacknowledged batch (later batches may already be in Kafka; their stable ids make the
// resend harmless). A stream that receives no batch and has none in flight for COLLECTOR_STREAM_IDLE_TIMEOUT is
// ended with UNAVAILABLE, so idle streams cannot pile up.
func (s *Service) StreamReadings(st greenwavev1.CollectorService_StreamReadingsServer) error {
	gw, err := s.caller(st.Context())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(st.Context())
	defer cancel(nil)
	idle := newIdleWatch(s.streamIdle, cancel)
	defer idle.stop()
	// pending holds the result slots of batches in flight, in arrival order; its capacity plus the one the
	// sender is waiting on is the window.
	pending := make(chan chan outcome, s.streamInFlight-1)
	var recvErr error
	var workers tracker
	seq := newSequencer(s.pub)
	go seq.run(ctx)
	go func() {
		recvErr = s.receive(ctx, st, gw, pending, &workers, seq, idle)
		close(pending) // happens-after the recvErr write, so the sender may read it once pending is drained
	}()
	sendErr := func() error {
		for {
			var slot chan outcome
			var more bool
			select {
			case slot, more = <-pending:
			case <-ctx.Done():
				return idle.streamEnd(ctx)
			}
			if !more {
				break
			}
			var o outcome
			select {
			case o = <-slot:
			case <-ctx.Done():
				return idle.streamEnd(ctx)
			}
			if o.err != nil {
				return o.err
			}
			if err := st.Send(&greenwavev1.StreamReadingsResponse{Ack: o.ack}); err != nil {
				return fmt.Errorf("send ack: %w", err)
			}
			idle.done()
		}
		if errors.Is(recvErr, io.EOF) {
			return nil
		}
		return recvErr
	}()
	cancel(nil)
	// Batches still being published see the cancelled context and finish; waiting for them keeps the in-flight
	// count exact. The receiver may still be blocked in Recv: it returns when this handler does.
	workers.stopAndWait()
	return sendErr
}

// idleWatch ends a stream (through cancel) once it has had no batch in flight for timeout. Every received batch
// counts as in flight until its ack is sent.
type idleWatch struct {
	timeout  time.Duration
	timer    *time.Timer
	inFlight atomic.Int64
	// end is the status an idle stream ends with, and the cause its context is cancelled with.
	end error
}

// newIdleWatch starts watching; timeout 0 never ends the stream.
func newIdleWatch(timeout time.Duration, cancel context.CancelCauseFunc) *idleWatch {
	w := &idleWatch{timeout: timeout}
	if timeout <= 0 {
		return w
	}
	w.end = status.Errorf(codes.Unavailable, "stream idle for %s without a batch (COLLECTOR_STREAM_IDLE_TIMEOUT): open a new stream when there is data", timeout)
	// Created stopped and started once w.timer is set: the callback reads it.
	w.timer = time.AfterFunc(time.Duration(math.MaxInt64), func() {
		if w.inFlight.Load() > 0 {
			w.timer.Reset(timeout) // busy: a batch is being published or its ack sent
			return
		}
		cancel(w.end)
	})
	w.timer.Reset(timeout)
	return w
}

// received marks a batch in flight.
func (w *idleWatch) received() {
	w.inFlight.Add(1)
	if w.timer != nil {
		w.timer.Reset(w.timeout)
	}
}

// done marks a batch's ack sent.
func (w *idleWatch) done() {
	w.inFlight.Add(-1)
	if w.timer != nil {
		w.timer.Reset(w.timeout)
	}
}

// streamEnd is the error that ends a stream whose context ended: UNAVAILABLE for an idle stream, else the
// context's error (the gateway went away or the server is stopping).
func (w *idleWatch) streamEnd(ctx context.Context) error {
	if w.end != nil && errors.Is(context.Cause(ctx), w.end) {
		return w.end
	}
	return ctx.Err()
}

func (w *idleWatch) stop() {
	if w.timer != nil {
		w.timer.Stop()
	}
}

// receive reads batches and starts each one's processing, blocking while the window is full.
func (s *Service) receive(ctx context.Context, st greenwavev1.CollectorService_StreamReadingsServer, gw *gateways.Gateway, pending chan<- chan outcome, workers *tracker, seq *sequencer, idle *idleWatch) error {
	prevTurn := make(chan struct{})
	close(prevTurn)
	for {
		req, err := st.Recv()
		if err != nil {
			return err
		}
		idle.received()
		began := s.now()
		slot := make(chan outcome, 1)
		select {
		case pending <- slot:
		case <-ctx.Done():
			return ctx.Err()
		}
		if f := s.checkSize("grpc_stream", req); f != nil {
			slot <- outcome{err: f}
			return f
		}
		release, f := s.admit("grpc_stream")
		if f != nil {
			slot <- outcome{err: f}
			return f
		}
		turn := newTurn(prevTurn)
		prevTurn = turn.done
		started := workers.start(func() {
			defer release()
			defer turn.finish() // a batch that never publishes must not hold back the ones after it
			ack, err := s.process(ctx, "grpc_stream", gw, req.GetBatch().GetBatchId(), itemsOfBatch(req.GetBatch()), began, seq.publisher(turn))
			slot <- outcome{ack: ack, err: err}
		})
		if !started {
			release()
			return ctx.Err()
		}
	}
}

// tracker runs a stream's batch workers and lets the handler wait for them; once stopped it starts no more,
// so no worker outlives the handler's wait.
type tracker struct {
	mu      sync.Mutex
	stopped bool
	wg      sync.WaitGroup
}

func (t *tracker) start(f func()) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return false
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		f()
	}()
	return true
}

func (t *tracker) stopAndWait() {
	t.mu.Lock()
	t.stopped = true
	t.mu.Unlock()
	t.wg.Wait()
}
