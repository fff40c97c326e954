// Package apptest helps the services test how they load their configuration with app.Load.
package apptest

import (
	"strings"
	"testing"

	"github.com/greenwave-city/greenwave/pkg/app"
)

// CheckLoad loads cfg (a pointer to a service's Config) from env alone with app.Load. Without want the load
// must succeed; with want it must fail with an error that names every one of them.
func CheckLoad(t testing.TB, cfg any, env map[string]string, want ...string) {
	t.Helper()
	err := app.Load(cfg, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("load: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("accepted %v", env)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not name %s", err, w)
		}
	}
}
