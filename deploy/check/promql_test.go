package check

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func TestMetricNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, expr string
		want       []string
		wantErr    bool
	}{
		{"rate with grafana interval", `sum by (kind) (rate(greenwave_collector_accepted_total[$__rate_interval]))`, []string{"greenwave_collector_accepted_total"}, false},
		{"histogram quantile", `histogram_quantile(0.99, sum by (le) (rate(greenwave_predictor_latency_seconds_bucket[5m])))`, []string{"greenwave_predictor_latency_seconds_bucket"}, false},
		{"variable in matcher", `min by (detector) (greenwave_cleaner_detector_health_score{intersection=~"$intersection"})`, []string{"greenwave_cleaner_detector_health_score"}, false},
		{"braced variable", `x{a="${intersection:regex}"}`, []string{"x"}, false},
		{"binary and vector()", `count(a < 0.5) or vector(0) + b`, []string{"a", "b"}, false},
		{"__name__ matcher", `{__name__="greenwave_signal_watchers"}`, []string{"greenwave_signal_watchers"}, false},
		{"label_values", `label_values(greenwave_cleaner_detector_health_score, intersection)`, []string{"greenwave_cleaner_detector_health_score"}, false},
		{"duplicates once", `a / a`, []string{"a"}, false},
		{"syntax error", `sum(rate(x[5m])`, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := MetricNames(tt.expr)
			if (err != nil) != tt.wantErr {
				t.Fatalf("MetricNames(%q) error %v, want error %v", tt.expr, err, tt.wantErr)
			}
			if !tt.wantErr && !slices.Equal(got, tt.want) {
				t.Fatalf("MetricNames(%q) = %v, want %v", tt.expr, got, tt.want)
			}
		})
	}
}

func TestUnknownMetrics(t *testing.T) {
	t.Parallel()
	known := ExportedSeriesNames([]string{"greenwave_x_seconds", "greenwave_y_total"})
	qs := []Query{
		{Where: "ok", Expr: `histogram_quantile(0.5, rate(greenwave_x_seconds_bucket[5m])) + rate(greenwave_y_total[1m])`},
		{Where: "exporter", Expr: `kafka_consumergroup_lag`},
		{Where: "typo", Expr: `rate(greenwave_y_totl[1m])`},
		{Where: "broken", Expr: `rate(`},
	}
	got := UnknownMetrics(qs, known, "kafka_")
	if len(got) != 2 || !strings.Contains(got[0], "typo: metric greenwave_y_totl") || !strings.HasPrefix(got[1], "broken:") {
		t.Fatalf("UnknownMetrics = %q", got)
	}
}

func TestDashboardQueries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, wantErr string
		want              int
	}{
		{"panels, rows and variables", `{"uid":"u","title":"t","panels":[{"title":"a","targets":[{"refId":"A","expr":"x"}]},
			{"type":"row","panels":[{"title":"b","targets":[{"refId":"A","expr":"y"},{"refId":"B","expr":""}]}]}],
			"templating":{"list":[{"name":"v","type":"query","query":{"query":"label_values(z, l)"}},{"name":"w","type":"query","query":"label_values(q, l)"},{"name":"c","type":"custom","query":"a,b"}]}}`, "", 4},
		{"no uid", `{"title":"t"}`, "uid and title", 0},
		{"bad variable query", `{"uid":"u","title":"t","templating":{"list":[{"name":"v","type":"query","query":3}]}}`, "variable \"v\"", 0},
		{"not json", `<html>`, "decode dashboard", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := DashboardQueries([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || len(got) != tt.want {
				t.Fatalf("DashboardQueries = %v, %v; want %d queries", got, err, tt.want)
			}
		})
	}
}

func TestRuleQueries(t *testing.T) {
	t.Parallel()
	qs, recorded, err := RuleQueries([]byte("groups:\n- name: g\n  rules:\n  - record: job:x:rate5m\n    expr: rate(x[5m])\n  - alert: A\n    expr: job:x:rate5m > 1\n"))
	if err != nil || len(qs) != 2 || !slices.Equal(recorded, []string{"job:x:rate5m"}) {
		t.Fatalf("RuleQueries = %v, %v, %v", qs, recorded, err)
	}
	if _, _, err := RuleQueries([]byte("groups:\n- name: g\n  rules:\n  - expr: x\n")); err == nil {
		t.Fatal("a rule without a name was accepted")
	}
	if _, _, err := RuleQueries([]byte("groups:\n- name: g\n  rulez: []\n")); err == nil {
		t.Fatal("an unknown field was accepted")
	}
}

// TestCommittedQueriesParse checks the committed dashboard and rules: every query parses, and every metric is a
// Greenwave metric (greenwave_*), a Go or process collector metric, the exporter's kafka_*, Prometheus's own
// up or a series a recording rule defines. That each greenwave_* name is really exported is checked against running services by
// cmd/greenwave/internal/e2e (TestDashboardMetricsAreExported).
func TestCommittedQueriesParse(t *testing.T) {
	t.Parallel()
	dash, err := DashboardQueries(readRepoFile(t, "deploy/grafana/dashboards/greenwave.json"))
	if err != nil {
		t.Fatal(err)
	}
	rules, recorded, err := RuleQueries(readRepoFile(t, "deploy/prometheus/rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(dash) < 10 || len(rules) == 0 {
		t.Fatalf("%d dashboard queries and %d rules: the files lost their content", len(dash), len(rules))
	}
	// Series the recording rules define may be queried like exported ones.
	known := map[string]bool{"up": true}
	for _, r := range recorded {
		known[r] = true
	}
	for _, p := range UnknownMetrics(append(dash, rules...), known, "greenwave_", "go_", "process_", "kafka_") {
		t.Error(p)
	}
}

func FuzzDashboardQueries(f *testing.F) {
	f.Add([]byte(`{"uid":"u","title":"t","panels":[{"title":"a","targets":[{"refId":"A","expr":"rate(x[5m])"}]}]}`))
	f.Add([]byte(`{"uid":"u","title":"t","templating":{"list":[{"name":"v","type":"query","query":{"query":"label_values(z, l)"}}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		qs, err := DashboardQueries(data)
		if err != nil {
			return
		}
		// The dashboard re-encoded from what was decoded yields the same queries.
		var d dashboard
		if err := json.Unmarshal(data, &d); err != nil {
			t.Fatalf("accepted dashboard does not decode: %v", err)
		}
		again, err := json.Marshal(d)
		if err != nil {
			t.Fatalf("decoded dashboard does not encode: %v", err)
		}
		checkQueries(t, data, qs, again, func(b []byte) ([]Query, error) { return DashboardQueries(b) })
	})
}

func FuzzRuleQueries(f *testing.F) {
	f.Add([]byte("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		qs, recorded, err := RuleQueries(data)
		if err != nil {
			return
		}
		if len(recorded) > len(qs) {
			t.Fatalf("%d recorded names from %d rules", len(recorded), len(qs))
		}
		// The rule file re-encoded from what was decoded yields the same queries.
		var rf ruleFile
		if err := yaml.Unmarshal(data, &rf); err != nil {
			t.Fatalf("accepted rules do not decode: %v", err)
		}
		again, err := yaml.Marshal(rf)
		if err != nil {
			t.Fatalf("decoded rules do not encode: %v", err)
		}
		checkQueries(t, data, qs, again, func(b []byte) ([]Query, error) {
			qs, _, err := RuleQueries(b)
			return qs, err
		})
	})
}

// checkQueries checks the queries decoded from data: each names its place and has an expression, the
// re-encoded input decodes to the same queries, and finding their metrics does not panic.
func checkQueries(t *testing.T, data []byte, qs []Query, again []byte, decode func([]byte) ([]Query, error)) {
	t.Helper()
	for _, q := range qs {
		if q.Where == "" || q.Expr == "" {
			t.Fatalf("query %+v from %q", q, data)
		}
	}
	qs2, err := decode(again)
	if err != nil || !reflect.DeepEqual(qs, qs2) {
		t.Fatalf("round trip of %q through %q: %v, %v; want %v", data, again, qs2, err, qs)
	}
	UnknownMetrics(qs, nil)
}
