package check

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"
)

// Query is one PromQL expression found in a dashboard or rule file, with where it was found.
type Query struct {
	// Where names the panel ("panel \"Ingest rate\" target A"), template variable or rule.
	Where string
	// Expr is the expression as written (Grafana variables not yet substituted).
	Expr string
}

// dashboard is the part of a Grafana dashboard model that holds queries. Rows nest panels one level deep.
type dashboard struct {
	Title      string  `json:"title"`
	UID        string  `json:"uid"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	Title   string  `json:"title"`
	Type    string  `json:"type"`
	Panels  []panel `json:"panels"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
}

// DashboardQueries decodes a Grafana dashboard JSON model and returns every PromQL query in it: panel targets
// (rows included) and query-type template variables.
func DashboardQueries(data []byte) ([]Query, error) {
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("decode dashboard: %w", err)
	}
	if d.UID == "" || d.Title == "" {
		return nil, fmt.Errorf("decode dashboard: uid and title are required (provisioning keys dashboards by uid)")
	}
	var out []Query
	var walk func(ps []panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, t := range p.Targets {
				if t.Expr != "" {
					out = append(out, Query{Where: fmt.Sprintf("panel %q target %s", p.Title, t.RefID), Expr: t.Expr})
				}
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" || len(v.Query) == 0 {
			continue
		}
		q, err := templateQuery(v.Query)
		if err != nil {
			return nil, fmt.Errorf("decode dashboard: variable %q: %w", v.Name, err)
		}
		if q == "" {
			// A null or empty query (as a re-saved dashboard may hold) is no query, like an absent one.
			continue
		}
		out = append(out, Query{Where: fmt.Sprintf("variable %q", v.Name), Expr: q})
	}
	return out, nil
}

// templateQuery reads a template variable's query, which Grafana stores either as a string or as an object
// with a "query" field depending on the version that saved the dashboard.
func templateQuery(raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var o struct {
		Query string `json:"query"`
	}
	if err := json.Unmarshal(raw, &o); err != nil {
		return "", fmt.Errorf("query is neither a string nor an object with a query: %w", err)
	}
	return o.Query, nil
}

// ruleFile is the part of a Prometheus rule file that holds expressions.
type ruleFile struct {
	Groups []struct {
		Name     string `json:"name"`
		Interval string `json:"interval"`
		Limit    int    `json:"limit"`
		Rules    []struct {
			Alert         string            `json:"alert"`
			Record        string            `json:"record"`
			Expr          string            `json:"expr"`
			For           string            `json:"for"`
			KeepFiringFor string            `json:"keep_firing_for"`
			Labels        map[string]string `json:"labels"`
			Annotations   map[string]string `json:"annotations"`
		} `json:"rules"`
	} `json:"groups"`
}

// RuleQueries decodes a Prometheus rule file and returns every rule's expression. It also returns the names
// that recording rules define, which other queries may use as if they were exported metrics.
func RuleQueries(data []byte) (queries []Query, recorded []string, err error) {
	var f ruleFile
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		return nil, nil, fmt.Errorf("decode rules: %w", err)
	}
	for _, g := range f.Groups {
		for i, r := range g.Rules {
			name := r.Alert
			if r.Record != "" {
				name = r.Record
				recorded = append(recorded, r.Record)
			}
			if name == "" || r.Expr == "" {
				return nil, nil, fmt.Errorf("decode rules: group %q rule %d needs a name (alert or record) and an expr", g.Name, i)
			}
			queries = append(queries, Query{Where: fmt.Sprintf("rule %q in group %q", name, g.Name), Expr: r.Expr})
		}
	}
	return queries, recorded, nil
}

var (
	// labelValues is Grafana's template function label_values(metric, label) (or label_values(label)); it is
	// not PromQL, so its metric selector is parsed on its own.
	labelValues = regexp.MustCompile(`^\s*label_values\(\s*(.*?)\s*,\s*\w+\s*\)\s*$`)
	// grafanaRange matches Grafana's built-in range variables, which stand for durations.
	grafanaRange = regexp.MustCompile(`\$\{?__(?:rate_interval|interval|range)\}?`)
	// grafanaVar matches a dashboard variable reference ($name or ${name} or ${name:format}).
	grafanaVar = regexp.MustCompile(`\$\{[A-Za-z_]\w*(?::\w+)?\}|\$[A-Za-z_]\w*`)
)

// MetricNames parses a PromQL expression (after substituting Grafana variables: range variables by a duration,
// others by a placeholder, so "$intersection" inside a label matcher stays a valid string) and returns the
// metric names it selects, sorted and without duplicates.
func MetricNames(expr string) ([]string, error) {
	if m := labelValues.FindStringSubmatch(expr); m != nil {
		expr = m[1]
	}
	expr = grafanaRange.ReplaceAllString(expr, "5m")
	expr = grafanaVar.ReplaceAllString(expr, "grafana_var")
	node, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return nil, fmt.Errorf("parse PromQL %q: %w", expr, err)
	}
	seen := map[string]bool{}
	parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			name := vs.Name
			if name == "" {
				for _, m := range vs.LabelMatchers {
					if m.Name == "__name__" {
						name = m.Value
					}
				}
			}
			if name != "" {
				seen[name] = true
			}
		}
		return nil
	})
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

// UnknownMetrics returns, for each query, the metric names it uses that known does not contain and that no
// allowed prefix covers ("kafka_" for the Kafka exporter, say), as "where: name" lines. A query that does not
// parse is reported too.
func UnknownMetrics(queries []Query, known map[string]bool, allowedPrefixes ...string) []string {
	var problems []string
	for _, q := range queries {
		names, err := MetricNames(q.Expr)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", q.Where, err))
			continue
		}
	name:
		for _, n := range names {
			if known[n] {
				continue
			}
			for _, p := range allowedPrefixes {
				if strings.HasPrefix(n, p) {
					continue name
				}
			}
			problems = append(problems, fmt.Sprintf("%s: metric %s is not exported by any service", q.Where, n))
		}
	}
	return problems
}

// ExportedSeriesNames maps an exported metric family to the series names Prometheus stores for it: a histogram
// "x" is queried as x_bucket, x_sum and x_count. A name without a known type is taken as it is; the family
// itself is kept so that a dashboard querying "x" (say, in histogram_quantile over native histograms) passes.
func ExportedSeriesNames(families []string) map[string]bool {
	out := make(map[string]bool, 3*len(families))
	for _, f := range families {
		out[f] = true
		out[f+"_bucket"] = true
		out[f+"_sum"] = true
		out[f+"_count"] = true
	}
	return out
}
