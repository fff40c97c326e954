package topology

import (
	"fmt"
	"strings"
	"time"

	// The zone database is embedded so that a time_zone valid on one machine is valid on every machine, the
	// distroless images included (time.LoadLocation reads the system's database first and falls back to it).
	_ "time/tzdata"
)

// DefaultTimeZone is the zone of a topology without time_zone. It is UTC because every service and greenwave
// eval on csv data computed their calendar features in UTC before the field existed, so topology files written
// then keep their meaning. Deployments outside UTC set time_zone.
const DefaultTimeZone = "UTC"

// SCATSTimeZone is the zone ImportSCATS writes by default: the Boroondara (Melbourne) controllers count on
// Melbourne wall-clock time.
const SCATSTimeZone = "Australia/Melbourne"

// Zone returns the IANA name of the intersections' time zone: TimeZone, or DefaultTimeZone when unset.
func (t Topology) Zone() string {
	if t.TimeZone == "" {
		return DefaultTimeZone
	}
	return t.TimeZone
}

// Location loads Zone. Every local calendar of Greenwave — the cleaner's time-of-day, weekday, holiday and
// profile features, signal-control's hour-of-week profile, greenwave eval — is computed in it, so live and
// offline cannot disagree on what "Monday 08:00" is. (The trainer and the predictor need no zone: they read
// the local time of week from the cleaner's day-of-week features.)
func (t Topology) Location() (*time.Location, error) {
	return loadZone(t.Zone())
}

// LocationWith is Location for a service that also has a time-zone setting (setting names it, for example
// "CLEANER_TIME_ZONE"; value is its value). The setting is only a guard: empty (the default) takes the
// topology's zone, and a value that differs from it is an error naming both, never a silent second source of
// truth. Zones are compared by name: "Etc/UTC" and "UTC" are different settings even though they agree.
func (t Topology) LocationWith(setting, value string) (*time.Location, error) {
	loc, err := t.Location()
	if err != nil {
		return nil, fmt.Errorf("topology time_zone: %w", err)
	}
	if value == "" || value == t.Zone() {
		return loc, nil
	}
	if _, err := loadZone(value); err != nil {
		return nil, fmt.Errorf("%s: %w", setting, err)
	}
	from := fmt.Sprintf("time_zone %q", t.Zone())
	if t.TimeZone == "" {
		from = fmt.Sprintf("no time_zone (default %q)", DefaultTimeZone)
	}
	return nil, fmt.Errorf("%s=%q disagrees with the topology, which has %s: the topology is the one source of the "+
		"intersections' time zone, so set time_zone in the topology file and unset %s (or set it to the same zone)",
		setting, value, from, setting)
}

// CheckZoneSetting reports a problem with a service's time-zone setting on its own (before the topology is
// loaded): empty is fine, anything else must be a zone name LoadLocation accepts.
func CheckZoneSetting(setting, value string) error {
	if value == "" {
		return nil
	}
	if _, err := loadZone(value); err != nil {
		return fmt.Errorf("%s: %w", setting, err)
	}
	return nil
}

// loadZone is time.LoadLocation restricted to names that mean the same zone on every machine: "Local" (the
// machine's own zone) and surrounding white space are refused, and "" is not a zone here (callers map unset
// to DefaultTimeZone first).
func loadZone(name string) (*time.Location, error) {
	switch {
	case name == "":
		return nil, fmt.Errorf("empty time zone name")
	case name == "Local":
		return nil, fmt.Errorf("time zone %q is the machine's own zone, which differs between machines: name an IANA zone such as %q", name, SCATSTimeZone)
	case strings.TrimSpace(name) != name:
		return nil, fmt.Errorf("time zone %q has surrounding white space", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q (want an IANA name such as %q or %q): %w", name, DefaultTimeZone, SCATSTimeZone, err)
	}
	return loc, nil
}
