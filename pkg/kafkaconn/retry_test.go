package kafkaconn_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"

	"github.com/greenwave-city/greenwave/pkg/kafkaconn"
)

func TestIsTransient(t *testing.T) {
	t.Parallel()
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: fmt.Errorf("connect: %w", syscall.ECONNREFUSED)}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"dial refused", fmt.Errorf("failed to dial: %w", dial), true},
		{"reset", fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{"eof", fmt.Errorf("fetch: %w", io.EOF), true},
		{"unexpected eof", io.ErrUnexpectedEOF, true},
		{"i/o timeout", &net.OpError{Op: "read", Err: timeoutErr{}}, true},
		{"dns", &net.DNSError{Err: "no such host", Name: "kafka", IsNotFound: true}, true},
		{"broker not available", kafka.BrokerNotAvailable, true},
		{"leader not available", fmt.Errorf("list offsets: %w", kafka.LeaderNotAvailable), true},
		{"not coordinator", kafka.NotCoordinatorForGroup, true},
		{"rebalance in progress", kafka.RebalanceInProgress, true},
		{"coordinator not available", kafka.GroupCoordinatorNotAvailable, true},
		{"write errors all transient", kafka.WriteErrors{nil, kafka.NotLeaderForPartition, kafka.BrokerNotAvailable}, true},
		{"write errors one fatal", kafka.WriteErrors{kafka.NotLeaderForPartition, kafka.MessageSizeTooLarge}, false},
		{"message too large", kafka.MessageSizeTooLarge, false},
		{"unknown server error", kafka.Unknown, false},
		{"sasl failed", kafka.SASLAuthenticationFailed, false},
		{"topic authorization", fmt.Errorf("x: %w", kafka.TopicAuthorizationFailed), false},
		{"group authorization", kafka.GroupAuthorizationFailed, false},
		{"classified security", &kafkaconn.SecurityError{Hint: "h", Err: dial}, false},
		{"untrusted certificate", &net.OpError{Op: "remote error", Err: x509.UnknownAuthorityError{}}, false},
		{"context canceled", context.Canceled, false},
		{"context deadline", fmt.Errorf("fetch: %w", context.DeadlineExceeded), false},
		{"plain error", errors.New("topic does not exist"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := kafkaconn.IsTransient(tc.err); got != tc.want {
				t.Errorf("IsTransient(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestBackoffIsCappedExponential(t *testing.T) {
	t.Parallel()
	b := kafkaconn.Backoff{Min: 100 * time.Millisecond, Max: time.Second}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		if got := b.Delay(i); got != w*time.Millisecond {
			t.Errorf("Delay(%d) = %v, want %v", i, got, w*time.Millisecond)
		}
	}
	if got := b.Delay(1000); got != time.Second {
		t.Errorf("Delay(1000) = %v", got)
	}
}

// TestRetry: transient failures are retried, counted and make readiness fail until success; an error that is not
// transient ends it at once; the end of ctx ends it with the last failure.
func TestRetry(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	h := kafkaconn.NewHealth(reg).WithBackoff(kafkaconn.Backoff{Min: time.Microsecond, Max: time.Millisecond})
	ctx := context.Background()

	calls := 0
	var during error
	err := h.Retry(ctx, "follow t[0]", func(context.Context) error {
		calls++
		if calls > 1 {
			during = h.ReadyCheck()
		}
		if calls < 4 {
			return kafka.BrokerNotAvailable
		}
		return nil
	})
	if err != nil || calls != 4 {
		t.Fatalf("Retry = %v after %d calls, want nil after 4", err, calls)
	}
	if during == nil {
		t.Error("readiness passed while retrying")
	}
	if err := h.ReadyCheck(); err != nil {
		t.Errorf("readiness after success: %v", err)
	}
	if got := testutil.ToFloat64(h.RetriesCounter("follow t")); got != 3 {
		t.Errorf("retries = %v, want 3", got)
	}

	calls = 0
	fatal := &kafkaconn.SecurityError{Hint: "check KAFKA_SASL_USERNAME", Err: kafka.SASLAuthenticationFailed}
	if err := h.Retry(ctx, "startup", func(context.Context) error { calls++; return fatal }); !errors.Is(err, fatal) || calls != 1 {
		t.Errorf("security error: Retry = %v after %d calls, want it at once", err, calls)
	}

	cctx, cancel := context.WithCancel(ctx)
	err = h.Retry(cctx, "producer", func(context.Context) error { cancel(); return kafka.LeaderNotAvailable })
	if !errors.Is(err, context.Canceled) || !errors.Is(err, kafka.LeaderNotAvailable) {
		t.Errorf("cancelled: Retry = %v, want context.Canceled wrapping the last failure", err)
	}
	// A retry that ended (its partition revoked, say) no longer holds readiness down.
	if err := h.ReadyCheck(); err != nil {
		t.Errorf("readiness after the retries ended: %v", err)
	}
}

// TestHealthTracksParts: two partitions of one component are tracked on their own, and the gauge counts them.
func TestHealthTracksParts(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	h := kafkaconn.NewHealth(reg)
	h.Failed("follow m[0]", io.EOF)
	h.Failed("follow m[1]", io.EOF)
	if got := testutil.ToFloat64(h.UnreachableGauge()); got != 2 {
		t.Errorf("unreachable = %v, want 2", got)
	}
	h.Recovered("follow m[0]")
	if err := h.ReadyCheck(); err == nil {
		t.Error("ready while partition 1 is unreachable")
	}
	h.Recovered("follow m[1]")
	if err := h.ReadyCheck(); err != nil {
		t.Errorf("not ready after both recovered: %v", err)
	}
	if got := testutil.ToFloat64(h.UnreachableGauge()); got != 0 {
		t.Errorf("unreachable = %v, want 0", got)
	}
	var nilHealth *kafkaconn.Health
	nilHealth.Failed("x", io.EOF)
	if err := nilHealth.ReadyCheck(); err != nil {
		t.Errorf("nil Health: %v", err)
	}
}
