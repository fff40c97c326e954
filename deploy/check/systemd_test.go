package check

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// requireSystemd is the environment variable that makes a missing systemd-analyze fail the unit check.
const requireSystemd = "GREENWAVE_REQUIRE_SYSTEMD"

// systemdUnits are the unit files of deploy/systemd: one service per Greenwave service and the target.
func systemdUnits() []string {
	var units []string
	for _, s := range Services() {
		units = append(units, "greenwave-"+s+".service")
	}
	return append(units, "greenwave.target")
}

// TestSystemdUnitsVerify runs `systemd-analyze verify` on the units of deploy/systemd. verify checks that
// ExecStart names an executable, which the installed binaries are not here: the units are copied with
// ExecStart pointing to a stub, after checking that each starts its own binary with its own environment file.
// verify exits 0 even on unknown keys or bad values, so any output fails the test.
func TestSystemdUnitsVerify(t *testing.T) {
	t.Parallel()
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv(requireSystemd) == "1" {
			t.Fatalf("systemd-analyze not found and %s=1: %v", requireSystemd, err)
		}
		t.Skipf("systemd-analyze not found (systemd not installed), units not verified: %v", err)
	}
	dir := t.TempDir()
	stub := filepath.Join(dir, "stub")
	if err := os.WriteFile(stub, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	execStart := regexp.MustCompile(`(?m)^ExecStart=(.*)$`)
	var files []string
	for _, u := range systemdUnits() {
		data := readRepoFile(t, filepath.Join("deploy", "systemd", u))
		if svc, ok := strings.CutSuffix(strings.TrimPrefix(u, "greenwave-"), ".service"); ok {
			for _, want := range []string{"ExecStart=/usr/local/bin/greenwave-" + svc + "\n", "EnvironmentFile=/etc/greenwave/" + svc + ".env\n",
				"WantedBy=greenwave.target\n", "DynamicUser=yes\n", "ProtectSystem=strict\n", "NoNewPrivileges=yes\n", "Restart=on-failure\n"} {
				if !bytes.Contains(data, []byte(want)) {
					t.Errorf("%s: no line %q", u, strings.TrimSpace(want))
				}
			}
			data = execStart.ReplaceAll(data, []byte("ExecStart="+stub))
		}
		path := filepath.Join(dir, u)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, path)
	}
	cmd := exec.Command(analyze, append([]string{"verify", "--man=no"}, files...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestSystemdEnvFilesListEveryVariable: each deploy/systemd/<service>.env lists every variable the service
// reads (set, or commented out with its default) and no variable it does not read.
func TestSystemdEnvFilesListEveryVariable(t *testing.T) {
	t.Parallel()
	line := regexp.MustCompile(`^#?([A-Z][A-Z0-9_]*)=(.*)$`)
	for _, svc := range Services() {
		t.Run(svc, func(t *testing.T) {
			t.Parallel()
			data := readRepoFile(t, filepath.Join("deploy", "systemd", svc+".env"))
			listed := map[string]bool{}
			for i, l := range strings.Split(string(data), "\n") {
				m := line.FindStringSubmatch(l)
				if m == nil {
					continue
				}
				if listed[m[1]] {
					t.Errorf("%s.env:%d: %s listed twice", svc, i+1, m[1])
				}
				listed[m[1]] = true
				if !strings.HasPrefix(l, "#") && strings.ContainsAny(m[2], `"'`) {
					t.Errorf("%s.env:%d: quotes in %s are part of the value for systemd", svc, i+1, m[1])
				}
			}
			var reads []string
			for _, v := range serviceVars[svc] {
				reads = append(reads, v.Name)
				if !listed[v.Name] {
					t.Errorf("%s.env does not list %s", svc, v.Name)
				}
			}
			for name := range listed {
				if !slices.Contains(reads, name) {
					t.Errorf("%s.env lists %s, which %s does not read", svc, name, svc)
				}
			}
		})
	}
}
