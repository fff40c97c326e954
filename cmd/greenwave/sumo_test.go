package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/cli"
)

func TestSumoUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no scenario", []string{"--controller", "static"}, "--scenario is required"},
		{"no controller", []string{"--scenario", "grid3x3"}, "--controller"},
		{"unknown controller", []string{"--scenario", "grid3x3", "--controller", "scoot"}, `"scoot"`},
		{"negative end", []string{"--scenario", "grid3x3", "--controller", "static", "--end", "-1s"}, "--end"},
		{"fractional end", []string{"--scenario", "grid3x3", "--controller", "static", "--end", "1.5s"}, "--end"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(context.Background(), append([]string{"sumo"}, tt.args...), io.Discard, io.Discard)
			var ue *cli.UsageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want a usage error mentioning %s", err, tt.want)
			}
		})
	}
	if err := run(context.Background(), []string{"sumo", "-h"}, io.Discard, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
}

// TestSumoJSON runs five simulated minutes of grid3x3 under SUMO's static programs: the last line is the result.
func TestSumoJSON(t *testing.T) {
	if _, err := exec.LookPath("sumo"); err != nil {
		t.Skip("sumo is not on PATH (internal/sumo's tests honour GREENWAVE_REQUIRE_SUMO)")
	}
	var stdout bytes.Buffer
	if err := run(context.Background(), []string{"sumo", "--scenario", "grid3x3", "--controller", "static", "--end", "5m", "--json"}, &stdout, io.Discard); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var got map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &got); err != nil {
		t.Fatalf("last line %q: %v", lines[len(lines)-1], err)
	}
	for _, k := range []string{"scenario", "controller", "time_loss_s", "waiting_time_s", "duration_s", "stops", "fuel_ml", "co2_g", "completed", "inserted"} {
		if _, ok := got[k]; !ok {
			t.Errorf("no %q in %v", k, got)
		}
	}
	if len(got) != 10 || got["scenario"] != "grid3x3" || got["controller"] != "static" {
		t.Errorf("result %v", got)
	}
}
