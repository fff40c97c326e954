package topology

import (
	"errors"
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestParseTimeZone(t *testing.T) {
	t.Parallel()
	base := func(zoneLine string) []byte {
		b, err := yamlOf(validTopology())
		if err != nil {
			t.Fatal(err)
		}
		return []byte(zoneLine + string(b))
	}
	for _, tc := range []struct {
		name, line string
		want       string // Zone() when valid
		problem    string // substring of the problem when invalid
	}{
		{name: "absent is UTC", line: "", want: "UTC"},
		{name: "explicit UTC", line: "time_zone: UTC\n", want: "UTC"},
		{name: "Melbourne", line: "time_zone: Australia/Melbourne\n", want: "Australia/Melbourne"},
		{name: "Chicago", line: "time_zone: America/Chicago\n", want: "America/Chicago"},
		{name: "empty string is the default", line: "time_zone: \"\"\n", want: "UTC"},
		{name: "unknown zone", line: "time_zone: Mars/Olympus\n", problem: `time_zone: unknown time zone "Mars/Olympus"`},
		{name: "machine zone refused", line: "time_zone: Local\n", problem: "the machine's own zone"},
		{name: "white space", line: "time_zone: \" UTC\"\n", problem: "surrounding white space"},
		{name: "path", line: "time_zone: ../../etc/passwd\n", problem: "unknown time zone"},
		{name: "wrong case", line: "time_zone: australia/melbourne\n", problem: "unknown time zone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			topo, err := Parse(base(tc.line))
			if tc.problem != "" {
				var ve *ValidationError
				if !errors.As(err, &ve) || !strings.Contains(err.Error(), tc.problem) {
					t.Fatalf("Parse = %v, want a *ValidationError containing %q", err, tc.problem)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if topo.Zone() != tc.want {
				t.Errorf("Zone() = %q, want %q", topo.Zone(), tc.want)
			}
			loc, err := topo.Location()
			if err != nil || loc.String() != tc.want {
				t.Errorf("Location() = %v, %v; want %s", loc, err, tc.want)
			}
		})
	}
}

func TestLocationWith(t *testing.T) {
	t.Parallel()
	const setting = "CLEANER_TIME_ZONE"
	for _, tc := range []struct {
		name, topoZone, value string
		want                  string   // the location when accepted
		errs                  []string // substrings of the refusal
	}{
		{name: "no setting takes the topology's", topoZone: "Australia/Melbourne", want: "Australia/Melbourne"},
		{name: "no setting, no time_zone: UTC", want: "UTC"},
		{name: "agreeing setting", topoZone: "America/Chicago", value: "America/Chicago", want: "America/Chicago"},
		{name: "agreeing with the default", value: "UTC", want: "UTC"},
		{name: "disagreeing setting", topoZone: "Australia/Melbourne", value: "UTC",
			errs: []string{`CLEANER_TIME_ZONE="UTC" disagrees`, `time_zone "Australia/Melbourne"`, "unset CLEANER_TIME_ZONE"}},
		{name: "setting but no time_zone", value: "Australia/Melbourne",
			errs: []string{`CLEANER_TIME_ZONE="Australia/Melbourne" disagrees`, `no time_zone (default "UTC")`, "set time_zone in the topology"}},
		{name: "same zone, other name", topoZone: "UTC", value: "Etc/UTC", errs: []string{`"Etc/UTC" disagrees`}},
		{name: "invalid setting", topoZone: "UTC", value: "Mars/Olympus", errs: []string{`CLEANER_TIME_ZONE: unknown time zone "Mars/Olympus"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			topo := validTopology()
			topo.TimeZone = tc.topoZone
			loc, err := topo.LocationWith(setting, tc.value)
			if len(tc.errs) > 0 {
				if err == nil {
					t.Fatalf("LocationWith = %v, want an error", loc)
				}
				for _, w := range tc.errs {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				return
			}
			if err != nil || loc.String() != tc.want {
				t.Fatalf("LocationWith = %v, %v; want %s", loc, err, tc.want)
			}
		})
	}
}

func TestCheckZoneSetting(t *testing.T) {
	t.Parallel()
	for value, ok := range map[string]bool{"": true, "UTC": true, "Europe/Paris": true, "Local": false, "Nowhere/City": false} {
		if err := CheckZoneSetting("X_TIME_ZONE", value); (err == nil) != ok {
			t.Errorf("CheckZoneSetting(%q) = %v, want ok %v", value, err, ok)
		} else if err != nil && !strings.HasPrefix(err.Error(), "X_TIME_ZONE: ") {
			t.Errorf("CheckZoneSetting(%q) = %v, want the setting named first", value, err)
		}
	}
}

// yamlOf encodes a topology as the YAML Parse reads.
func yamlOf(t Topology) ([]byte, error) { return yaml.Marshal(t) }

// FuzzParse: no input panics Parse, and an accepted topology has a loadable time zone that survives a YAML
// round trip (the services load the zone of whatever Parse accepted, and greenwave topology import writes YAML).
func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile("../../config/topology.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("version: 1\ntime_zone: Local\nintersections: []\n"))
	f.Add([]byte("version: 1\ntime_zone: Australia/Melbourne\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		topo, err := Parse(b)
		if err != nil {
			return
		}
		if _, err := topo.Location(); err != nil {
			t.Fatalf("accepted time_zone %q does not load: %v", topo.TimeZone, err)
		}
		out, err := yaml.Marshal(topo)
		if err != nil {
			t.Fatal(err)
		}
		again, err := Parse(out)
		if err != nil || again.Zone() != topo.Zone() {
			t.Fatalf("round trip: zone %q, %v; want %q", again.Zone(), err, topo.Zone())
		}
	})
}
