package app

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestRegistryRemembersUnobservedMetrics(t *testing.T) {
	t.Parallel()
	r := NewRegistry()
	r.MustRegister(prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "greenwave", Name: "x_total", Help: `says "hi"`}, []string{"reason"}))
	if err := r.Register(prometheus.NewGauge(prometheus.GaugeOpts{Name: "y", Help: "y"})); err != nil {
		t.Fatal(err)
	}
	got := r.Metrics()
	if len(got) != 2 || got[0].Name != "greenwave_x_total" || got[0].Help != `says \"hi\"` || got[1].Name != "y" {
		t.Errorf("Metrics() = %+v", got)
	}
}
