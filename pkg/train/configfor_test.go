package train

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestAutoHorizons(t *testing.T) {
	t.Parallel()
	const m, h = time.Minute, time.Hour
	for _, tc := range []struct {
		windowS int
		want    []time.Duration
	}{
		{60, []time.Duration{15 * m, 30 * m, h}},
		{300, []time.Duration{15 * m, 30 * m, h}},
		{900, []time.Duration{15 * m, 30 * m, h}},
		{1200, []time.Duration{h}},
		{1800, []time.Duration{30 * m, h}},
		{3600, []time.Duration{h}},
		{7200, []time.Duration{2 * h}},
		{86400, []time.Duration{24 * h}},
		{0, nil},
	} {
		if got := AutoHorizons(tc.windowS); !slices.Equal(got, tc.want) {
			t.Errorf("AutoHorizons(%d) = %v, want %v", tc.windowS, got, tc.want)
		}
	}
}

func TestConfigFor(t *testing.T) {
	t.Parallel()
	t.Run("auto fits every valid window", func(t *testing.T) {
		for _, ws := range []int{1, 60, 300, 900, 1200, 3600, 7200, 3 * 3600, 86400, week} {
			c, err := ConfigFor(BaseConfig(), ws)
			if err != nil {
				t.Fatalf("window %d: %v", ws, err)
			}
			if c.WindowS != ws || !slices.Equal(c.Horizons, AutoHorizons(ws)) {
				t.Fatalf("window %d: got window %d horizons %v", ws, c.WindowS, c.Horizons)
			}
		}
	})
	t.Run("given horizons are kept", func(t *testing.T) {
		base := BaseConfig()
		base.Horizons = []time.Duration{2 * time.Hour, time.Hour}
		c, err := ConfigFor(base, 3600)
		if err != nil || !slices.Equal(c.Horizons, base.Horizons) {
			t.Fatalf("got %v, %v", c.Horizons, err)
		}
		c.Horizons[0] = 0
		if base.Horizons[0] != 2*time.Hour {
			t.Fatal("ConfigFor shares the base's horizons")
		}
	})
	t.Run("given horizons that do not fit", func(t *testing.T) {
		base := BaseConfig()
		base.Horizons = []time.Duration{15 * time.Minute, time.Hour}
		_, err := ConfigFor(base, 3600)
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "horizon 15m0s not a multiple of the 3600 s window") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("max pending covers the longest horizon", func(t *testing.T) {
		base := BaseConfig()
		base.Horizons = []time.Duration{2 * time.Hour}
		c, err := ConfigFor(base, 60)
		if err != nil || c.MaxPending != 120 {
			t.Fatalf("max pending %d, %v; want 120", c.MaxPending, err)
		}
		if c, _ := ConfigFor(BaseConfig(), 300); c.MaxPending != DefaultConfig().MaxPending {
			t.Fatalf("max pending %d changed for short horizons", c.MaxPending)
		}
	})
	t.Run("bad window", func(t *testing.T) {
		for _, ws := range []int{0, -300, 7, 5400} {
			if _, err := ConfigFor(BaseConfig(), ws); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("window %d: err %v", ws, err)
			}
			if err := CheckWindow(ws); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("CheckWindow(%d): %v", ws, err)
			}
		}
	})
	t.Run("the default configuration is the base fitted to 300 s windows", func(t *testing.T) {
		c, err := ConfigFor(BaseConfig(), 300)
		d := DefaultConfig()
		if err != nil || c.WindowS != d.WindowS || !slices.Equal(c.Horizons, d.Horizons) || c.MaxPending != d.MaxPending {
			t.Fatalf("got %+v, %v", c, err)
		}
	})
}

func TestParseHorizons(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in      []string
		want    []time.Duration
		wantErr bool
	}{
		{in: []string{"auto"}},
		{in: []string{"AUTO"}},
		{in: nil},
		{in: []string{""}},
		{in: []string{"15m", " 1h"}, want: []time.Duration{15 * time.Minute, time.Hour}},
		{in: []string{"auto", "15m"}, wantErr: true},
		{in: []string{"soon"}, wantErr: true},
		{in: []string{"0s"}, wantErr: true},
		{in: []string{"1500ms"}, wantErr: true},
	} {
		got, err := ParseHorizons("X_HORIZONS", tc.in)
		if (err != nil) != tc.wantErr || !slices.Equal(got, tc.want) {
			t.Errorf("ParseHorizons(%q) = %v, %v", tc.in, got, err)
		}
		if err != nil && !strings.Contains(err.Error(), "X_HORIZONS") {
			t.Errorf("error %v does not name the setting", err)
		}
	}
	if got := FormatHorizons([]time.Duration{15 * time.Minute, time.Hour, 90 * time.Second}); got != "15m,1h,1m30s" {
		t.Errorf("FormatHorizons = %q", got)
	}
	if got := FormatHorizons(nil); got != "auto" {
		t.Errorf("FormatHorizons(nil) = %q", got)
	}
}

func TestValidateBase(t *testing.T) {
	t.Parallel()
	if err := BaseConfig().ValidateBase(); err != nil {
		t.Fatal(err)
	}
	c := BaseConfig()
	c.Horizons = []time.Duration{7 * time.Minute, 7 * time.Minute, 200 * time.Hour, 1500 * time.Millisecond}
	c.RecentWindow = 0
	err := c.ValidateBase()
	for _, want := range []string{"repeated", "168h", "whole number of seconds", "recent window"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err %v, want it to contain %q", err, want)
		}
	}
}
