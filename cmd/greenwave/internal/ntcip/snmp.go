package ntcip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/gosnmp/gosnmp"

	"github.com/greenwave-city/greenwave/pkg/ntcip"
)

// Failure reasons of a write, the reason label of greenwave_ntcip_write_failures_total.
const (
	// ReasonUnreachable: no (valid) response: timeout, network error, SNMPv3 authentication failure.
	ReasonUnreachable = "unreachable"
	// ReasonRefused: the controller answered with an SNMP error (the SET or GET was refused) or lacks an object.
	ReasonRefused = "refused"
	// ReasonReadBack: a value read back differs from the one written.
	ReasonReadBack = "readback"
	// ReasonClearance: the controller's yellow or red clearance differs from the plan's (the topology's).
	ReasonClearance = "clearance"
	// ReasonMinGreen: the controller's minimum green of a phase is longer than the plan's green.
	ReasonMinGreen = "min_green"
)

// phaseChecks are the controller's phase-table values checked before a write (nil: not checked): clearances
// must equal, minimum greens must not exceed the Var's value.
type phaseChecks struct {
	clearances, minGreenLimits []ntcip.Var
}

// WriteError is a failed step of writing a plan to a controller.
type WriteError struct {
	// Stage is the step: read (systemPatternControl before writing), release, split, pattern, verify, activate.
	Stage string
	// Reason is ReasonUnreachable, ReasonRefused or ReasonReadBack.
	Reason string
	Err    error
}

func (e *WriteError) Error() string { return fmt.Sprintf("%s (%s): %v", e.Stage, e.Reason, e.Err) }

func (e *WriteError) Unwrap() error { return e.Err }

// snmpSecrets are a controller's resolved secrets.
type snmpSecrets struct {
	community, authPass, privPass string
}

// session is one SNMP conversation with a controller. It is not safe for concurrent use.
type session struct {
	g *gosnmp.GoSNMP
}

// openSession prepares a session to ct (UDP: nothing is sent until the first request).
func openSession(ctx context.Context, ct Controller, cr snmpSecrets) (*session, error) {
	host, port, err := net.SplitHostPort(ct.Address)
	if err != nil {
		return nil, fmt.Errorf("address %q: %w", ct.Address, err)
	}
	p, _ := strconv.Atoi(port)
	g := &gosnmp.GoSNMP{Target: host, Port: uint16(p), Transport: "udp", Timeout: ct.SNMP.Timeout, Retries: *ct.SNMP.Retries,
		Context: ctx, MaxOids: gosnmp.MaxOids}
	switch ct.SNMP.Version {
	case "v1":
		g.Version, g.Community = gosnmp.Version1, cr.community
	case "v2c":
		g.Version, g.Community = gosnmp.Version2c, cr.community
	default:
		g.Version, g.SecurityModel, g.MsgFlags = gosnmp.Version3, gosnmp.UserSecurityModel, gosnmp.AuthPriv
		g.SecurityParameters = &gosnmp.UsmSecurityParameters{UserName: ct.SNMP.User,
			AuthenticationProtocol: authProtocol(ct.SNMP.AuthProtocol), AuthenticationPassphrase: cr.authPass,
			PrivacyProtocol: privProtocol(ct.SNMP.PrivProtocol), PrivacyPassphrase: cr.privPass}
	}
	if err := g.Connect(); err != nil {
		return nil, fmt.Errorf("connect to %s: %w", ct.Address, err)
	}
	return &session{g: g}, nil
}

func (s *session) Close() error { return s.g.Conn.Close() }

func authProtocol(name string) gosnmp.SnmpV3AuthProtocol {
	return map[string]gosnmp.SnmpV3AuthProtocol{"MD5": gosnmp.MD5, "SHA": gosnmp.SHA, "SHA224": gosnmp.SHA224,
		"SHA256": gosnmp.SHA256, "SHA384": gosnmp.SHA384, "SHA512": gosnmp.SHA512}[name]
}

func privProtocol(name string) gosnmp.SnmpV3PrivProtocol {
	return map[string]gosnmp.SnmpV3PrivProtocol{"DES": gosnmp.DES, "AES": gosnmp.AES, "AES192": gosnmp.AES192,
		"AES256": gosnmp.AES256, "AES192C": gosnmp.AES192C, "AES256C": gosnmp.AES256C}[name]
}

// set writes vars as INTEGERs, at most MaxOids per request.
func (s *session) set(stage string, vars []ntcip.Var) error {
	for len(vars) > 0 {
		n := min(len(vars), s.g.MaxOids)
		pdus := make([]gosnmp.SnmpPDU, n)
		for i, v := range vars[:n] {
			pdus[i] = gosnmp.SnmpPDU{Name: v.OID, Type: gosnmp.Integer, Value: v.Value}
		}
		resp, err := s.g.Set(pdus)
		if err != nil {
			return &WriteError{Stage: stage, Reason: ReasonUnreachable, Err: err}
		}
		if resp.Error != gosnmp.NoError {
			return &WriteError{Stage: stage, Reason: ReasonRefused, Err: fmt.Errorf("SET %s: %s", errorOID(resp, vars[:n]), resp.Error)}
		}
		vars = vars[n:]
	}
	return nil
}

func errorOID(resp *gosnmp.SnmpPacket, vars []ntcip.Var) string {
	if i := int(resp.ErrorIndex); i >= 1 && i <= len(vars) {
		return fmt.Sprintf("%s = %d", vars[i-1].OID, vars[i-1].Value)
	}
	return fmt.Sprintf("request of %d objects", len(vars))
}

// get reads INTEGER instances, at most MaxOids per request.
func (s *session) get(stage string, oids []string) (map[string]int, error) {
	out := make(map[string]int, len(oids))
	for len(oids) > 0 {
		n := min(len(oids), s.g.MaxOids)
		resp, err := s.g.Get(oids[:n])
		if err != nil {
			return nil, &WriteError{Stage: stage, Reason: ReasonUnreachable, Err: err}
		}
		if resp.Error != gosnmp.NoError {
			return nil, &WriteError{Stage: stage, Reason: ReasonRefused, Err: fmt.Errorf("GET: %s", resp.Error)}
		}
		for _, v := range resp.Variables {
			name := strings.TrimPrefix(v.Name, ".")
			switch v.Type {
			case gosnmp.Integer, gosnmp.Gauge32, gosnmp.Counter32, gosnmp.Uinteger32:
				out[name] = int(gosnmp.ToBigInt(v.Value).Int64())
			default:
				return nil, &WriteError{Stage: stage, Reason: ReasonRefused, Err: fmt.Errorf("GET %s: %s", name, v.Type)}
			}
		}
		oids = oids[n:]
	}
	return out, nil
}

// verify reads vars back and compares.
func (s *session) verify(stage string, vars []ntcip.Var) error {
	oids := make([]string, len(vars))
	for i, v := range vars {
		oids[i] = v.OID
	}
	got, err := s.get(stage, oids)
	if err != nil {
		return err
	}
	var diffs []string
	for _, v := range vars {
		if g, ok := got[v.OID]; !ok || g != v.Value {
			diffs = append(diffs, fmt.Sprintf("%s = %d, want %d", v.OID, g, v.Value))
		}
	}
	if len(diffs) > 0 {
		return &WriteError{Stage: stage, Reason: ReasonReadBack, Err: fmt.Errorf("read back %s", strings.Join(diffs, ", "))}
	}
	return nil
}

// atMost reads vars and fails with reason unless every value is at most the Var's.
func (s *session) atMost(stage, reason string, vars []ntcip.Var) error {
	if len(vars) == 0 {
		return nil
	}
	oids := make([]string, len(vars))
	for i, v := range vars {
		oids[i] = v.OID
	}
	got, err := s.get(stage, oids)
	if err != nil {
		return err
	}
	var over []string
	for _, v := range vars {
		if got[v.OID] > v.Value {
			over = append(over, fmt.Sprintf("%s = %d, the plan's green is %d", v.OID, got[v.OID], v.Value))
		}
	}
	if len(over) > 0 {
		return &WriteError{Stage: stage, Reason: reason, Err: fmt.Errorf("the controller's minimum green (s) is longer than the plan's green: %s", strings.Join(over, ", "))}
	}
	return nil
}

// write puts t into the controller and activates it, choosing among the slots the one not commanded now; see
// docs/ntcip.md, Write sequence. First it reads the phase-table values of checks: a controller whose yellow or
// red clearance differs from the topology's, or whose minimum green exceeds a plan's green, is not written to. It returns the slot activated, or a *WriteError. Nothing is activated unless
// every split and pattern object read back equal to what was written.
func (s *session) write(slots []Slot, t ntcip.Timing, checks phaseChecks) (int, error) {
	if err := s.verify("clearance", checks.clearances); err != nil {
		var we *WriteError
		if errors.As(err, &we) && we.Reason == ReasonReadBack {
			we.Reason = ReasonClearance
			we.Err = fmt.Errorf("the controller's clearances (tenths of seconds) are not the topology's: %w", we.Err)
		}
		return -1, err
	}
	if err := s.atMost("min_green", ReasonMinGreen, checks.minGreenLimits); err != nil {
		return -1, err
	}
	cur, err := s.get("read", []string{ntcip.OIDSystemPatternControl})
	if err != nil {
		return -1, err
	}
	commanded := cur[ntcip.OIDSystemPatternControl]
	k := -1
	for i, sl := range slots {
		if sl.Pattern != commanded {
			k = i
			break
		}
	}
	if k < 0 {
		// The only slot is running: hand the controller back to its own schedule while the slot is rewritten,
		// so that it never runs a half-written pattern.
		if err := s.set("release", []ntcip.Var{{OID: ntcip.OIDSystemPatternControl, Value: ntcip.SystemPatternStandby}}); err != nil {
			return -1, err
		}
		k = 0
	}
	t.Pattern, t.Split = slots[k].Pattern, slots[k].Split
	splits, pattern := t.SplitVars(), t.PatternVars()
	if err := s.set("split", splits); err != nil {
		return -1, err
	}
	if err := s.set("pattern", pattern); err != nil {
		return -1, err
	}
	if err := s.verify("verify", append(splits, pattern...)); err != nil {
		return -1, err
	}
	act := []ntcip.Var{t.ActivateVar()}
	if err := s.set("activate", act); err != nil {
		return -1, err
	}
	if err := s.verify("activate", act); err != nil {
		return -1, err
	}
	return k, nil
}
