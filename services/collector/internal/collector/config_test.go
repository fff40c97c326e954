package collector

import (
	"strings"
	"testing"

	"github.com/greenwave-city/greenwave/pkg/app"
)

func TestConfigRefusesUnauthenticatedStart(t *testing.T) {
	cases := []struct {
		name    string
		env     map[string]string
		refused bool
	}{
		{"neither", map[string]string{}, true},
		{"anonymous", map[string]string{"COLLECTOR_ALLOW_ANONYMOUS": "true"}, false},
		{"tokens", map[string]string{"COLLECTOR_TOKENS_FILE": "gateways.yaml"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var cfg Config
			err := app.Load(&cfg, func(k string) (string, bool) { v, ok := c.env[k]; return v, ok })
			if (err != nil) != c.refused {
				t.Fatalf("err = %v, want refused %v", err, c.refused)
			}
			if c.refused && (!strings.Contains(err.Error(), "COLLECTOR_TOKENS_FILE") || !strings.Contains(err.Error(), "COLLECTOR_ALLOW_ANONYMOUS=true")) {
				t.Errorf("refusal %q does not name both options", err)
			}
		})
	}
}
