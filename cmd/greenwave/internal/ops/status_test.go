package ops

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// fakeService serves /readyz and /metrics like pkg/server; every scrape advances its counters by 10.
func fakeService(t *testing.T, ready bool, metrics string) string {
	t.Helper()
	var scrapes atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"status":"not ready","failing":{"consumer-group":"joining the consumer group"}}`)
			return
		}
		fmt.Fprint(w, `{"status":"ready"}`)
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		n := scrapes.Add(1) * 10
		fmt.Fprintf(w, metrics, n, n, n)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

const streamMetrics = `# TYPE greenwave_stream_records_total counter
greenwave_stream_records_total{topic="greenwave.features"} %d
# TYPE greenwave_stream_outputs_total counter
greenwave_stream_outputs_total{topic="greenwave.features"} %d
# TYPE greenwave_stream_dead_letters_total counter
greenwave_stream_dead_letters_total{topic="greenwave.features",reason="malformed"} %d
# TYPE greenwave_consumer_lag_records gauge
greenwave_consumer_lag_records{group="g",topic="greenwave.features",partition="0"} 5
greenwave_consumer_lag_records{group="g",topic="greenwave.features",partition="1"} 7
`

const collectorMetrics = `# TYPE greenwave_collector_accepted_total counter
greenwave_collector_accepted_total{kind="reading",gateway="g"} %d
# TYPE greenwave_collector_rejected_total counter
greenwave_collector_rejected_total{kind="reading",reason="x",gateway="g"} %d
# TYPE unused counter
unused %d
`

func TestStatus(t *testing.T) {
	t.Parallel()
	collector := fakeService(t, true, collectorMetrics)
	trainer := fakeService(t, true, streamMetrics)
	cleaner := fakeService(t, false, streamMetrics)
	args := []string{"--http", "collector=" + collector, "--http", "trainer=" + trainer, "--http", "cleaner=" + cleaner,
		"--http", "predictor=127.0.0.1:1", "--interval", "1ms", "--json"}
	var stdout, stderr bytes.Buffer
	err := statusCmd(t.Context(), args, &stdout, &stderr, env{}.lookup)
	if err == nil || exitStatus(err) != 1 || !strings.Contains(err.Error(), "3 of 5 services not ready") {
		t.Fatalf("status = %v, want exit 1 naming 3 of 5", err)
	}
	got := map[string]serviceStatus{}
	for _, l := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		var s serviceStatus
		if err := json.Unmarshal([]byte(l), &s); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		got[s.Service] = s
	}
	if len(got) != 5 {
		t.Fatalf("%d services reported, want 5:\n%s", len(got), stdout.String())
	}
	tr := got["trainer"]
	if tr.State != "ready" || tr.Lag == nil || *tr.Lag != 12 || tr.InPerS == nil || *tr.InPerS <= 0 || *tr.BadPerS <= 0 {
		t.Errorf("trainer = %+v, want ready, lag 12 and positive rates", tr)
	}
	if c := got["collector"]; c.State != "ready" || c.Lag != nil || c.OutPerS == nil || *c.OutPerS <= 0 || *c.InPerS != 2**c.OutPerS {
		t.Errorf("collector = %+v, want ready, no lag, in = accepted + rejected", c)
	}
	if c := got["cleaner"]; c.State != "not ready" || c.Failing["consumer-group"] == "" {
		t.Errorf("cleaner = %+v, want not ready with the failing check", c)
	}
	if p := got["predictor"]; p.State != "down" || !strings.Contains(p.Error, "/readyz") {
		t.Errorf("predictor = %+v, want down", p)
	}
	if s := got["signalcontrol"]; s.State != "unknown" || !strings.Contains(s.Error, "--http signalcontrol=") {
		t.Errorf("signalcontrol = %+v, want unknown, pointing at --http", s)
	}

	// Human form: one line per service.
	stdout.Reset()
	_ = statusCmd(t.Context(), []string{"--http", "trainer=" + trainer, "--interval", "0"}, &stdout, &stderr, env{}.lookup)
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[2], "trainer") || !strings.Contains(lines[2], "lag 12") {
		t.Errorf("human output:\n%s", stdout.String())
	}
}

func TestStatusUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--http", "nosuch=127.0.0.1:1"}, {"--http", "trainer"}, {"--http", "trainer=x"}, {"extra"}, {"--interval", "-1s"}} {
		err := statusCmd(t.Context(), args, &bytes.Buffer{}, &bytes.Buffer{}, env{}.lookup)
		if exitStatus(err) != 2 {
			t.Errorf("status %q = %v, want a usage error", args, err)
		}
	}
}
