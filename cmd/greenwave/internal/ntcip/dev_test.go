package ntcip

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/dev"
	"github.com/greenwave-city/greenwave/pkg/server"
)

// TestDevPlanReachesTheController is the adapter end to end: `greenwave dev` (the five services on the embedded
// broker, with simulated sensors) makes plans, Run watches them and writes them to the simulated controller,
// where the activated plan's objects are read back over SNMP.
func TestDevPlanReachesTheController(t *testing.T) {
	a := startAgent(t)
	topo, err := filepath.Abs("../../../../config/topology.yaml")
	if err != nil {
		t.Fatal(err)
	}
	l := loadFor(t, a.addr, func(s string) string {
		return strings.Replace(s, "topology: topology.yaml", "topology: "+topo, 1)
	})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, outW := io.Pipe()
	devDone := make(chan error, 1)
	go func() {
		err := dev.Run(ctx, dev.Options{Sample: true, JSON: true, Backfill: 2 * time.Hour, LogFile: filepath.Join(t.TempDir(), "dev.log"),
			LogLevel: "info", ReadyTimeout: 3 * time.Minute}, outW, io.Discard)
		outW.Close()
		devDone <- err
	}()
	ready := make(chan map[string]server.Addrs, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		for sc.Scan() {
			var ev struct {
				Event    string                  `json:"event"`
				Services map[string]server.Addrs `json:"services"`
			}
			if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Event == "ready" {
				ready <- ev.Services
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	var services map[string]server.Addrs
	select {
	case services = <-ready:
	case err := <-devDone:
		t.Fatalf("greenwave dev ended before it was ready: %v", err)
	}

	// Every outcome is recorded; the first activation is signalled. Run is then stopped, so that the last
	// activation recorded is what the controller holds.
	var (
		mu        sync.Mutex
		activated []Outcome
	)
	first := make(chan struct{})
	runCtx, stopRun := context.WithCancel(ctx)
	runDone := make(chan error, 1)
	go func() {
		runDone <- Run(runCtx, l, Options{SignalControl: services["signalcontrol"].GRPC, Logger: zaptest.NewLogger(t),
			Metrics: NewMetrics(prometheus.NewRegistry()), OnOutcome: func(o Outcome) {
				if o.Kind != "activated" {
					t.Logf("outcome %+v", o)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if activated = append(activated, o); len(activated) == 1 {
					close(first)
				}
			}})
	}()
	select {
	case <-first:
	case <-time.After(3 * time.Minute): // a bound on a hung stack, not synchronisation
		t.Fatal("no plan activated on the controller within 3 minutes")
	}
	stopRun()
	if err := <-runDone; err != nil {
		t.Errorf("Run: %v", err)
	}
	last := activated[len(activated)-1] // Run has returned: no more writes
	tm := last.Timing
	if tm.CycleS < 50 || tm.CycleS > 150 || (tm.Pattern != 200 && tm.Pattern != 201) {
		t.Fatalf("activated %+v", tm)
	}
	for _, v := range append(append(tm.SplitVars(), tm.PatternVars()...), tm.ActivateVar()) {
		if n, err := a.getV2(v.OID); err != nil || n != v.Value {
			t.Errorf("snmp get %s = %d (%v), want %d", v.OID, n, err, v.Value)
		}
	}
	t.Logf("%d plans activated; the last, %s: pattern %d, cycle %d s, offset %d s, splits %+v",
		len(activated), last.PlanID, tm.Pattern, tm.CycleS, tm.OffsetS, tm.Rows)
	cancel()
	if err := <-devDone; err != nil {
		t.Errorf("dev: %v", err)
	}
}
