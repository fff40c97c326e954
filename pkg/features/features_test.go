package features

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestNames(t *testing.T) {
	t.Parallel()
	n := Names()
	if len(n) != NumFeatures {
		t.Fatalf("%d names, NumFeatures %d", len(n), NumFeatures)
	}
	seen := map[string]bool{}
	for _, s := range n {
		if seen[s] || s == "" || strings.ContainsAny(s, " \t") {
			t.Errorf("bad or duplicate name %q", s)
		}
		seen[s] = true
	}
	// Version 2 appends to version 1 (the first 33 keep their index, the upstream flow pair follows), and
	// version 3 to version 2 (the upstream occupancy and speed pairs come last).
	if NumFeatures != 39 || n[32] != "weather_missing" || n[33] != "upstream_flow_ratio_lag1" || n[34] != "upstream_lag1_present" ||
		n[35] != "upstream_occupancy_lag1" || n[36] != "upstream_occupancy_present" || n[37] != "upstream_speed_ratio_lag1" || n[38] != "upstream_speed_present" {
		t.Errorf("feature set %d: %d names, last %q", SetVersion, NumFeatures, n[len(n)-3:])
	}
	n[0] = "changed"
	if Names()[0] != "bias" {
		t.Fatal("Names returned the package's own slice")
	}
}

func TestBuild(t *testing.T) {
	t.Parallel()
	idx := map[string]int{}
	for i, n := range Names() {
		idx[n] = i
	}
	monday8 := time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)
	full := Input{
		LocalStart: monday8, CapacityVPH: 3600,
		Observed:        Observed{FlowVPH: 1800, Occupancy: 0.2, HasOccupancy: true, SpeedKMH: 50, HasSpeed: true},
		ImputedFraction: 0.25,
		Lag1:            Lag{0.4, true}, Lag3: Lag{0.3, true}, LastWeek: Lag{0.45, true},
		Upstream: Lag{0.35, true}, UpstreamOccupancy: Past{0.15, true}, UpstreamSpeedRatio: Past{0.42, true},
		Holiday: true,
		Weather: WeatherContext{PrecipitationMMH: math.E - 1, HasPrecipitation: true, TemperatureC: -20, HasTemperature: true,
			VisibilityM: 5000, HasVisibility: true},
	}
	cases := []struct {
		name string
		in   Input
		want map[string]float64
	}{
		{"full", full, map[string]float64{
			"bias": 1, "flow_ratio": 0.5, "gap": 0, "imputed_fraction": 0.25, "occupancy": 0.2, "occupancy_present": 1,
			"speed_ratio": 0.5, "speed_present": 1, "flow_ratio_lag1": 0.4, "lag1_present": 1, "flow_ratio_lag2": 0,
			"lag2_present": 0, "flow_ratio_lag3": 0.3, "flow_ratio_yesterday": 0, "yesterday_present": 0,
			"flow_ratio_last_week": 0.45, "last_week_present": 1, "tod_sin": math.Sin(2 * math.Pi / 3),
			"tod_cos": math.Cos(2 * math.Pi / 3), "weekend": 0, "holiday": 1, "precip_log1p": 1, "precip_present": 1,
			"snow_present": 0, "temperature_scaled": -0.5, "temperature_present": 1, "visibility_ratio": 0.5,
			"visibility_present": 1, "weather_missing": 0, "upstream_flow_ratio_lag1": 0.35, "upstream_lag1_present": 1,
			"upstream_occupancy_lag1": 0.15, "upstream_occupancy_present": 1, "upstream_speed_ratio_lag1": 0.42, "upstream_speed_present": 1,
		}},
		{"upstream occupancy and speed absent", Input{LocalStart: monday8, CapacityVPH: 3600, Upstream: Lag{0.3, true},
			UpstreamOccupancy: Past{Value: 0.4}, UpstreamSpeedRatio: Past{Value: 0.5}},
			map[string]float64{"upstream_lag1_present": 1, "upstream_occupancy_lag1": 0, "upstream_occupancy_present": 0,
				"upstream_speed_ratio_lag1": 0, "upstream_speed_present": 0}},
		{"upstream speed without flow or occupancy", Input{LocalStart: monday8, CapacityVPH: 3600, UpstreamSpeedRatio: Past{0.9, true}},
			map[string]float64{"upstream_lag1_present": 0, "upstream_occupancy_present": 0, "upstream_speed_ratio_lag1": 0.9, "upstream_speed_present": 1}},
		{"upstream occupancy beside a gap", Input{LocalStart: monday8, CapacityVPH: 3600, Gap: true, UpstreamOccupancy: Past{0.25, true}},
			map[string]float64{"gap": 1, "occupancy_present": 0, "upstream_occupancy_lag1": 0.25, "upstream_occupancy_present": 1}},
		{"upstream absent", Input{LocalStart: monday8, CapacityVPH: 3600, Upstream: Lag{FlowRatio: 0.7}},
			map[string]float64{"upstream_flow_ratio_lag1": 0, "upstream_lag1_present": 0}},
		{"upstream known as zero", Input{LocalStart: monday8, CapacityVPH: 3600, Upstream: Lag{OK: true}},
			map[string]float64{"upstream_flow_ratio_lag1": 0, "upstream_lag1_present": 1}},
		{"upstream beside a gap", Input{LocalStart: monday8, CapacityVPH: 3600, Gap: true, Upstream: Lag{0.2, true}},
			map[string]float64{"flow_ratio": 0, "gap": 1, "upstream_flow_ratio_lag1": 0.2, "upstream_lag1_present": 1}},
		{"speed without flow", Input{LocalStart: monday8, CapacityVPH: 3600, Lag1: Lag{0.3, true},
			Observed: Observed{NoFlow: true, FlowVPH: 999, SpeedKMH: 88, HasSpeed: true}},
			map[string]float64{"flow_ratio": 0, "gap": 1, "speed_ratio": 0.88, "speed_present": 1, "flow_ratio_lag1": 0.3, "lag1_present": 1}},
		{"gap and missing weather", Input{LocalStart: monday8.Add(5 * 24 * time.Hour), CapacityVPH: 3600, Gap: true,
			Observed: Observed{FlowVPH: 999, HasOccupancy: true, Occupancy: 0.5}, Weather: WeatherContext{Missing: true, HasTemperature: true, TemperatureC: 30}},
			map[string]float64{"flow_ratio": 0, "gap": 1, "occupancy": 0, "occupancy_present": 0, "weekend": 1,
				"temperature_scaled": 0, "temperature_present": 0, "weather_missing": 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := Build(tc.in)
			for name, want := range tc.want {
				if got := v[idx[name]]; math.Abs(got-want) > 1e-12 {
					t.Errorf("%s = %v, want %v", name, got, want)
				}
			}
			for i, x := range v {
				if math.IsNaN(x) || math.IsInf(x, 0) {
					t.Errorf("%s not finite", Names()[i])
				}
			}
		})
	}
	t.Run("BuildInto clears", func(t *testing.T) {
		t.Parallel()
		v := Build(full)
		BuildInto(v, Input{LocalStart: monday8, CapacityVPH: 1, Weather: WeatherContext{Missing: true}})
		if v[idx["flow_ratio_lag1"]] != 0 || v[idx["holiday"]] != 0 || v[idx["upstream_lag1_present"]] != 0 ||
			v[idx["upstream_occupancy_present"]] != 0 || v[idx["upstream_speed_ratio_lag1"]] != 0 {
			t.Fatal("stale values left behind")
		}
	})
}

func TestEventID(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 2, 8, 5, 0, 0, time.FixedZone("x", 3600))
	if got := EventID("I-100", at); got != "I-100/2026-11-02T07:05:00Z" {
		t.Fatalf("EventID = %q", got)
	}
}
