package topics

import (
	"strconv"
	"testing"
)

// TestSpecConfig checks the configs every topic is created with: compacted topics keep the latest record per key
// for good (retention.ms=-1, which brokers such as kfake would otherwise apply to them too), deleting topics expire
// by their retention.
func TestSpecConfig(t *testing.T) {
	t.Parallel()
	for _, s := range Specs(DefaultNames(""), 3) {
		t.Run(s.Name, func(t *testing.T) {
			t.Parallel()
			got := map[string]string{}
			for _, e := range s.config().ConfigEntries {
				got[e.ConfigName] = e.ConfigValue
			}
			want := map[string]string{"cleanup.policy": "delete", "retention.ms": strconv.FormatInt(s.Retention.Milliseconds(), 10)}
			if s.Compact {
				want = map[string]string{"cleanup.policy": "compact", "min.compaction.lag.ms": "60000", "retention.ms": "-1"}
			}
			if len(got) != len(want) {
				t.Errorf("configs %v, want %v", got, want)
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

func TestCheckCoPartitioned(t *testing.T) {
	t.Parallel()
	n := DefaultNames("")
	specs := Specs(n, 0)
	for _, tt := range []struct {
		name    string
		counts  map[string]int
		wantErr bool
	}{
		{"agree", map[string]int{n.Readings: 3, n.CleanerState: 3, n.Features: 3}, false},
		{"weather is free", map[string]int{n.Readings: 3, n.Weather: 1}, false},
		{"changelog differs", map[string]int{n.Readings: 3, n.CleanerState: 2}, true},
		{"unknown topics ignored", map[string]int{n.Readings: 3, "other": 2}, false},
	} {
		if err := CheckCoPartitioned(specs, tt.counts); (err != nil) != tt.wantErr {
			t.Errorf("%s: CheckCoPartitioned = %v, want error %v", tt.name, err, tt.wantErr)
		}
	}
}
