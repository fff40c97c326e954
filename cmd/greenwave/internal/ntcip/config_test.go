package ntcip

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/greenwave-city/greenwave/pkg/topology"
)

const validConfig = `version: 1
topology: topology.yaml
controllers:
  - intersection: I-100
    address: 10.0.0.5
    snmp:
      user: greenwave
      auth_protocol: SHA256
      auth_pass: {file: auth.txt}
      priv_protocol: AES
      priv_pass: {env: PRIV}
    slots: [{pattern: 200, split: 200}]
    phases: {NS: 2, EW: [4, 8]}
`

func TestParseConfig(t *testing.T) {
	t.Parallel()
	c, err := ParseConfig("ntcip.yaml", []byte(validConfig))
	if err != nil {
		t.Fatal(err)
	}
	ct := c.Controllers[0]
	if ct.Address != "10.0.0.5:161" || ct.SNMP.Version != "v3" || ct.SNMP.Timeout != DefaultTimeout || *ct.SNMP.Retries != DefaultRetries ||
		!reflect.DeepEqual(ct.Phases, map[string]PhaseNumbers{"NS": {2}, "EW": {4, 8}}) || c.Retry.Initial != DefaultRetryInitial {
		t.Errorf("parsed %+v", c)
	}
}

func TestParseConfigErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit func(string) string
		want string // a substring of the error: file:line, field and reason
	}{
		{"unknown field", func(s string) string { return strings.Replace(s, "    slots:", "    slot: 3\n    slots:", 1) },
			"field slot not found"},
		{"v2c without opt-in", func(s string) string {
			return strings.Replace(s, "      user: greenwave\n", "      version: v2c\n      community: {env: C}\n", 1)
		}, "ntcip.yaml:7: controllers.0.snmp.version: v2c sends the community in clear text"},
		{"v3 without privacy", func(s string) string { return strings.Replace(s, "      priv_protocol: AES\n", "", 1) },
			"controllers.0.snmp.priv_protocol: \"\": want one of"},
		{"secret from both file and env", func(s string) string {
			return strings.Replace(s, "{file: auth.txt}", "{file: auth.txt, env: A}", 1)
		}, "ntcip.yaml:9: controllers.0.snmp.auth_pass: give exactly one of file and env"},
		{"pattern out of range", func(s string) string { return strings.Replace(s, "pattern: 200", "pattern: 254", 1) },
			"ntcip.yaml:12: controllers.0.slots.0.pattern: 254 is not a pattern number in 1..253"},
		{"bad address", func(s string) string { return strings.Replace(s, "10.0.0.5", "10.0.0.5:99999", 1) },
			"controllers.0.address: \"10.0.0.5:99999\": port is not in 1..65535"},
		{"duplicate intersection", func(s string) string {
			i := strings.Index(s, "  - intersection")
			return s + s[i:]
		}, "controllers.1.intersection: I-100 already has a controller"},
		{"two intersections on one controller", func(s string) string {
			i := strings.Index(s, "  - intersection")
			return s + strings.Replace(s[i:], "I-100", "I-101", 1)
		}, "controllers.1.address: 10.0.0.5:161 is already the controller of controllers.0"},
		{"unknown offset reference", func(s string) string { return s + "    offset_reference: yield\n" },
			`controllers.0.offset_reference: "yield": want green_start or yellow_start`},
		{"no phases", func(s string) string { return strings.Replace(s, "    phases: {NS: 2, EW: [4, 8]}\n", "", 1) },
			"controllers.0.phases: required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseConfig("ntcip.yaml", []byte(tc.edit(validConfig)))
			var ce *ConfigError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestCheckTopology: a wrong phase mapping is an error at load that names the file, the line and the field.
func TestCheckTopology(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("testdata/topology.yaml")
	if err != nil {
		t.Fatal(err)
	}
	topo, err := topology.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	forecastOnly := topo
	forecastOnly.Intersections = []topology.Intersection{{ID: "I-100", ForecastOnly: true,
		Approaches: []topology.Approach{{ID: "N", Lanes: 1, SaturationFlowVPHPerLane: 1800, Detectors: []string{"d"}}}}}
	tests := []struct {
		name, phases, want string
		topo               *topology.Topology
	}{
		{"forecast only", "{NS: 2, EW: [4, 8]}", `controllers.0.intersection: "I-100" is forecast_only`, &forecastOnly},
		{name: "valid", phases: "{NS: 2, EW: [4, 8]}"},
		{name: "unknown phase", phases: "{NS: 2, EW: 4, LT: 5}", want: `ntcip.yaml:13: controllers.0.phases.LT: intersection I-100 has no phase "LT" (its phases: NS, EW)`},
		{name: "duplicate NTCIP phase", phases: "{NS: [2, 6], EW: [4, 6]}", want: "controllers.0.phases.NS: NTCIP phase 6 is already used by phases.EW"},
		{name: "unmapped phase", phases: "{NS: 2}", want: "ntcip.yaml:13: controllers.0.phases: phase EW of intersection I-100 is not mapped"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			data := []byte(strings.Replace(validConfig, "{NS: 2, EW: [4, 8]}", tc.phases, 1))
			c, err := ParseConfig("ntcip.yaml", data)
			if err != nil {
				t.Fatal(err)
			}
			tp := topo
			if tc.topo != nil {
				tp = *tc.topo
			}
			err = c.CheckTopology("ntcip.yaml", data, tp)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// FuzzParseConfig: ParseConfig never panics, and what it accepts survives a round trip through YAML unchanged.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(validConfig))
	if b, err := os.ReadFile("testdata/ntcip.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("version: 1\ncontrollers: [{phases: {NS: [1, 2]}}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig("fuzz.yaml", data)
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is not a *ConfigError: %v", err, err)
			}
			return
		}
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		again, err := ParseConfig("fuzz.yaml", out)
		if err != nil {
			t.Fatalf("accepted config does not parse again: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(c, again) {
			t.Fatalf("round trip changed the config:\n%+v\n%+v", c, again)
		}
	})
}
