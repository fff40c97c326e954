package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// metricRef finds the names of Greenwave, Go-runtime and process metrics in a PromQL expression. It is a token
// match, not a parser: deploy/check parses every expression with Prometheus's own parser and fails on any other
// metric prefix, so here it only has to find the names to compare with what the services export.
var metricRef = regexp.MustCompile(`\b(?:greenwave|go|process)_[A-Za-z0-9_:]*`)

// TestDashboardMetricsAreExported starts the five services and checks that every metric the Grafana dashboard
// (deploy/grafana/dashboards) and the Prometheus rules (deploy/prometheus/rules.yml) query is one a service
// registers, as GET /debug/metrics lists them (labelled metrics included before they have a series).
func TestDashboardMetricsAreExported(t *testing.T) {
	parallelStack(t)
	p := startPipeline(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	exported := map[string]bool{}
	for _, svc := range p.stack.Services() {
		names, err := debugMetrics(ctx, p.stack.Addrs(svc).HTTP)
		if err != nil {
			t.Fatalf("%s: %v", svc, err)
		}
		if len(names) == 0 {
			t.Fatalf("%s lists no metrics on /debug/metrics", svc)
		}
		for _, n := range names {
			// A histogram family x is stored by Prometheus as x_bucket, x_sum and x_count.
			for _, suffix := range []string{"", "_bucket", "_sum", "_count"} {
				exported[n+suffix] = true
			}
		}
	}
	queries, recorded := dashboardQueries(t)
	if len(queries) == 0 {
		t.Fatal("found no queries in the dashboard and rules")
	}
	var missing []string
	used := 0
	for where, exprs := range queries {
		for _, e := range exprs {
			// A recording rule's name (group:greenwave_x:sum) holds an exported name but is not one.
			for _, r := range recorded {
				e = strings.ReplaceAll(e, r, "")
			}
			for _, name := range metricRef.FindAllString(e, -1) {
				used++
				if !exported[name] {
					missing = append(missing, fmt.Sprintf("%s: %s", where, name))
				}
			}
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("%s is not exported by any service", m)
	}
	t.Logf("%d metric references in %d files checked against %d exported series names", used, len(queries), len(exported))
}

// debugMetrics reads a service's GET /debug/metrics (pkg/app.Registry): every registered metric's name and help.
func debugMetrics(ctx context.Context, addr string) ([]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/debug/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET /debug/metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /debug/metrics: %s", resp.Status)
	}
	var infos []struct {
		Name string `json:"name"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&infos); err != nil {
		return nil, fmt.Errorf("decode /debug/metrics: %w", err)
	}
	names := make([]string, 0, len(infos))
	for _, i := range infos {
		names = append(names, i.Name)
	}
	return names, nil
}

// dashboardQueries returns the PromQL of every dashboard target and query variable and every rule expression,
// keyed by file, and the names the recording rules define.
func dashboardQueries(t *testing.T) (queries map[string][]string, recorded []string) {
	t.Helper()
	root, _ := binaries(t)
	out := map[string][]string{}
	dashboards, err := filepath.Glob(filepath.Join(root, "deploy", "grafana", "dashboards", "*.json"))
	if err != nil || len(dashboards) == 0 {
		t.Fatalf("no dashboards under deploy/grafana/dashboards (%v)", err)
	}
	for _, path := range dashboards {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var model any
		if err := json.Unmarshal(data, &model); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		rel, _ := filepath.Rel(root, path)
		collectExprs(model, func(s string) { out[rel] = append(out[rel], s) })
	}
	rules, err := os.ReadFile(filepath.Join(root, "deploy", "prometheus", "rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(rules), "\n") {
		if _, expr, ok := strings.Cut(line, "expr:"); ok {
			out["deploy/prometheus/rules.yml"] = append(out["deploy/prometheus/rules.yml"], expr)
		}
		if _, name, ok := strings.Cut(line, "record:"); ok {
			recorded = append(recorded, strings.TrimSpace(name))
		}
	}
	return out, recorded
}

// collectExprs walks a dashboard model and reports every "expr" (panel targets) and every "query" string
// (template variables, in either of the shapes Grafana saves).
func collectExprs(v any, report func(string)) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && (k == "expr" || k == "query") {
				report(s)
				continue
			}
			collectExprs(x, report)
		}
	case []any:
		for _, x := range v {
			collectExprs(x, report)
		}
	}
}
