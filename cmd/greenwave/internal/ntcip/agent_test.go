package ntcip

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/greenwave-city/greenwave/pkg/ntcip"
)

// Credentials of the simulated controller's SNMPv3 user and v2c community.
const (
	testUser      = "greenwave"
	testAuthPass  = "auth-pass-123"
	testPrivPass  = "priv-pass-456"
	testCommunity = "rw-community"
)

// testAgent is net-snmp's snmpd serving testdata/ntcip_agent.py, a simulated NTCIP 1202 controller, on a
// loopback UDP port.
type testAgent struct {
	addr, control, state string
}

// requireSnmpd skips the test when snmpd is not installed, unless GREENWAVE_REQUIRE_SNMPD=1 (CI) makes it fail.
func requireSnmpd(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("snmpd")
	if err != nil {
		path, err = exec.LookPath("/usr/sbin/snmpd")
	}
	if err != nil {
		if os.Getenv("GREENWAVE_REQUIRE_SNMPD") == "1" {
			t.Fatalf("snmpd not found and GREENWAVE_REQUIRE_SNMPD=1: apt-get install snmpd")
		}
		t.Skip("snmpd not installed (apt-get install snmpd); set GREENWAVE_REQUIRE_SNMPD=1 to fail instead")
	}
	if _, err := exec.LookPath("python3"); err != nil {
		t.Fatalf("python3 is needed for the simulated controller: %v", err)
	}
	return path
}

// startAgent runs snmpd in the foreground as the test's child and waits until it answers.
func startAgent(t *testing.T) *testAgent {
	t.Helper()
	snmpd := requireSnmpd(t)
	dir := t.TempDir()
	script, err := filepath.Abs("testdata/ntcip_agent.py")
	if err != nil {
		t.Fatal(err)
	}
	a := &testAgent{addr: freeUDP(t), control: filepath.Join(dir, "control.json"), state: filepath.Join(dir, "state.json")}
	a.setControl(t, nil)
	conf := filepath.Join(dir, "snmpd.conf")
	body := fmt.Sprintf(`agentaddress udp:%s
rwcommunity %s 127.0.0.1
createUser %s SHA "%s" AES "%s"
rwuser %s priv
pass_persist .1.3.6.1.4.1.1206.4.2.1 /usr/bin/env python3 %s %s %s
`, a.addr, testCommunity, testUser, testAuthPass, testPrivPass, testUser, script, a.control, a.state)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	log, err := os.Create(filepath.Join(dir, "snmpd.log"))
	if err != nil {
		t.Fatal(err)
	}
	// -I -smux: parallel tests would fight over the SMUX port.
	cmd := exec.Command(snmpd, "-f", "-Lo", "-C", "-I", "-smux", "-c", conf)
	cmd.Env = append(os.Environ(), "SNMP_PERSISTENT_DIR="+filepath.Join(dir, "persist"), "MIBS=", "MIBDIRS="+dir)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start snmpd: %v", err)
	}
	t.Cleanup(func() {
		a.setControl(t, nil) // a hung handler answers, and exits with snmpd
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		log.Close()
	})
	// Wait until snmpd and the handler answer (a deadline on a poll, not synchronisation by sleeping).
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := a.getV2(ntcip.OIDSystemPatternControl); err == nil {
			return a
		} else if time.Now().After(deadline) {
			b, _ := os.ReadFile(log.Name())
			t.Fatalf("snmpd on %s does not answer: %v\n%s", a.addr, err, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freeUDP(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := c.LocalAddr().String()
	c.Close()
	return addr
}

// setControl makes the simulated controller refuse, hang on or drift the OIDs under the given prefixes.
func (a *testAgent) setControl(t *testing.T, ctl map[string][]string) {
	t.Helper()
	b, _ := json.Marshal(ctl)
	tmp := a.control + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, a.control); err != nil {
		t.Fatal(err)
	}
}

// getV2 reads one INTEGER instance over SNMPv2c.
func (a *testAgent) getV2(oid string) (int, error) {
	host, port, _ := net.SplitHostPort(a.addr)
	p, _ := strconv.Atoi(port)
	g := &gosnmp.GoSNMP{Target: host, Port: uint16(p), Version: gosnmp.Version2c, Community: testCommunity, Timeout: 2 * time.Second, Retries: 0}
	if err := g.Connect(); err != nil {
		return 0, err
	}
	defer g.Conn.Close()
	r, err := g.Get([]string{oid})
	if err != nil {
		return 0, err
	}
	if r.Error != gosnmp.NoError || len(r.Variables) != 1 || r.Variables[0].Type != gosnmp.Integer {
		return 0, fmt.Errorf("get %s: %v %v", oid, r.Error, r.Variables)
	}
	return int(gosnmp.ToBigInt(r.Variables[0].Value).Int64()), nil
}

// setV2 writes one INTEGER instance over SNMPv2c, as a technician at the controller would.
func (a *testAgent) setV2(oid string, v int) error {
	host, port, _ := net.SplitHostPort(a.addr)
	p, _ := strconv.Atoi(port)
	g := &gosnmp.GoSNMP{Target: host, Port: uint16(p), Version: gosnmp.Version2c, Community: testCommunity, Timeout: 2 * time.Second, Retries: 0}
	if err := g.Connect(); err != nil {
		return err
	}
	defer g.Conn.Close()
	r, err := g.Set([]gosnmp.SnmpPDU{{Name: oid, Type: gosnmp.Integer, Value: v}})
	if err != nil {
		return err
	}
	if r.Error != gosnmp.NoError {
		return fmt.Errorf("set %s: %v", oid, r.Error)
	}
	return nil
}

// values reads the controller's objects from its state file, which the handler writes after every SET.
func (a *testAgent) values(t *testing.T) map[string]int {
	t.Helper()
	b, err := os.ReadFile(a.state)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]int
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// value is one object's value from the state file (0 when never written).
func (a *testAgent) value(t *testing.T, oid string) int {
	t.Helper()
	return a.values(t)[strings.TrimPrefix(oid, ".")]
}
