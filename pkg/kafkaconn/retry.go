package kafkaconn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
)

// IsTransient reports whether err is a failure that waiting can mend: the brokers refusing, resetting or timing
// out connections (a restart, a network blip), kafka-go's temporary protocol errors (leader or coordinator not
// available, not leader, rebalance in progress…), and a broker not available. Security failures (see IsSecurity
// and Conn.Classify) are never transient, nor are the ends of contexts: the caller's own cancellation or
// deadline is not the broker's fault and is handled where it was set.
func IsTransient(err error) bool {
	if err == nil || IsSecurity(err) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	// Raw certificate, handshake and SASL failures, not yet classified, are not transient either.
	if (Conn{}).hint(err) != "" {
		return false
	}
	var we kafka.WriteErrors
	if errors.As(err, &we) {
		// A batch fails record by record; it is transient when every failed record's error is.
		failed := false
		for _, e := range we {
			if e == nil {
				continue
			}
			if !IsTransient(e) {
				return false
			}
			failed = true
		}
		return failed
	}
	var kerr kafka.Error
	if errors.As(err, &kerr) {
		if isSecurityCode(kerr) {
			return false
		}
		switch kerr {
		case kafka.BrokerNotAvailable, kafka.RebalanceInProgress, kafka.NotCoordinatorForGroup,
			kafka.GroupCoordinatorNotAvailable, kafka.LeaderNotAvailable, kafka.NotLeaderForPartition,
			kafka.RequestTimedOut, kafka.NetworkException:
			return true
		}
		return kerr.Temporary()
	}
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.ErrNoProgress),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNABORTED),
		errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ETIMEDOUT), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH), errors.Is(err, net.ErrClosed):
		return true
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		// A broker's name vanishes from DNS while its container restarts.
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var op *net.OpError
	if errors.As(err, &op) {
		// A dial or read that failed at the network level, without a security cause (checked above by the caller
		// through Classify when it matters): kafka-go's "failed to dial" errors wrap these.
		return true
	}
	// kafka-go words some connection failures without an error value.
	msg := err.Error()
	return strings.Contains(msg, "connection refused") || strings.Contains(msg, "connection reset")
}

// isSecurityCode reports whether a protocol error is an authentication or authorization failure.
func isSecurityCode(e kafka.Error) bool {
	switch e {
	case kafka.SASLAuthenticationFailed, kafka.UnsupportedSASLMechanism, kafka.IllegalSASLState,
		kafka.TopicAuthorizationFailed, kafka.GroupAuthorizationFailed, kafka.ClusterAuthorizationFailed,
		kafka.TransactionalIDAuthorizationFailed, kafka.DelegationTokenAuthorizationFailed:
		return true
	}
	return false
}

// Backoff is a capped exponential backoff: Min, then doubling up to Max.
type Backoff struct {
	Min, Max time.Duration
}

// DefaultBackoff returns the backoff of Health.Retry: from 100ms up to 5s, so a broker back after a restart is
// found within 5 s while a long outage costs one attempt per component every 5 s.
func DefaultBackoff() Backoff { return Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second} }

// Delay returns the wait before retry number attempt (0-based).
func (b Backoff) Delay(attempt int) time.Duration {
	d := b.Min
	for range attempt {
		d *= 2
		if d >= b.Max {
			return b.Max
		}
	}
	return min(d, b.Max)
}

// Health follows which components of a process cannot reach Kafka: each reports when it starts retrying and when
// it made progress again. It counts the retries (greenwave_kafka_retries_total{component}), exports how many
// components are stuck (greenwave_kafka_unreachable_components), and is a readiness check that fails, naming
// them, while any is. A nil *Health is valid: it retries the same way and reports nothing (tools, tests).
type Health struct {
	retries     *prometheus.CounterVec
	unreachable prometheus.Gauge
	backoff     Backoff

	mu    sync.Mutex
	stuck map[string]string // component → the last error
}

// NewHealth returns a Health whose metrics are registered in reg (nil: not exported).
func NewHealth(reg prometheus.Registerer) *Health {
	h := &Health{
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "greenwave_kafka_retries_total",
			Help: "Kafka operations retried after a transient failure (broker unreachable or restarting), by component.",
		}, []string{"component"}),
		unreachable: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "greenwave_kafka_unreachable_components",
			Help: "Components of this process currently retrying because Kafka cannot be reached; /readyz fails while it is above 0.",
		}),
		backoff: DefaultBackoff(),
		stuck:   map[string]string{},
	}
	if reg != nil {
		reg.MustRegister(h.retries, h.unreachable)
	}
	return h
}

// WithBackoff sets the backoff (tests shorten it) and returns h.
func (h *Health) WithBackoff(b Backoff) *Health {
	if h != nil {
		h.backoff = b
	}
	return h
}

// Backoff returns the backoff retries wait by.
func (h *Health) Backoff() Backoff {
	if h == nil {
		return DefaultBackoff()
	}
	return h.backoff
}

// Failed records that component hit the transient error err and is about to retry. A component may name a part
// in brackets ("follow greenwave.models[3]"): readiness tracks each part on its own, so one partition's recovery
// does not hide another's outage, while the retry counter is labelled with the component without the part.
func (h *Health) Failed(component string, err error) {
	if h == nil {
		return
	}
	label := component
	if i := strings.IndexByte(component, '['); i > 0 {
		label = component[:i]
	}
	h.retries.WithLabelValues(label).Inc()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stuck[component] = err.Error()
	h.unreachable.Set(float64(len(h.stuck)))
}

// Recovered records that component made progress: it reached Kafka again.
func (h *Health) Recovered(component string) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.stuck[component]; !ok {
		return
	}
	delete(h.stuck, component)
	h.unreachable.Set(float64(len(h.stuck)))
}

// Unreachable returns the components that cannot reach Kafka now, sorted.
func (h *Health) Unreachable() []string {
	if h == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]string, 0, len(h.stuck))
	for c := range h.stuck {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// ReadyCheck is a readiness check: it fails while any component cannot reach Kafka, naming them and the first
// one's last error.
func (h *Health) ReadyCheck() error {
	if h == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.stuck) == 0 {
		return nil
	}
	names := make([]string, 0, len(h.stuck))
	for c := range h.stuck {
		names = append(names, c)
	}
	sort.Strings(names)
	return fmt.Errorf("cannot reach Kafka, retrying: %s (%s)", strings.Join(names, ", "), h.stuck[names[0]])
}

// Retry calls op until it succeeds, fails with an error that is not transient (returned as it is), or ctx ends
// (returning ctx's error with the last failure). Between attempts it waits by the capped exponential backoff.
// Each transient failure is counted and marks component unreachable while Retry goes on; however it returns,
// the component is no longer marked (a partition revoked mid-outage must not keep its instance unready).
func (h *Health) Retry(ctx context.Context, component string, op func(context.Context) error) error {
	defer h.Recovered(component)
	for attempt := 0; ; attempt++ {
		err := op(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w (while retrying: %w)", ctx.Err(), err)
		}
		if !IsTransient(err) {
			return err
		}
		h.Failed(component, err)
		if serr := Sleep(ctx, h.Backoff().Delay(attempt)); serr != nil {
			return fmt.Errorf("%w (while retrying: %w)", serr, err)
		}
	}
}

// Sleep waits for d or until ctx ends, returning ctx's error then.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// WithHealth returns the connection reporting to h: stream's readers, processors and producers made from it
// count their retries there and mark themselves unreachable while they wait for the brokers.
func (c Conn) WithHealth(h *Health) Conn {
	c.health = h
	return c
}

// Health returns the Health the connection reports to (nil: none).
func (c Conn) Health() *Health { return c.health }

// RetriesCounter returns the retry counter of component (for tests).
func (h *Health) RetriesCounter(component string) prometheus.Counter {
	return h.retries.WithLabelValues(component)
}

// UnreachableGauge returns the gauge of unreachable components (for tests).
func (h *Health) UnreachableGauge() prometheus.Gauge { return h.unreachable }

// Watch calls probe every interval until ctx ends, marking component unreachable while it fails and reachable
// when it succeeds. A process whose only Kafka client writes on demand (the collector) uses it so that readiness
// follows the brokers even when nothing is written, and comes back after an outage without waiting for traffic
// that a load balancer would not send to an unready instance.
func (h *Health) Watch(ctx context.Context, component string, interval time.Duration, probe func(context.Context) error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := probe(ctx); err == nil {
			h.Recovered(component)
		} else if ctx.Err() == nil {
			h.Failed(component, err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Reachable opens a connection of its own to the bootstrap brokers (TLS handshake and SASL included) and asks
// one for its API versions: nil when one answers. Unlike a metadata request on a shared client, which kafka-go
// answers from its cache while the brokers are away, it fails as soon as the brokers cannot be reached.
func (c Conn) Reachable(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for _, b := range c.Brokers {
		conn, err := c.Dialer().DialContext(ctx, "tcp", b)
		if err != nil {
			last = err
			continue
		}
		_ = conn.SetDeadline(time.Now().Add(timeout))
		_, err = conn.ApiVersions()
		_ = conn.Close()
		if err == nil {
			return nil
		}
		last = err
	}
	return fmt.Errorf("kafka: brokers %s unreachable: %w", c, last)
}
