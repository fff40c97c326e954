package check

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestConfigurationDocUpToDate(t *testing.T) {
	t.Parallel()
	want := RenderConfiguration(configuration)
	if have := readRepoFile(t, ConfigurationDoc); !bytes.Equal(have, want) {
		t.Fatalf("%s is stale: run 'go run ./deploy/check/cmd/gendocs' and commit it", ConfigurationDoc)
	}
}

func TestConfigurationDocListsEveryVariable(t *testing.T) {
	t.Parallel()
	doc := string(RenderConfiguration(configuration))
	for _, s := range configuration {
		for _, v := range s.Vars {
			if !strings.Contains(doc, "| `"+v.Name+"` |") {
				t.Errorf("%s: %s missing from the reference", s.Service, v.Name)
			}
		}
	}
}

func TestRenderConfiguration(t *testing.T) {
	t.Parallel()
	common := Var{Name: "KAFKA_BROKERS", Default: "127.0.0.1:9092", Help: "brokers", Type: "list"}
	tests := []struct {
		name     string
		in       []ServiceVars
		contains []string
		absent   []string
	}{
		{
			name: "shared once, own per service",
			in: []ServiceVars{
				{Service: "a", Vars: []Var{common, {Name: "A_ONLY", Default: "1", Help: "a's", Type: "int"}}},
				{Service: "b", Vars: []Var{common}},
			},
			contains: []string{"## Shared by every service\n\n| variable | type | default | meaning |\n|---|---|---|---|\n| `KAFKA_BROKERS` | list | `127.0.0.1:9092` | brokers |\n",
				"## a\n\n| variable | type | default | meaning |\n|---|---|---|---|\n| `A_ONLY` | int | `1` | a's |\n",
				"## b\n\nOnly the shared variables.\n"},
		},
		{
			name: "same name, different default is not shared",
			in: []ServiceVars{
				{Service: "a", Vars: []Var{{Name: "X", Default: "1", Type: "int"}}},
				{Service: "b", Vars: []Var{{Name: "X", Default: "2", Type: "int"}}},
			},
			contains: []string{"## a\n\n| variable | type | default | meaning |\n|---|---|---|---|\n| `X` | int | `1` |", "## b\n\n| variable | type | default | meaning |\n|---|---|---|---|\n| `X` | int | `2` |"},
		},
		{
			name:     "empty default and pipes in help",
			in:       []ServiceVars{{Service: "a", Vars: []Var{{Name: "Y", Help: "json | console", Type: "string"}}}},
			contains: []string{"| `Y` | string | (none) | json \\| console |"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := string(RenderConfiguration(tt.in))
			for _, c := range tt.contains {
				if !strings.Contains(got, c) {
					t.Errorf("output lacks %q:\n%s", c, got)
				}
			}
			for _, a := range tt.absent {
				if strings.Contains(got, a) {
					t.Errorf("output has %q", a)
				}
			}
		})
	}
}

func TestDecodeVars(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, wantErr string
		want              int
	}{
		{"ok", `[{"name":"A","default":"","help":"h","type":"string"}]`, "", 1},
		{"empty list", `[]`, "", 0},
		{"unknown field", `[{"name":"A","extra":1}]`, "unknown field", 0},
		{"no name", `[{"default":"x"}]`, "has no name", 0},
		{"duplicate", `[{"name":"A"},{"name":"A"}]`, "listed twice", 0},
		{"trailing", `[] []`, "trailing data", 0},
		{"not json", `VARIABLE DEFAULT`, "decode variables", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := DecodeVars([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("DecodeVars(%s) = %v, want error containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || len(got) != tt.want {
				t.Fatalf("DecodeVars(%s) = %v, %v; want %d variables", tt.in, got, err, tt.want)
			}
		})
	}
}

func FuzzDecodeVars(f *testing.F) {
	f.Add([]byte(`[{"name":"A","default":"1","help":"h","type":"int"}]`))
	f.Add([]byte(`[{"name":""}]`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		vars, err := DecodeVars(data)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, v := range vars {
			if v.Name == "" || seen[v.Name] {
				t.Fatalf("accepted an unnamed or duplicate variable: %+v", vars)
			}
			seen[v.Name] = true
		}
		// The variables encoded again decode to themselves.
		again, err := json.Marshal(vars)
		if err != nil {
			t.Fatal(err)
		}
		if vars2, err := DecodeVars(again); err != nil || !reflect.DeepEqual(vars, vars2) {
			t.Fatalf("round trip of %+v: %+v, %v", vars, vars2, err)
		}
		RenderConfiguration([]ServiceVars{{Service: "s", Vars: vars}})
	})
}
