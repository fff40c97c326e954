package kafkatest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/greenwave-city/greenwave/pkg/kafkaconn"
	"github.com/greenwave-city/greenwave/pkg/topics"
)

// Outage is the switch of a kfake broker that can be taken down and brought back on the same address with its
// data: Stop closes the broker's listening socket and every connection it accepted, so clients see connections
// reset and then refused, exactly as during a real broker's restart; Start listens again on the same port. The
// cluster (its topics, records, committed offsets) lives on in between: only the network goes away.
type Outage struct {
	mu     sync.Mutex
	addr   string
	ln     net.Listener // nil while down
	up     chan struct{}
	conns  map[net.Conn]struct{}
	closed bool
}

// NewRestartableCluster starts a one-broker kfake cluster (as NewCluster) whose listener the returned Outage can
// stop and start.
func NewRestartableCluster(opts ...kfake.Opt) (*kfake.Cluster, *Outage, []string, error) {
	o := &Outage{up: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	c, addrs, err := NewCluster(append([]kfake.Opt{kfake.ListenFn(o.listen)}, opts...)...)
	if err != nil {
		return nil, nil, nil, err
	}
	return c, o, addrs, nil
}

func (o *Outage) listen(network, address string) (net.Listener, error) {
	ln, err := net.Listen(network, address)
	if err != nil {
		return nil, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.addr != "" {
		_ = ln.Close()
		return nil, errors.New("kafkatest: a restartable cluster has one broker")
	}
	o.addr, o.ln = ln.Addr().String(), ln
	return outageListener{o}, nil
}

// Stop takes the broker off the network: its listener closes (new connections are refused) and every open
// connection is closed.
func (o *Outage) Stop() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ln == nil || o.closed {
		return
	}
	_ = o.ln.Close()
	o.ln = nil
	for c := range o.conns {
		_ = c.Close()
	}
	clear(o.conns)
}

// Start puts the broker back on the network on the same address.
func (o *Outage) Start() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ln != nil || o.closed {
		return nil
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("kafkatest: listen again on %s: %w", o.addr, err)
	}
	o.ln = ln
	close(o.up)
	o.up = make(chan struct{})
	return nil
}

// outageListener is the listener kfake accepts from: while the broker is down its Accept waits for Start.
type outageListener struct{ o *Outage }

func (l outageListener) Accept() (net.Conn, error) {
	for {
		l.o.mu.Lock()
		ln, up, closed := l.o.ln, l.o.up, l.o.closed
		l.o.mu.Unlock()
		if closed {
			return nil, net.ErrClosed
		}
		if ln == nil {
			<-up
			continue
		}
		c, err := ln.Accept()
		if err != nil {
			l.o.mu.Lock()
			stopped := l.o.ln != ln && !l.o.closed
			l.o.mu.Unlock()
			if stopped {
				continue // Stop closed it: wait for Start
			}
			return nil, err
		}
		l.o.mu.Lock()
		if l.o.ln != ln {
			l.o.mu.Unlock()
			_ = c.Close()
			continue
		}
		l.o.conns[c] = struct{}{}
		l.o.mu.Unlock()
		return c, nil
	}
}

func (l outageListener) Close() error {
	l.o.mu.Lock()
	defer l.o.mu.Unlock()
	if l.o.closed {
		return nil
	}
	l.o.closed = true
	close(l.o.up)
	if l.o.ln != nil {
		_ = l.o.ln.Close()
		l.o.ln = nil
	}
	return nil
}

func (l outageListener) Addr() net.Addr {
	addr, _ := net.ResolveTCPAddr("tcp", l.o.addr)
	return addr
}

// SetupRestartable is Setup on a broker whose Outage the test controls (the embedded broker only: the test is
// skipped with KAFKA_BROKERS set, as a real broker's restart is not the test's to make).
func SetupRestartable(t testing.TB, partitions int) (kafkaconn.Conn, topics.Names, *Outage) {
	t.Helper()
	if Real() {
		t.Skip("broker outages are simulated on the embedded broker only")
	}
	c, outage, addrs, err := NewRestartableCluster()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	conn := kafkaconn.Plaintext(addrs...)
	names := topics.DefaultNames(Prefix(t))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := topics.EnsureTopics(ctx, conn, topics.Specs(names, partitions)); err != nil {
		t.Fatalf("ensure topics: %v", err)
	}
	return conn, names, outage
}
