package e2e

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/stack"
	"github.com/greenwave-city/greenwave/pkg/kafkatest"
	"github.com/greenwave-city/greenwave/pkg/topics"
	"github.com/greenwave-city/greenwave/pkg/topology"
)

// TestServicesRideOutBrokerOutages takes the broker off the network mid-run (its listener closed, every
// connection dropped, the data kept, as in a broker restart) and brings it back: every service stays alive,
// says on /readyz that it cannot reach Kafka during the outage ("kafka") and is ready again afterwards without a
// restart; a predictor started during the outage binds its ports and waits ("startup") rather than exiting; and the pipeline's result is the undisturbed one — every accepted reading in a feature frame or a dead
// letter exactly once, plans for every intersection.
func TestServicesRideOutBrokerOutages(t *testing.T) {
	parallelStack(t)
	root, bins := binaries(t)
	kafkaConn, names, outage := kafkatest.SetupRestartable(t, partitions)
	prefix := names.Readings[:len(names.Readings)-len(topics.DefaultNames("").Readings)]
	topoFile := filepath.Join(root, "config", "topology.yaml")
	topo, err := topology.Load(topoFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	st, err := stack.Start(ctx, stack.Config{
		Brokers: kafkaConn.Brokers, TopicPrefix: prefix, TopologyFile: topoFile, BinDir: bins, Dir: t.TempDir(),
		Stdout: testWriter{t}, LogFormat: "console", LogLevel: "warn",
		ExtraEnv: map[string][]string{"collector": {"COLLECTOR_ALLOW_ANONYMOUS=true"}},
	})
	if err != nil {
		t.Fatalf("start stack: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Stop(); err != nil {
			t.Errorf("stop stack: %v", err)
		}
	})
	if err := st.WaitReady(ctx); err != nil {
		t.Fatalf("stack not ready: %v", err)
	}
	p := &pipeline{t: t, kafkaConn: kafkaConn, names: names, stack: st, topo: topo}

	s := newSender(ctx, t, st.Addrs("collector").GRPC)
	outageDone := false
	dataEnd := p.feed(ctx, s, 90, func(i int) {
		if i != 45 {
			return
		}
		outage.Stop()
		for _, svc := range st.Services() {
			waitReadyz(ctx, t, st, svc, false, `"kafka"`)
		}
		// A service started while the broker is down binds its ports (Restart waits for them) and waits.
		if err := st.Restart(ctx, "predictor"); err != nil {
			t.Fatalf("start the predictor during the outage: %v", err)
		}
		waitReadyz(ctx, t, st, "predictor", false, `"startup"`)
		if err := outage.Start(); err != nil {
			t.Fatal(err)
		}
		for _, svc := range st.Services() {
			waitReadyz(ctx, t, st, svc, true, "")
		}
		outageDone = true
	})
	if !outageDone {
		t.Fatal("the outage did not happen")
	}
	select {
	case <-st.Done():
		t.Fatalf("a service exited: %v", st.Err())
	default:
	}
	p.flush(s, dataEnd)
	p.waitPlans(ctx)
	p.waitAccounted(ctx, s.accepted-countFlush(p.topo), dataEnd)
	select {
	case <-st.Done():
		t.Fatalf("a service exited: %v", st.Err())
	default:
	}
}

// waitReadyz polls a service's /readyz until it answers ready (200) or, when ready is false, not ready (503)
// with want in its body (a failing check's name).
func waitReadyz(ctx context.Context, t *testing.T, st *stack.Stack, svc string, ready bool, want string) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	url := "http://" + st.Addrs(svc).HTTP + "/readyz"
	var last string
	for {
		if resp, err := client.Get(url); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			last = resp.Status + " " + string(b)
			if ready && resp.StatusCode == http.StatusOK {
				t.Logf("%s ready again", svc)
				return
			}
			if !ready && resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(last, want) {
				t.Logf("%s during the outage: %s", svc, strings.TrimSpace(last))
				return
			}
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s /readyz never answered ready=%v; last: %s", svc, ready, last)
		case <-st.Done():
			t.Fatalf("a service exited during the outage: %v", st.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
