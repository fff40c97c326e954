package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/greenwave-city/greenwave/pkg/stream"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// requirePrometheus is the environment variable CI sets so that a missing prometheus fails the test instead of
// skipping it.
const requirePrometheus = "GREENWAVE_REQUIRE_PROMETHEUS"

// promCheck is one expression the evaluation runs, where it comes from, and what it must return.
type promCheck struct {
	where string
	expr  string
	// mayBeEmpty marks an alert's own expression: a healthy stack fires no alert.
	mayBeEmpty bool
	series     int
	err        string
}

// TestPrometheusEvaluatesDashboardAndRules runs the five services, feeds them readings (and a few bad ones, so
// that rejections and dead letters have series), scrapes them every second with Debian's prometheus loading
// deploy/prometheus/rules.yml, and checks what is otherwise only parsed: every dashboard panel query and
// template variable and every recording rule returns at least one series, every rule group loads and evaluates
// without error, and every metric an alert uses has data. Series of the Kafka exporter (kafka_*, job="kafka")
// are not evaluated: the test runs no exporter. The table of expressions and series counts is logged (go test -v).
func TestPrometheusEvaluatesDashboardAndRules(t *testing.T) {
	promBin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv(requirePrometheus) == "1" {
			t.Fatalf("prometheus not found and %s=1: %v", requirePrometheus, err)
		}
		t.Skipf("prometheus not found (apt-get install prometheus; set %s=1 to fail instead): %v", requirePrometheus, err)
	}
	parallelStack(t)
	// The trainer publishes a model's evaluation (the MAE panel) with its served snapshots, by default every
	// 12 h of event time: every 15 minutes here, so that 90 minutes of readings publish some.
	p := startPipelineWith(t, map[string][]string{"trainer": {"TRAINER_PUBLISH_INTERVAL=15m"}})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	root, _ := binaries(t)

	api := startPrometheus(ctx, t, promBin, root, p)

	s := newSender(ctx, t, p.stack.Addrs("collector").GRPC)
	dataEnd := p.feed(ctx, s, 90, nil)
	p.flush(s, dataEnd)
	// A reading of no known detector and one with a negative count: the collector rejects them with a reason.
	at := timestampOf(dataEnd)
	s.send(t, []*greenwavev1.TrafficReading{
		{DetectorId: "no-such-detector", ObservedAt: at, IntervalS: 60, Count: 5},
		{DetectorId: p.topo.Intersections[0].Approaches[0].Detectors[0], ObservedAt: at, IntervalS: 60, Count: -3},
	}, nil)
	if len(s.rejected) == 0 {
		t.Fatal("the collector accepted the bad readings: the rejection panel would have no data")
	}
	// A record that is no reading, written past the collector: the cleaner dead-letters it.
	prod := stream.NewProducer(p.kafkaConn, stream.ProducerConfig{})
	defer prod.Close()
	if err := prod.Write(ctx, stream.Output{Topic: p.names.Readings, Key: []byte(p.topo.Intersections[0].ID), Value: []byte("not a reading")}); err != nil {
		t.Fatal(err)
	}
	p.waitPlans(ctx)

	checks, recorded := promChecks(t, root)
	// Poll until every check that must have data has it (series appear as the pipeline catches up and rates
	// need two scrapes), then report; stop well before ctx ends so that the report names what is missing.
	deadline := time.After(2 * time.Minute)
poll:
	for {
		ok := api.rulesHealthy(ctx) == nil
		for i := range checks {
			c := &checks[i]
			c.series, c.err = api.count(ctx, c.expr)
			ok = ok && c.err == "" && (c.series > 0 || c.mayBeEmpty)
		}
		if ok {
			break
		}
		select {
		case <-deadline:
			break poll
		case <-time.After(500 * time.Millisecond):
		}
	}
	var table strings.Builder
	failed := false
	for _, c := range checks {
		status := "ok"
		switch {
		case c.err != "":
			status, failed = "ERROR "+c.err, true
		case c.series == 0 && c.mayBeEmpty:
			status = "ok (alert not firing)"
		case c.series == 0:
			status, failed = "NO DATA", true
		}
		fmt.Fprintf(&table, "%-58s %6d  %-22s %s\n", clip(c.where, 58), c.series, status, c.expr)
	}
	t.Logf("Prometheus evaluation (%d recording rules, %d checks):\n%-58s %6s  %-22s %s\n%s", len(recorded), len(checks), "where", "series", "status", "expression", table.String())
	if err := api.rulesHealthy(ctx); err != nil {
		t.Error(err)
	}
	if failed {
		t.Error("some dashboard queries, rules or alert inputs returned no data or failed: see the table")
	}
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

// promAPI is a running prometheus's HTTP API.
type promAPI struct {
	base string
}

// startPrometheus writes a configuration scraping every service of p every second with the committed rules,
// starts prometheus on a free loopback port and waits until every target is up. It stops when the test ends.
func startPrometheus(ctx context.Context, t *testing.T, bin, root string, p *pipeline) *promAPI {
	t.Helper()
	dir := t.TempDir()
	var targets strings.Builder
	for _, svc := range p.stack.Services() {
		fmt.Fprintf(&targets, "      - targets: [%q]\n        labels: {service: %s}\n", p.stack.Addrs(svc).HTTP, svc)
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - %q
scrape_configs:
  - job_name: greenwave
    metrics_path: /metrics
    static_configs:
%s`, filepath.Join(root, "deploy", "prometheus", "rules.yml"), targets.String())
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeLoopbackAddr(t)
	cmd := exec.Command(bin, "--config.file="+cfgFile, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = testWriter{t}, testWriter{t}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	api := &promAPI{base: "http://" + addr}
	want := len(p.stack.Services())
	for {
		up, err := api.count(ctx, `up{job="greenwave"} == 1`)
		if err == "" && up == want {
			return api
		}
		select {
		case err := <-exited:
			t.Fatalf("prometheus exited: %v", err)
		case <-ctx.Done():
			t.Fatalf("%d of %d services up in prometheus (%s)", up, want, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// freeLoopbackAddr returns a loopback address with a port free at the time of the call.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// get decodes the data of a Prometheus API answer into v.
func (a *promAPI) get(ctx context.Context, path string, query url.Values, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+path+"?"+query.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var body struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return fmt.Errorf("decode %s: %s: %w", path, resp.Status, err)
	}
	if body.Status != "success" {
		return fmt.Errorf("%s: %s", resp.Status, body.Error)
	}
	return json.Unmarshal(body.Data, v)
}

// count runs an instant query and returns how many series it returned, or why it failed.
func (a *promAPI) count(ctx context.Context, expr string) (int, string) {
	var data struct {
		ResultType string            `json:"resultType"`
		Result     []json.RawMessage `json:"result"`
	}
	if err := a.get(ctx, "/api/v1/query", url.Values{"query": {expr}}, &data); err != nil {
		return 0, err.Error()
	}
	if data.ResultType != "vector" {
		return 0, "result type " + data.ResultType + ", want a vector"
	}
	return len(data.Result), ""
}

// rulesHealthy checks that the rule groups are loaded and that every rule's last evaluation succeeded.
func (a *promAPI) rulesHealthy(ctx context.Context) error {
	var data struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Name      string `json:"name"`
				Health    string `json:"health"`
				LastError string `json:"lastError"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := a.get(ctx, "/api/v1/rules", nil, &data); err != nil {
		return fmt.Errorf("rules: %w", err)
	}
	if len(data.Groups) == 0 {
		return errors.New("rules: prometheus loaded no rule group")
	}
	var bad []string
	for _, g := range data.Groups {
		for _, r := range g.Rules {
			if r.Health != "ok" {
				bad = append(bad, fmt.Sprintf("%s/%s: health %q %s", g.Name, r.Name, r.Health, r.LastError))
			}
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("rules not healthy: %s", strings.Join(bad, "; "))
	}
	return nil
}

var (
	// grafanaRange is Grafana's built-in range variables; the evaluation uses one minute (60 scrapes).
	grafanaRange = regexp.MustCompile(`\$\{?__(?:rate_interval|interval|range)\}?`)
	// grafanaVar is a dashboard variable reference; every variable of the dashboard stands for "All" (".*").
	grafanaVar = regexp.MustCompile(`\$\{[A-Za-z_]\w*(?::\w+)?\}|\$[A-Za-z_]\w*`)
	// labelValues is Grafana's label_values(selector, label), evaluated as count by (label) (selector).
	labelValues = regexp.MustCompile(`^\s*label_values\(\s*(.*?)\s*,\s*(\w+)\s*\)\s*$`)
	// exporterRef finds what only the Kafka exporter provides.
	exporterRef = regexp.MustCompile(`\bkafka_[A-Za-z0-9_]*|job="kafka"`)
)

// grafanaExpr turns a dashboard query into PromQL Prometheus can run.
func grafanaExpr(expr string) string {
	if m := labelValues.FindStringSubmatch(expr); m != nil {
		expr = fmt.Sprintf("count by (%s) (%s)", m[2], m[1])
	}
	expr = grafanaRange.ReplaceAllString(expr, "1m")
	return grafanaVar.ReplaceAllString(expr, ".*")
}

// promChecks lists what the evaluation runs: every dashboard target and query variable (targets that need the
// Kafka exporter left out), every recording rule's expression and recorded series, every alert's expression
// (which may be empty), and every metric an alert reads.
func promChecks(t *testing.T, root string) (checks []promCheck, recorded []string) {
	t.Helper()
	dashboards, err := filepath.Glob(filepath.Join(root, "deploy", "grafana", "dashboards", "*.json"))
	if err != nil || len(dashboards) == 0 {
		t.Fatalf("no dashboards under deploy/grafana/dashboards (%v)", err)
	}
	for _, path := range dashboards {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboardModel
		if err := json.Unmarshal(data, &d); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		var walk func(ps []dashboardPanel)
		walk = func(ps []dashboardPanel) {
			for _, p := range ps {
				for _, tg := range p.Targets {
					if tg.Expr == "" || exporterRef.MatchString(tg.Expr) {
						continue
					}
					checks = append(checks, promCheck{where: fmt.Sprintf("panel %q %s", p.Title, tg.RefID), expr: grafanaExpr(tg.Expr)})
				}
				walk(p.Panels)
			}
		}
		walk(d.Panels)
		for _, v := range d.Templating.List {
			if v.Type == "query" {
				if v.Definition == "" {
					t.Fatalf("%s: query variable %q has no definition to evaluate", path, v.Name)
				}
				checks = append(checks, promCheck{where: fmt.Sprintf("variable $%s", v.Name), expr: grafanaExpr(v.Definition)})
			}
		}
	}
	data, err := os.ReadFile(filepath.Join(root, "deploy", "prometheus", "rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Record string `yaml:"record"`
				Alert  string `yaml:"alert"`
				Expr   string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(data, &rules); err != nil {
		t.Fatalf("rules.yml: %v", err)
	}
	inputs := map[string]bool{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				recorded = append(recorded, r.Record)
				checks = append(checks,
					promCheck{where: "record " + r.Record, expr: r.Expr},
					promCheck{where: "recorded series " + r.Record, expr: r.Record})
			}
		}
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			checks = append(checks, promCheck{where: "alert " + r.Alert, expr: r.Expr, mayBeEmpty: true})
			for _, name := range alertInputs(r.Expr, recorded) {
				inputs[name] = true
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(inputs)) {
		checks = append(checks, promCheck{where: "alert input " + name, expr: name})
	}
	return checks, recorded
}

// alertInputs returns the series an alert expression reads and the test can provide: recorded series,
// Greenwave, Go and process metrics, and the greenwave job's up; the exporter's series are left out.
func alertInputs(expr string, recorded []string) []string {
	var out []string
	for _, r := range recorded {
		if strings.Contains(expr, r) {
			out = append(out, r)
			expr = strings.ReplaceAll(expr, r, "")
		}
	}
	out = append(out, metricRef.FindAllString(expr, -1)...)
	if strings.Contains(expr, `up{job="greenwave"}`) {
		out = append(out, `up{job="greenwave"}`)
	}
	return out
}

// dashboardModel is the part of a Grafana dashboard that holds queries.
type dashboardModel struct {
	Panels     []dashboardPanel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

type dashboardPanel struct {
	Title   string           `json:"title"`
	Panels  []dashboardPanel `json:"panels"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
}
