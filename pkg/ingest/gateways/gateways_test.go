package gateways

import (
	"errors"
	"strings"
	"testing"

	"github.com/greenwave-city/greenwave/pkg/topology"
)

const topo = `
version: 1
revision: t
intersections:
  - id: I-1
    weather_station: STN-1
    approaches:
      - {id: N, lanes: 1, saturation_flow_vph_per_lane: 1800, detectors: [D1]}
      - {id: E, lanes: 1, saturation_flow_vph_per_lane: 1800, detectors: [D2]}
    phases:
      - {id: P1, approaches: [N], min_green_s: 10, max_green_s: 60, yellow_s: 4, all_red_s: 2, lost_time_s: 4}
      - {id: P2, approaches: [E], min_green_s: 10, max_green_s: 60, yellow_s: 4, all_red_s: 2, lost_time_s: 4}
    timing: {min_cycle_s: 40, max_cycle_s: 150}
`

func index(t *testing.T) *topology.Index {
	tp, err := topology.Parse([]byte(topo))
	if err != nil {
		t.Fatal(err)
	}
	return topology.NewIndex(tp)
}

func TestParseAndAuthenticate(t *testing.T) {
	reg, err := Parse([]byte(`
version: 1
gateways:
  - {id: a, token_sha256: `+HashToken("ta")+`, intersections: [I-1]}
  - {id: b, token_sha256: `+strings.ToUpper(HashToken("tb"))+`, detectors: [D2], rate_limit: {readings_per_second: 5, burst: 10}}
  - {id: c, token_sha256: `+HashToken("tc")+`, stations: ["*"]}
`), index(t))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		token, id              string
		d1, d2, stn1, otherStn bool
	}{
		{"ta", "a", true, true, true, false},
		{"tb", "b", false, true, false, false},
		{"tc", "c", false, false, true, true},
	}
	for _, c := range cases {
		t.Run(c.id, func(t *testing.T) {
			g, ok := reg.Authenticate(c.token)
			if !ok || g.ID != c.id {
				t.Fatalf("Authenticate(%q) = %v %v", c.token, g, ok)
			}
			if g.AllowsTraffic("D1", "I-1") != c.d1 || g.AllowsTraffic("D2", "I-1") != c.d2 || g.AllowsStation("STN-1") != c.stn1 || g.AllowsStation("STN-9") != c.otherStn {
				t.Errorf("permissions of %s wrong", c.id)
			}
		})
	}
	if _, ok := reg.Authenticate("nope"); ok {
		t.Error("unknown token authenticated")
	}
	if g := reg.Gateway("b"); g == nil || g.Rate.Burst != 10 {
		t.Errorf("gateway b rate %v", g)
	}
}

func TestParseErrors(t *testing.T) {
	h := HashToken("x")
	cases := []struct{ name, body, want string }{
		{"plaintext token", "version: 1\ngateways:\n  - {id: a, token: secret, token_sha256: " + h + ", intersections: [I-1]}", "plaintext token"},
		{"bad hash", "version: 1\ngateways:\n  - {id: a, token_sha256: abc, intersections: [I-1]}", "64 hexadecimal"},
		{"shared hash", "version: 1\ngateways:\n  - {id: a, token_sha256: " + h + ", intersections: [I-1]}\n  - {id: b, token_sha256: " + h + ", intersections: [I-1]}", `gateways[1] (id "b"): token_sha256 is also the token_sha256 of gateway "a"`},
		{"next equals own current", "version: 1\ngateways:\n  - {id: a, token_sha256: " + h + ", next_token_sha256: " + strings.ToUpper(h) + ", intersections: [I-1]}", `gateways[0] (id "a"): next_token_sha256 is also the token_sha256 of gateway "a"`},
		{"next is another's current", "version: 1\ngateways:\n  - {id: a, token_sha256: " + h + ", intersections: [I-1]}\n  - {id: b, token_sha256: " + HashToken("y") + ", next_token_sha256: " + h + ", intersections: [I-1]}", `gateways[1] (id "b"): next_token_sha256 is also the token_sha256 of gateway "a"`},
		{"current is another's next", "version: 1\ngateways:\n  - {id: a, token_sha256: " + HashToken("y") + ", next_token_sha256: " + h + ", intersections: [I-1]}\n  - {id: b, token_sha256: " + h + ", intersections: [I-1]}", `gateways[1] (id "b"): token_sha256 is also the next_token_sha256 of gateway "a"`},
		{"shared next", "version: 1\ngateways:\n  - {id: a, token_sha256: " + HashToken("y") + ", next_token_sha256: " + h + ", intersections: [I-1]}\n  - {id: b, token_sha256: " + HashToken("z") + ", next_token_sha256: " + h + ", intersections: [I-1]}", `gateways[1] (id "b"): next_token_sha256 is also the next_token_sha256 of gateway "a"`},
		{"bad next hash", "version: 1\ngateways:\n  - {id: a, token_sha256: " + h + ", next_token_sha256: xyz, intersections: [I-1]}", `gateways[0] (id "a"): next_token_sha256 must be 64 hexadecimal`},
		{"plaintext next token", "version: 1\ngateways:\n  - {id: a, token_sha256: " + h + ", next_token: secret, intersections: [I-1]}", "plaintext next_token"},
		{"missing current", "version: 1\ngateways:\n  - {id: a, next_token_sha256: " + h + ", intersections: [I-1]}", `gateways[0] (id "a"): token_sha256 must be 64 hexadecimal`},
		{"unknown intersection", "version: 1\ngateways:\n  - {id: a, token_sha256: " + h + ", intersections: [I-9]}", `"I-9" is not in the topology`},
		{"unknown detector", "version: 1\ngateways:\n  - {id: a, token_sha256: " + h + ", detectors: [Q]}", `"Q" is not in the topology`},
		{"allows nothing", "version: 1\ngateways:\n  - {id: a, token_sha256: " + h + "}", "allows nothing"},
		{"bad rate", "version: 1\ngateways:\n  - {id: a, token_sha256: " + h + ", intersections: [I-1], rate_limit: {readings_per_second: 0, burst: 1}}", "rate_limit"},
		{"reserved id", "version: 1\ngateways:\n  - {id: anonymous, token_sha256: " + h + ", intersections: [I-1]}", "reserved"},
		{"version", "version: 2\ngateways: []", "version"},
		{"unknown key", "version: 1\ngateways:\n  - {id: a, tokn_sha256: " + h + "}", "tokn_sha256"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.body), index(t))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want it to mention %q", err, c.want)
			}
		})
	}
}

// TestRotation: while next_token_sha256 is set, the current and the next token both authenticate their own
// gateway and nothing else; a gateway without one keeps a single token.
func TestRotation(t *testing.T) {
	reg, err := Parse([]byte(`
version: 1
gateways:
  - {id: rotating, token_sha256: `+HashToken("old")+`, next_token_sha256: `+HashToken("new")+`, intersections: [I-1]}
  - {id: steady, token_sha256: `+HashToken("steady")+`, stations: [STN-1]}
`), index(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, token, want string
	}{
		{"current token", "old", "rotating"},
		{"next token", "new", "rotating"},
		{"single token", "steady", "steady"},
		{"other token", "older", ""},
		{"empty token", "", ""},
		{"hash instead of token", HashToken("new"), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			g, ok := reg.Authenticate(c.token)
			switch {
			case c.want == "" && ok:
				t.Errorf("Authenticate(%q) admitted %s", c.token, g.ID)
			case c.want != "" && (!ok || g.ID != c.want):
				t.Errorf("Authenticate(%q) = %v %v, want %s", c.token, g, ok, c.want)
			}
		})
	}
}

func TestBearerToken(t *testing.T) {
	for _, c := range []struct {
		header, token string
		err           bool
	}{{"Bearer abc", "abc", false}, {"bearer  abc ", "abc", false}, {"", "", true}, {"Basic abc", "", true}, {"Bearer", "", true}} {
		tok, err := BearerToken(c.header)
		if tok != c.token || (err != nil) != c.err {
			t.Errorf("BearerToken(%q) = %q, %v", c.header, tok, err)
		}
	}
	if _, err := BearerToken(""); !errors.Is(err, ErrNoToken) {
		t.Errorf("empty header: %v, want ErrNoToken", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("version: 1\ngateways:\n  - {id: a, token_sha256: " + HashToken("x") + ", intersections: ['*']}"))
	f.Add([]byte("version: 1\ngateways:\n  - {id: a, token_sha256: " + HashToken("x") + ", next_token_sha256: " + HashToken("y") + ", intersections: ['*']}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		tp, _ := topology.Parse([]byte(topo))
		reg, err := Parse(b, topology.NewIndex(tp))
		if err != nil {
			return
		}
		if reg.Len() == 0 {
			t.Fatal("empty registry accepted")
		}
		// Every accepted gateway has a current and at most a next token, and no hash admits two gateways.
		seen := map[[32]byte]bool{}
		for _, g := range reg.gateways {
			if len(g.hashes) < 1 || len(g.hashes) > 2 {
				t.Fatalf("gateway %s has %d token hashes", g.ID, len(g.hashes))
			}
			for _, h := range g.hashes {
				if seen[h] {
					t.Fatalf("hash %x accepted twice", h)
				}
				seen[h] = true
			}
		}
	})
}
