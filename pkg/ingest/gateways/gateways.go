// Package gateways is the collector's registry of sensor gateways: who may publish (a SHA-256 of each gateway's
// API token — never the token itself), for which intersections, detectors and weather stations, and at what rate.
//
// The registry file (COLLECTOR_TOKENS_FILE) is YAML:
//
//	version: 1
//	gateways:
//	  - id: gw-high-st
//	    token_sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//	    next_token_sha256: 60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752  # optional, during a rotation
//	    intersections: [I-100, I-101]   # every detector of these, and their weather stations
//	    detectors: [I-102-N1]           # single detectors elsewhere
//	    stations: [STN-2]               # extra weather stations
//	    rate_limit: {readings_per_second: 200, burst: 2000}
//
// "*" in a list allows every intersection, detector or station. The hash of a token is
// `printf %s "$TOKEN" | sha256sum`. next_token_sha256 exists for rotating a token without downtime: while it is
// set, both the current and the next token authenticate the gateway, so the gateway can switch at any moment and
// the old hash is removed afterwards. Every hash, current or next, is unique across the file. The package is
// pure: Parse reads bytes, Authenticate compares hashes in constant time.
package gateways

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/greenwave-city/greenwave/pkg/topology"
)

// SchemaVersion is the registry file format this package reads.
const SchemaVersion = 1

// Any in a permission list allows every item of that kind.
const Any = "*"

// AnonymousID is the gateway id of unauthenticated callers when anonymous ingestion is allowed.
const AnonymousID = "anonymous"

// RateLimit bounds how many readings (traffic plus weather, accepted or not) a gateway may send.
type RateLimit struct {
	// ReadingsPerSecond is the sustained rate.
	ReadingsPerSecond float64 `yaml:"readings_per_second"`
	// Burst is how many readings may arrive at once; a batch larger than Burst can never pass.
	Burst int `yaml:"burst"`
}

type entry struct {
	ID              string     `yaml:"id"`
	Token           string     `yaml:"token"`
	TokenSHA256     string     `yaml:"token_sha256"`
	NextToken       string     `yaml:"next_token"`
	NextTokenSHA256 string     `yaml:"next_token_sha256"`
	Intersections   []string   `yaml:"intersections"`
	Detectors       []string   `yaml:"detectors"`
	Stations        []string   `yaml:"stations"`
	RateLimit       *RateLimit `yaml:"rate_limit"`
}

type file struct {
	Version  int     `yaml:"version"`
	Gateways []entry `yaml:"gateways"`
}

// Gateway is one authenticated publisher and what it may publish. It is immutable and safe for concurrent use.
type Gateway struct {
	// ID names the gateway in metrics, logs and the gateway_id of its readings.
	ID string
	// Rate is the gateway's rate limit; nil means unlimited.
	Rate *RateLimit

	// hashes are the SHA-256 of the tokens that authenticate the gateway: the current one and, during a
	// rotation, the next one.
	hashes        [][sha256.Size]byte
	all           bool
	intersections set
	detectors     set
	stations      set
}

type set struct {
	any   bool
	items map[string]bool
}

func newSet(items []string) set {
	s := set{items: map[string]bool{}}
	for _, it := range items {
		if it == Any {
			s.any = true
		}
		s.items[it] = true
	}
	return s
}

func (s set) has(v string) bool { return s.any || s.items[v] }

// Anonymous returns the gateway unauthenticated callers act as when anonymous ingestion is enabled: it may
// publish anything, without a rate limit.
func Anonymous() *Gateway { return &Gateway{ID: AnonymousID, all: true} }

// AllowsTraffic reports whether the gateway may publish readings of detector, which belongs to intersection.
func (g *Gateway) AllowsTraffic(detector, intersection string) bool {
	return g.all || g.detectors.has(detector) || g.intersections.has(intersection)
}

// AllowsStation reports whether the gateway may publish weather observations of station.
func (g *Gateway) AllowsStation(station string) bool {
	return g.all || g.stations.has(station)
}

// Registry holds the configured gateways. It is immutable and safe for concurrent use.
type Registry struct {
	gateways []*Gateway
}

// Len returns the number of gateways.
func (r *Registry) Len() int { return len(r.gateways) }

// IDs returns the gateway ids in file order.
func (r *Registry) IDs() []string {
	ids := make([]string, len(r.gateways))
	for i, g := range r.gateways {
		ids[i] = g.ID
	}
	return ids
}

// Gateway returns the gateway with the given id, or nil.
func (r *Registry) Gateway(id string) *Gateway {
	for _, g := range r.gateways {
		if g.ID == id {
			return g
		}
	}
	return nil
}

// Authenticate returns the gateway whose current or next token hash matches token. Every configured hash is
// compared, each in constant time and without stopping at a match, so the answer's timing reveals neither the
// token, nor which gateway matched, nor whether it was a current or a next token.
func (r *Registry) Authenticate(token string) (*Gateway, bool) {
	h := sha256.Sum256([]byte(token))
	var found *Gateway
	for _, g := range r.gateways {
		for _, gh := range g.hashes {
			if subtle.ConstantTimeCompare(h[:], gh[:]) == 1 {
				found = g
			}
		}
	}
	return found, found != nil
}

// HashToken returns the hex SHA-256 of a token, as stored in token_sha256 (what `sha256sum` prints).
func HashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// Error lists every problem found in a registry file, so an operator can fix them all at once.
type Error struct {
	Problems []string
}

// Error implements error.
func (e *Error) Error() string {
	return fmt.Sprintf("invalid gateway registry (%d problems):\n  - %s", len(e.Problems), strings.Join(e.Problems, "\n  - "))
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Parse reads a registry file and checks it against the topology: every listed intersection, detector and
// station must exist (a typo would otherwise silently deny a gateway). It returns an *Error naming every
// problem. Weather stations of a gateway's intersections are allowed implicitly.
func Parse(b []byte, topo *topology.Index) (*Registry, error) {
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("parse gateway registry: %w", err)
	}
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	if f.Version != SchemaVersion {
		add("version: got %d, want %d", f.Version, SchemaVersion)
	}
	if len(f.Gateways) == 0 {
		add("gateways: none configured")
	}
	stationsOf := map[string]string{}
	knownStations := map[string]bool{}
	for _, in := range topo.Topology().Intersections {
		if in.WeatherStation != "" {
			stationsOf[in.ID] = in.WeatherStation
			knownStations[in.WeatherStation] = true
		}
	}
	ids, hashes := map[string]bool{}, map[string]string{}
	reg := &Registry{}
	for i, e := range f.Gateways {
		where := fmt.Sprintf("gateways[%d] (id %q)", i, e.ID)
		if !idPattern.MatchString(e.ID) {
			add("%s: id must be 1-64 characters of letters, digits, '.', '_' or '-', starting with a letter or digit", where)
		} else if e.ID == AnonymousID {
			add("%s: id %q is reserved for unauthenticated callers", where, AnonymousID)
		} else if ids[e.ID] {
			add("%s: duplicate id", where)
		}
		ids[e.ID] = true
		if e.Token != "" {
			add("%s: holds a plaintext token; store only token_sha256 (printf %%s \"$TOKEN\" | sha256sum)", where)
		}
		g := &Gateway{ID: e.ID, Rate: e.RateLimit}
		if e.NextToken != "" {
			add("%s: holds a plaintext next_token; store only next_token_sha256 (printf %%s \"$TOKEN\" | sha256sum)", where)
		}
		for _, t := range []struct{ field, value string }{{"token_sha256", e.TokenSHA256}, {"next_token_sha256", e.NextTokenSHA256}} {
			if t.field == "next_token_sha256" && t.value == "" {
				continue // optional: set only during a rotation
			}
			raw, err := hex.DecodeString(t.value)
			key := strings.ToLower(t.value)
			switch {
			case err != nil || len(raw) != sha256.Size:
				add("%s: %s must be 64 hexadecimal digits (printf %%s \"$TOKEN\" | sha256sum)", where, t.field)
			case hashes[key] != "":
				add("%s: %s is also the %s; every token, current or next, must be unique", where, t.field, hashes[key])
			default:
				g.hashes = append(g.hashes, [sha256.Size]byte(raw))
				hashes[key] = fmt.Sprintf("%s of gateway %q", t.field, e.ID)
			}
		}
		if len(e.Intersections)+len(e.Detectors)+len(e.Stations) == 0 {
			add("%s: allows nothing; list intersections, detectors and/or stations (\"*\" for all)", where)
		}
		stations := append([]string(nil), e.Stations...)
		for _, in := range e.Intersections {
			if in == Any {
				stations = append(stations, Any)
				continue
			}
			if _, ok := topo.Intersection(in); !ok {
				add("%s: intersection %q is not in the topology", where, in)
			}
			if st := stationsOf[in]; st != "" {
				stations = append(stations, st)
			}
		}
		for _, d := range e.Detectors {
			if _, ok := topo.Detector(d); !ok && d != Any {
				add("%s: detector %q is not in the topology", where, d)
			}
		}
		for _, st := range e.Stations {
			if !knownStations[st] && st != Any {
				add("%s: station %q is no intersection's weather_station in the topology", where, st)
			}
		}
		if r := e.RateLimit; r != nil && (!(r.ReadingsPerSecond > 0) || r.Burst < 1) {
			add("%s: rate_limit needs readings_per_second > 0 and burst ≥ 1", where)
		}
		g.intersections, g.detectors, g.stations = newSet(e.Intersections), newSet(e.Detectors), newSet(stations)
		reg.gateways = append(reg.gateways, g)
	}
	if len(p) > 0 {
		return nil, &Error{Problems: p}
	}
	return reg, nil
}

// ErrNoToken is returned by BearerToken when the header is absent.
var ErrNoToken = errors.New("no bearer token")

// BearerToken extracts the token of an "Authorization: Bearer <token>" header value. The scheme is matched
// case-insensitively, as RFC 9110 requires.
func BearerToken(header string) (string, error) {
	if header == "" {
		return "", ErrNoToken
	}
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return "", errors.New(`authorization must be "Bearer <token>"`)
	}
	return strings.TrimSpace(token), nil
}
