package app

import (
	"regexp"
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Registry is the service's Prometheus registry. It also remembers the name and help of every metric registered
// — including labelled metrics that have no series yet — so operators' dashboards and alerts can be checked
// against what a service really exports (served on GET /debug/metrics).
type Registry struct {
	*prometheus.Registry
	mu    sync.Mutex
	names map[string]string
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{Registry: prometheus.NewRegistry(), names: map[string]string{}}
}

// descPattern reads fqName and help out of prometheus.Desc.String(), the only way the client exposes them.
var descPattern = regexp.MustCompile(`fqName: "([^"]*)", help: "((?:[^"\\]|\\.)*)"`)

func (r *Registry) remember(c prometheus.Collector) {
	ch := make(chan *prometheus.Desc, 16)
	go func() { c.Describe(ch); close(ch) }()
	r.mu.Lock()
	defer r.mu.Unlock()
	for d := range ch {
		if m := descPattern.FindStringSubmatch(d.String()); m != nil {
			r.names[m[1]] = m[2]
		}
	}
}

// Register implements prometheus.Registerer.
func (r *Registry) Register(c prometheus.Collector) error {
	if err := r.Registry.Register(c); err != nil {
		return err
	}
	r.remember(c)
	return nil
}

// MustRegister implements prometheus.Registerer.
func (r *Registry) MustRegister(cs ...prometheus.Collector) {
	r.Registry.MustRegister(cs...)
	for _, c := range cs {
		r.remember(c)
	}
}

// MetricInfo is a registered metric's name and help.
type MetricInfo struct {
	Name string `json:"name"`
	Help string `json:"help"`
}

// Metrics lists every registered metric, sorted by name.
func (r *Registry) Metrics() []MetricInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]MetricInfo, 0, len(r.names))
	for n, h := range r.names {
		out = append(out, MetricInfo{Name: n, Help: h})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
