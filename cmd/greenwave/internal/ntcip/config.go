package ntcip

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/greenwave-city/greenwave/pkg/ntcip"
	"github.com/greenwave-city/greenwave/pkg/topology"
)

// ConfigVersion is the configuration file format this package reads.
const ConfigVersion = 1

// Defaults of the configuration.
const (
	DefaultTimeout      = 2 * time.Second
	DefaultRetries      = 1
	DefaultRetryInitial = time.Second
	DefaultRetryMax     = time.Minute
	defaultSNMPPort     = "161"
)

// Values of Controller.OffsetReference.
const (
	OffsetGreenStart  = "green_start"
	OffsetYellowStart = "yellow_start"
)

var offsetReferences = map[string]ntcip.OffsetReference{OffsetGreenStart: ntcip.OffsetGreenStart, OffsetYellowStart: ntcip.OffsetYellowStart}

// SNMP versions and the protocols accepted for SNMPv3.
var (
	snmpVersions  = []string{"v3", "v2c", "v1"}
	authProtocols = []string{"MD5", "SHA", "SHA224", "SHA256", "SHA384", "SHA512"}
	privProtocols = []string{"DES", "AES", "AES192", "AES256", "AES192C", "AES256C"}
)

// Config is the `greenwave ntcip` configuration file (YAML; docs/ntcip.md).
type Config struct {
	// Version must be ConfigVersion.
	Version int `yaml:"version"`
	// Topology is the topology file the plans are validated against, relative to the configuration file.
	Topology string `yaml:"topology"`
	// Retry is the back-off after a failed write to a controller.
	Retry Retry `yaml:"retry,omitempty"`
	// HoldInterval is how often systemPatternControl is sent again while a controller runs Greenwave's pattern,
	// to keep its backup timer (unitBackupTime) from handing it back to its own schedule; 0 never. Set it below
	// the controllers' backup time.
	HoldInterval time.Duration `yaml:"hold_interval,omitempty"`
	// Controllers are the field controllers, one per intersection.
	Controllers []Controller `yaml:"controllers"`
}

// Retry is an exponential back-off: Initial after the first failure, doubling up to Max.
type Retry struct {
	Initial time.Duration `yaml:"initial,omitempty"`
	Max     time.Duration `yaml:"max,omitempty"`
}

// Controller is one intersection's NTCIP 1202 controller.
type Controller struct {
	// Intersection is the topology's intersection id.
	Intersection string `yaml:"intersection"`
	// Address is the controller's SNMP agent, host:port (port 161 when omitted).
	Address string `yaml:"address"`
	SNMP    SNMP   `yaml:"snmp"`
	// Slots are the pattern (and its split) reserved for Greenwave: one, or two so that a new plan is written
	// to the slot not running while the other keeps the controller on the previous plan.
	Slots []Slot `yaml:"slots"`
	// Phases maps each Greenwave phase id to its NTCIP phase numbers (one number or a list).
	Phases map[string]PhaseNumbers `yaml:"phases"`
	// OmitPhases are NTCIP phases of the controller Greenwave does not run: written as phaseOmitted.
	OmitPhases []int `yaml:"omit_phases,omitempty"`
	// OffsetReference is where the controller measures patternOffsetTime from: green_start (the coordinated
	// phase's green starts at the offset, Greenwave's own meaning; the default) or yellow_start (its yellow
	// does, the yield point).
	OffsetReference string `yaml:"offset_reference,omitempty"`
	// SkipPhaseCheck turns off the check before every write that the controller's phaseYellowChange and
	// phaseRedClear equal the topology's yellow_s and all_red_s and its phaseMinimumGreen is at most the plan's
	// greens (for controllers that do not serve them).
	SkipPhaseCheck bool `yaml:"skip_phase_check,omitempty"`
}

// Slot is one patternNumber and the splitNumber it uses.
type Slot struct {
	Pattern int `yaml:"pattern"`
	Split   int `yaml:"split"`
}

// PhaseNumbers are NTCIP phase numbers; YAML gives one number or a list.
type PhaseNumbers []int

// UnmarshalYAML accepts `2` as well as `[2, 6]`.
func (p *PhaseNumbers) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		var v int
		if err := n.Decode(&v); err != nil {
			return err
		}
		*p = PhaseNumbers{v}
		return nil
	}
	var vs []int
	if err := n.Decode(&vs); err != nil {
		return err
	}
	*p = vs
	return nil
}

// SNMP is how the adapter talks to a controller. SNMPv3 with authentication and privacy is the default; v1 and
// v2c (community strings in clear) need AllowInsecure.
type SNMP struct {
	// Version is v3 (default), v2c or v1.
	Version       string `yaml:"version,omitempty"`
	AllowInsecure bool   `yaml:"allow_insecure,omitempty"`
	// Community is the v1/v2c community (write access).
	Community *Secret `yaml:"community,omitempty"`
	// User, AuthProtocol, AuthPass, PrivProtocol and PrivPass are the SNMPv3 USM credentials (authPriv).
	User         string  `yaml:"user,omitempty"`
	AuthProtocol string  `yaml:"auth_protocol,omitempty"`
	AuthPass     *Secret `yaml:"auth_pass,omitempty"`
	PrivProtocol string  `yaml:"priv_protocol,omitempty"`
	PrivPass     *Secret `yaml:"priv_pass,omitempty"`
	// Timeout is how long one request waits for its response (default 2s); Retries how often it is resent (default 1).
	Timeout time.Duration `yaml:"timeout,omitempty"`
	Retries *int          `yaml:"retries,omitempty"`
}

// Secret is read from a file or an environment variable, never written into the configuration itself.
type Secret struct {
	File string `yaml:"file,omitempty"`
	Env  string `yaml:"env,omitempty"`
}

// ConfigError lists every problem of a configuration file; each names the file, line and field.
type ConfigError struct {
	File     string
	Problems []string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("ntcip config %s: %s", e.File, strings.Join(e.Problems, "; "))
}

// ParseConfig decodes and checks a configuration (unknown fields are errors), filling in defaults. name is the
// file name used in errors. It does not read the topology or the secrets: see Resolve.
func ParseConfig(name string, data []byte) (Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return Config{}, &ConfigError{File: name, Problems: []string{"empty file"}}
		}
		return Config{}, &ConfigError{File: name, Problems: []string{strings.TrimPrefix(err.Error(), "yaml: ")}}
	}
	var root yaml.Node
	_ = yaml.Unmarshal(data, &root) // decoded above; only for line numbers
	var ps []string
	add := func(path []string, format string, args ...any) {
		loc := name
		if l := lineOf(&root, path); l > 0 {
			loc = fmt.Sprintf("%s:%d", name, l)
		}
		ps = append(ps, fmt.Sprintf("%s: %s: %s", loc, strings.Join(path, "."), fmt.Sprintf(format, args...)))
	}
	if c.Version != ConfigVersion {
		add([]string{"version"}, "%d, want %d", c.Version, ConfigVersion)
	}
	if c.Topology == "" {
		add([]string{"topology"}, "required")
	}
	if c.Retry.Initial == 0 {
		c.Retry.Initial = DefaultRetryInitial
	}
	if c.Retry.Max == 0 {
		c.Retry.Max = DefaultRetryMax
	}
	if c.Retry.Initial < 0 || c.Retry.Max < c.Retry.Initial {
		add([]string{"retry"}, "want 0 < initial (%v) <= max (%v)", c.Retry.Initial, c.Retry.Max)
	}
	if c.HoldInterval < 0 {
		add([]string{"hold_interval"}, "%v is negative", c.HoldInterval)
	}
	if len(c.Controllers) == 0 {
		add([]string{"controllers"}, "at least one controller is required")
	}
	seen := map[string]int{}
	addrs := map[string]int{}
	for i := range c.Controllers {
		ct := &c.Controllers[i]
		at := func(f ...string) []string { return append([]string{"controllers", strconv.Itoa(i)}, f...) }
		if ct.Intersection == "" {
			add(at("intersection"), "required")
		} else if j, dup := seen[ct.Intersection]; dup {
			add(at("intersection"), "%s already has a controller (controllers.%d)", ct.Intersection, j)
		} else {
			seen[ct.Intersection] = i
		}
		if addr, err := normaliseAddress(ct.Address); err != nil {
			add(at("address"), "%v", err)
		} else if j, dup := addrs[addr]; dup {
			// One goroutine writes to one controller: two entries for one address could write at the same time,
			// and a controller runs one pattern (systemPatternControl) for all its phases.
			add(at("address"), "%s is already the controller of controllers.%d", addr, j)
		} else {
			ct.Address, addrs[addr] = addr, i
		}
		checkSNMP(&ct.SNMP, func(f string, format string, args ...any) { add(at("snmp", f), format, args...) })
		switch {
		case len(ct.Slots) == 0 || len(ct.Slots) > 2:
			add(at("slots"), "want one or two reserved slots, got %d", len(ct.Slots))
		case len(ct.Slots) == 2 && (ct.Slots[0].Pattern == ct.Slots[1].Pattern || ct.Slots[0].Split == ct.Slots[1].Split):
			add(at("slots"), "the two slots must differ in pattern and in split")
		}
		for k, s := range ct.Slots {
			if s.Pattern < 1 || s.Pattern > ntcip.MaxPattern {
				add(at("slots", strconv.Itoa(k), "pattern"), "%d is not a pattern number in 1..%d", s.Pattern, ntcip.MaxPattern)
			}
			if s.Split < 1 || s.Split > ntcip.MaxSplit {
				add(at("slots", strconv.Itoa(k), "split"), "%d is not a split number in 1..%d", s.Split, ntcip.MaxSplit)
			}
		}
		if len(ct.Phases) == 0 {
			add(at("phases"), "required: Greenwave phase id → NTCIP phase number(s)")
		}
		for id, ns := range ct.Phases {
			if len(ns) == 0 {
				add(at("phases", id), "no NTCIP phase number")
			}
		}
		if len(ct.OmitPhases) == 0 {
			ct.OmitPhases = nil
		}
		if ct.OffsetReference == "" {
			ct.OffsetReference = OffsetGreenStart
		}
		if _, ok := offsetReferences[ct.OffsetReference]; !ok {
			add(at("offset_reference"), "%q: want %s or %s", ct.OffsetReference, OffsetGreenStart, OffsetYellowStart)
		}
	}
	if len(ps) > 0 {
		return Config{}, &ConfigError{File: name, Problems: ps}
	}
	return c, nil
}

func checkSNMP(s *SNMP, add func(field, format string, args ...any)) {
	if s.Version == "" {
		s.Version = "v3"
	}
	if s.Timeout == 0 {
		s.Timeout = DefaultTimeout
	}
	if s.Timeout < 0 {
		add("timeout", "%v is negative", s.Timeout)
	}
	if s.Retries == nil {
		r := DefaultRetries
		s.Retries = &r
	} else if *s.Retries < 0 || *s.Retries > 10 {
		add("retries", "%d is not in 0..10", *s.Retries)
	}
	checkSecret := func(field string, sec *Secret, required bool) {
		switch {
		case sec == nil && required:
			add(field, "required: {file: PATH} or {env: NAME}")
		case sec != nil && (sec.File == "") == (sec.Env == ""):
			add(field, "give exactly one of file and env")
		}
	}
	switch s.Version {
	case "v3":
		if s.User == "" {
			add("user", "required for SNMPv3")
		}
		if !slices.Contains(authProtocols, s.AuthProtocol) {
			add("auth_protocol", "%q: want one of %s", s.AuthProtocol, strings.Join(authProtocols, ", "))
		}
		if !slices.Contains(privProtocols, s.PrivProtocol) {
			add("priv_protocol", "%q: want one of %s (SNMPv3 is used with privacy only)", s.PrivProtocol, strings.Join(privProtocols, ", "))
		}
		checkSecret("auth_pass", s.AuthPass, true)
		checkSecret("priv_pass", s.PrivPass, true)
		if s.Community != nil {
			add("community", "not used with SNMPv3")
		}
	case "v1", "v2c":
		if !s.AllowInsecure {
			add("version", "%s sends the community in clear text: set allow_insecure: true to use it", s.Version)
		}
		checkSecret("community", s.Community, true)
		if s.User != "" || s.AuthPass != nil || s.PrivPass != nil || s.AuthProtocol != "" || s.PrivProtocol != "" {
			add("user", "SNMPv3 credentials given with %s", s.Version)
		}
	default:
		add("version", "%q: want one of %s", s.Version, strings.Join(snmpVersions, ", "))
	}
}

func normaliseAddress(a string) (string, error) {
	if a == "" {
		return "", errors.New("required (host:port)")
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		host, port = a, defaultSNMPPort
		if strings.Count(a, ":") > 1 && !strings.HasPrefix(a, "[") { // a bare IPv6 address
			host = a
		} else if strings.Contains(a, ":") {
			return "", fmt.Errorf("%q is not host:port", a)
		}
	}
	if host == "" {
		return "", fmt.Errorf("%q has no host", a)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return "", fmt.Errorf("%q: port is not in 1..65535", a)
	}
	return net.JoinHostPort(host, port), nil
}

// lineOf returns the line of the node at path (mapping keys and sequence indexes), or of its closest ancestor
// found; 0 when none.
func lineOf(root *yaml.Node, path []string) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := 0
	for _, p := range path {
		var next *yaml.Node
		switch n.Kind {
		case yaml.MappingNode:
			for k := 0; k+1 < len(n.Content); k += 2 {
				if n.Content[k].Value == p {
					line, next = n.Content[k].Line, n.Content[k+1]
				}
			}
		case yaml.SequenceNode:
			if i, err := strconv.Atoi(p); err == nil && i >= 0 && i < len(n.Content) {
				next = n.Content[i]
				line = next.Line
			}
		}
		if next == nil {
			return line
		}
		n = next
	}
	return line
}

// Mapping is the controller's phase mapping for slot k in pkg/ntcip terms, phases in sorted id order.
func (ct Controller) Mapping(k int) ntcip.Mapping {
	m := ntcip.Mapping{Pattern: ct.Slots[k].Pattern, Split: ct.Slots[k].Split, Omit: ct.OmitPhases,
		OffsetReference: offsetReferences[ct.OffsetReference]}
	ids := make([]string, 0, len(ct.Phases))
	for id := range ct.Phases {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		m.Phases = append(m.Phases, ntcip.PhaseMap{PhaseID: id, Phases: ct.Phases[id]})
	}
	return m
}

// CheckTopology checks every controller against the topology: its intersection exists and its phase mapping
// passes ntcip.CheckMapping. data is the configuration file again, for line numbers.
func (c Config) CheckTopology(name string, data []byte, topo topology.Topology) error {
	var root yaml.Node
	_ = yaml.Unmarshal(data, &root)
	var ps []string
	add := func(path []string, msg string) {
		loc := name
		if l := lineOf(&root, path); l > 0 {
			loc = fmt.Sprintf("%s:%d", name, l)
		}
		ps = append(ps, fmt.Sprintf("%s: %s: %s", loc, strings.Join(path, "."), msg))
	}
	for i, ct := range c.Controllers {
		at := func(f ...string) []string { return append([]string{"controllers", strconv.Itoa(i)}, f...) }
		k := slices.IndexFunc(topo.Intersections, func(in topology.Intersection) bool { return in.ID == ct.Intersection })
		if k < 0 {
			add(at("intersection"), fmt.Sprintf("%q is not in the topology %s", ct.Intersection, c.Topology))
			continue
		}
		if topo.Intersections[k].ForecastOnly {
			add(at("intersection"), fmt.Sprintf("%q is forecast_only in the topology %s: it has no signals to drive", ct.Intersection, c.Topology))
			continue
		}
		for s := range ct.Slots {
			err := ntcip.CheckMapping(topo.Intersections[k], ct.Mapping(s))
			var me *ntcip.MappingError
			if errors.As(err, &me) {
				for _, p := range me.Problems {
					field := strings.Split(p.Field, ".")
					if strings.HasPrefix(p.Field, "omit[") {
						field = []string{"omit_phases", strings.TrimSuffix(strings.TrimPrefix(p.Field, "omit["), "]")}
					} else if p.Field == "pattern" || p.Field == "split" {
						field = []string{"slots", strconv.Itoa(s), p.Field}
					}
					add(at(field...), p.Msg)
				}
			}
			if s == 0 && err != nil {
				break // the second slot's phase problems are the same
			}
		}
	}
	if len(ps) > 0 {
		return &ConfigError{File: name, Problems: ps}
	}
	return nil
}

// Read returns the secret: the file's content without its trailing newline, or the environment variable.
func (s *Secret) Read(lookup func(string) (string, bool), readFile func(string) ([]byte, error)) (string, error) {
	if s == nil {
		return "", nil
	}
	if s.File != "" {
		b, err := readFile(s.File)
		if err != nil {
			return "", fmt.Errorf("read secret file: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	v, ok := lookup(s.Env)
	if !ok || v == "" {
		return "", fmt.Errorf("environment variable %s is not set", s.Env)
	}
	return v, nil
}
