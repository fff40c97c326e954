package e2e

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/stack"
	"github.com/greenwave-city/greenwave/pkg/kafkatest"
	"github.com/greenwave-city/greenwave/pkg/topics"
	"github.com/greenwave-city/greenwave/pkg/topology"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
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
	simStart := time.Now().Add(-24 * time.Hour).Truncate(time.Hour)

	// The undisturbed run: the same readings through a pipeline whose broker stays up.
	ref := startPipeline(t)
	ref.simStart = simStart
	rs := newSender(ctx, t, ref.stack.Addrs("collector").GRPC)
	refEnd := ref.feed(ctx, rs, 90, nil)
	ref.flush(rs, refEnd)
	ref.waitAccounted(ctx, rs.accepted-countFlush(ref.topo), refEnd)
	want := ref.framesBefore(ctx, refEnd)

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
	p := &pipeline{t: t, kafkaConn: kafkaConn, names: names, stack: st, topo: topo, simStart: simStart}

	s := newSender(ctx, t, st.Addrs("collector").GRPC)
	outageDone := false
	dataEnd := p.feed(ctx, s, 90, func(i int) {
		if i != 45 {
			return
		}
		outage.Stop()
		began := time.Now()
		for _, svc := range st.Services() {
			waitReadyz(ctx, t, st, svc, false, `"kafka"`)
		}
		// A service started while the broker is down binds its ports (Restart waits for them) and waits.
		if err := st.Restart(ctx, "predictor"); err != nil {
			t.Fatalf("start the predictor during the outage: %v", err)
		}
		waitReadyz(ctx, t, st, "predictor", false, `"startup"`)
		// The outage's length is the scenario, not a synchronisation: longer than the consumer groups' session
		// timeout (10 s by default), so the broker expires every member and the groups rebalance when it is back.
		select {
		case <-time.After(outageFor - time.Since(began)):
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
		if err := outage.Start(); err != nil {
			t.Fatal(err)
		}
		for _, svc := range st.Services() {
			waitReadyz(ctx, t, st, svc, true, "")
		}
		t.Logf("broker down for %v, every service ready %v after it came back", outageFor, time.Since(began)-outageFor)
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
	if s.accepted != rs.accepted {
		t.Errorf("collector accepted %d readings, the undisturbed run %d", s.accepted, rs.accepted)
	}
	// The feature frames equal the undisturbed run's: same event ids, equal content.
	compareByID(t, "feature frame", want, p.framesBefore(ctx, dataEnd))
	select {
	case <-st.Done():
		t.Fatalf("a service exited: %v", st.Err())
	default:
	}
}

// outageFor is how long the broker stays down.
const outageFor = 15 * time.Second

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

// framesBefore returns the feature frames of windows starting before end, by event id.
func (p *pipeline) framesBefore(ctx context.Context, end time.Time) map[string]*greenwavev1.IntersectionFeatures {
	p.t.Helper()
	frames := map[string]*greenwavev1.IntersectionFeatures{}
	for _, m := range p.readAll(ctx, p.names.Features) {
		var f greenwavev1.IntersectionFeatures
		if err := proto.Unmarshal(m.Value, &f); err != nil {
			p.t.Fatalf("decode frame: %v", err)
		}
		if f.GetWindowStart().AsTime().Before(end) {
			frames[f.GetEventId()] = &f
		}
	}
	return frames
}
