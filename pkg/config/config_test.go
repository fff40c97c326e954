package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

type inner struct {
	Addr string `env:"ADDR" default:"127.0.0.1:0" help:"listen address"`
}

type sample struct {
	Brokers []string      `env:"KAFKA_BROKERS" default:"a:1,b:2" help:"brokers"`
	Timeout time.Duration `env:"TIMEOUT" default:"10s" help:"timeout"`
	Workers int           `env:"WORKERS" default:"4" help:"workers"`
	Ratio   float64       `env:"RATIO" default:"0.5" help:"ratio"`
	Debug   bool          `env:"DEBUG" default:"false" help:"debug"`
	GRPC    inner         `prefix:"GRPC_"`
}

func (s *sample) Validate() []string {
	if s.Workers < 1 {
		return []string{"WORKERS must be at least 1"}
	}
	return nil
}

func mapLookup(m map[string]string) Lookup {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestLoad(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		env      map[string]string
		want     sample
		problems []string
	}{
		{
			name: "defaults",
			want: sample{Brokers: []string{"a:1", "b:2"}, Timeout: 10 * time.Second, Workers: 4, Ratio: 0.5, GRPC: inner{Addr: "127.0.0.1:0"}},
		},
		{
			name: "overrides",
			env:  map[string]string{"KAFKA_BROKERS": " x:9 ", "TIMEOUT": "1m", "WORKERS": "2", "DEBUG": "true", "GRPC_ADDR": ":9"},
			want: sample{Brokers: []string{"x:9"}, Timeout: time.Minute, Workers: 2, Ratio: 0.5, Debug: true, GRPC: inner{Addr: ":9"}},
		},
		{
			name:     "every problem reported",
			env:      map[string]string{"TIMEOUT": "soon", "WORKERS": "many", "RATIO": "x"},
			problems: []string{"TIMEOUT", "WORKERS", "RATIO"},
		},
		{
			name:     "validate runs",
			env:      map[string]string{"WORKERS": "0"},
			problems: []string{"WORKERS must be at least 1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got sample
			err := Load(&got, mapLookup(tt.env))
			if len(tt.problems) > 0 {
				var ce *Error
				if !errors.As(err, &ce) {
					t.Fatalf("Load() error = %v, want *Error", err)
				}
				if len(ce.Problems) != len(tt.problems) {
					t.Fatalf("problems = %q, want %d", ce.Problems, len(tt.problems))
				}
				for i, p := range tt.problems {
					if !strings.Contains(ce.Problems[i], p) {
						t.Errorf("problem %d = %q, want it to mention %q", i, ce.Problems[i], p)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Load() error = %v", err)
			}
			if strings.Join(got.Brokers, ",") != strings.Join(tt.want.Brokers, ",") || got.Timeout != tt.want.Timeout ||
				got.Workers != tt.want.Workers || got.Ratio != tt.want.Ratio || got.Debug != tt.want.Debug || got.GRPC != tt.want.GRPC {
				t.Errorf("Load() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	vars := Describe(&sample{})
	var names []string
	for _, v := range vars {
		names = append(names, v.Name)
	}
	if got, want := strings.Join(names, " "), "KAFKA_BROKERS TIMEOUT WORKERS RATIO DEBUG GRPC_ADDR"; got != want {
		t.Errorf("Describe() names = %q, want %q", got, want)
	}
}
