package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/cli"
	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/devstate"
	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/stack"
	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/stack/stacktest"
)

// fakeDir holds the fake service under every service name, built once by TestMain; tests link it into their
// own directory so they can tell their processes apart.
var fakeDir string

func TestMain(m *testing.M) {
	// Never pick up the addresses of a `greenwave dev` someone runs on this machine.
	os.Setenv(devstate.EnvFile, "off")
	os.Exit(stacktest.Main(m, &fakeDir, stack.Services...))
}

// fakeBins returns a fresh directory of fake service binaries.
func fakeBins(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range stack.Services {
		if err := os.Link(filepath.Join(fakeDir, n), filepath.Join(dir, n)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// running lists the live processes whose executable lies in dir.
func running(dir string) []string {
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		exe, err := os.Readlink(filepath.Join(p, "exe"))
		if err != nil || !strings.HasPrefix(exe, dir+string(filepath.Separator)) {
			continue
		}
		if stat, err := os.ReadFile(filepath.Join(p, "stat")); err == nil {
			s := string(stat)
			if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) && s[i+2] == 'Z' {
				continue // a zombie has exited
			}
		}
		out = append(out, filepath.Base(p)+" "+exe)
	}
	return out
}

// requireNoneRunning fails unless every process started from dir is gone within a few seconds.
func requireNoneRunning(t *testing.T, dir string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := running(dir)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes left behind: %v", left)
		}
		time.Sleep(20 * time.Millisecond) // polling a deadline, not synchronisation
	}
}

// lineWriter collects output and signals the first line containing a marker.
type lineWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	marker string
	seen   chan struct{}
	once   sync.Once
}

func newLineWriter(marker string) *lineWriter {
	return &lineWriter{marker: marker, seen: make(chan struct{})}
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.marker) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

func (w *lineWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func devArgs(t *testing.T, extra ...string) []string {
	// --state-file in a temporary directory: a test never touches the user's real dev state file.
	return append([]string{"dev", "--log-file", filepath.Join(t.TempDir(), "dev.log"), "--state-file", filepath.Join(t.TempDir(), "dev.json"),
		"--speed", "max", "--backfill", "2h"}, extra...)
}

func TestRunDispatch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{"help", []string{"help"}, 0, "dev ", ""},
		{"--help", []string{"--help"}, 0, "Commands:", ""},
		{"no command", nil, 2, "", "no command given"},
		{"unknown", []string{"frobnicate"}, 2, "", `unknown command "frobnicate"`},
		{"dev help", []string{"dev", "--help"}, 0, "", "Usage: greenwave dev"},
		{"help dev", []string{"help", "dev"}, 0, "", "--speed"},
		{"bad flag", []string{"dev", "--nope"}, 2, "", "see greenwave dev --help"},
		{"bad speed", []string{"dev", "--speed", "0"}, 2, "", `"max"`},
		{"stray argument", []string{"dev", "now"}, 2, "", `unexpected arguments ["now"]`},
		{"bad brokers", []string{"dev", "--brokers", "kafka"}, 2, "", `--brokers: "kafka" is not host:port`},
		{"create topics without brokers", []string{"dev", "--create-topics"}, 2, "", "--create-topics and --topic-prefix need --brokers"},
		{"broker port with brokers", []string{"dev", "--brokers", "k:9093", "--broker-port", "9092"}, 2, "", "--broker-port is for the embedded broker"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tc.args, &stdout, &stderr)
			if code := cli.ExitCode(err, &stderr); code != tc.wantCode {
				t.Errorf("exit code %d, want %d (err %v)", code, tc.wantCode, err)
			}
			if !strings.Contains(stdout.String(), tc.wantStdout) {
				t.Errorf("stdout %q lacks %q", stdout.String(), tc.wantStdout)
			}
			if !strings.Contains(stderr.String(), tc.wantStderr) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tc.wantStderr)
			}
		})
	}
	if err := run(context.Background(), []string{"dev", "-h"}, io.Discard, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("dev -h = %v, want flag.ErrHelp", err)
	}
}

// Not parallel: the dev tests set GREENWAVE_BIN_DIR, and XDG_CACHE_HOME, under which the embedded broker keeps its
// log.
func TestDevJSON(t *testing.T) {
	bins := fakeBins(t)
	t.Setenv(stack.EnvBinDir, bins)
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	var stdout, stderr bytes.Buffer
	start := time.Now()
	err := run(context.Background(), devArgs(t, "--json", "--for", "2s", "--summary", "500ms"), &stdout, &stderr)
	if err != nil {
		t.Fatalf("dev: %v\nstderr:\n%s", err, stderr.String())
	}
	requireNoneRunning(t, bins)

	lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
	var ready struct {
		Event    string                       `json:"event"`
		Broker   string                       `json:"broker"`
		Services map[string]map[string]string `json:"services"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &ready); err != nil || ready.Event != "ready" {
		t.Fatalf("first line %q is no ready event: %v", lines[0], err)
	}
	if ready.Broker == "" || len(ready.Services) != 5 || ready.Services["signalcontrol"]["grpc"] == "" {
		t.Errorf("ready event %+v", ready)
	}
	var plans, summaries int
	var final map[string]any
	for i, l := range lines[1:] {
		var ev map[string]any
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("line %d %q: %v", i+2, l, err)
		}
		switch ev["event"] {
		case "plan":
			plans++
			plan := ev["plan"].(map[string]any)
			if plan["intersection_id"] != "I-100" || plan["reason"] != "PLAN_REASON_FIXED_TIME" || plan["valid_from"] == nil {
				t.Errorf("plan event %s", l)
			}
		case "summary":
			summaries++
			if ev["final"] == true {
				final = ev
				if i != len(lines)-2 {
					t.Errorf("final summary on line %d of %d", i+2, len(lines))
				}
			}
		default:
			t.Errorf("unknown event in %s", l)
		}
	}
	if plans == 0 || summaries < 3 || final == nil {
		t.Fatalf("%d plans, %d summaries, final %v; stdout:\n%s", plans, summaries, final, stdout.String())
	}
	sent, accepted := final["readings_sent"].(float64), final["readings_accepted"].(float64)
	if sent == 0 || accepted != sent || final["batches_acked"] != final["batches_sent"] {
		t.Errorf("final summary %v: want every batch sent to be acked", final)
	}
	// The fake collector rejects readings from the future: none may be.
	if len(final["rejected"].(map[string]any)) != 0 {
		t.Errorf("rejections %v", final["rejected"])
	}
	simTime, err := time.Parse(time.RFC3339, final["sim_time"].(string))
	if err != nil || simTime.After(time.Now()) || simTime.Before(start.Add(-2*time.Hour-time.Minute)) {
		t.Errorf("sim_time %v (%v): want it between the backfill start and now", final["sim_time"], err)
	}
}

func TestDevHuman(t *testing.T) {
	bins := fakeBins(t)
	t.Setenv(stack.EnvBinDir, bins)
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), devArgs(t, "--for", "1s"), &stdout, &stderr); err != nil {
		t.Fatalf("dev: %v\nstderr:\n%s", err, stderr.String())
	}
	requireNoneRunning(t, bins)
	out := stdout.String()
	for _, want := range []string{
		"greenwave dev ready in ",
		"  signalcontrol grpc 127.0.0.1:",
		"plan I-100 @2026-11-26T07:35Z cycle 70s  NS 34s EW 24s  fixed_time: fake: no predictions  [initial]\n",
		"plan I-100 @2026-11-26T07:40Z cycle 70s  NS 34s EW 24s  fixed_time: fake: no predictions\n",
		"final summary: up 1s  sim ",
		"plans ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, " | ") {
		t.Errorf("service logs on stdout without --logs:\n%s", out)
	}
}

func TestDevStopsOnInterrupt(t *testing.T) {
	bins := fakeBins(t)
	t.Setenv(stack.EnvBinDir, bins)
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	stdout := newLineWriter(`"event":"ready"`)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	stateFile := filepath.Join(t.TempDir(), "dev.json")
	go func() {
		done <- run(ctx, devArgs(t, "--json", "--logs", "--state-file", stateFile), stdout, io.Discard)
	}()
	select {
	case <-stdout.seen:
	case err := <-done:
		t.Fatalf("dev ended before ready: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("dev not ready within 60s")
	}
	// While dev runs, its addresses are where the other commands look for them.
	lookup := func(k string) (string, bool) { return stateFile, k == devstate.EnvFile }
	st := devstate.Load(lookup)
	if st == nil || len(st.Brokers) == 0 || len(st.Services) != len(stack.Services) || st.GRPC("trainer", "") == "" || st.HTTP("collector", "") == "" {
		t.Fatalf("dev state while running = %+v", st)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("dev after interrupt = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("dev did not stop within 10s of the interrupt")
	}
	requireNoneRunning(t, bins)
	if _, err := os.Stat(stateFile); !os.IsNotExist(err) {
		t.Errorf("dev state file left behind after exit (%v)", err)
	}
}

func TestDevReportsCrashedService(t *testing.T) {
	bins := fakeBins(t)
	t.Setenv(stack.EnvBinDir, bins)
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("FAKE_EXIT_AFTER", "1s") // every fake exits; the first one is reported
	err := run(context.Background(), devArgs(t, "--json"), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "exited unexpectedly: exit status 3") ||
		!strings.Contains(err.Error(), "exiting as told") {
		t.Fatalf("dev = %v, want the crashed service named with its last output", err)
	}
	requireNoneRunning(t, bins)
}

func TestDevNotReady(t *testing.T) {
	bins := fakeBins(t)
	t.Setenv(stack.EnvBinDir, bins)
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("FAKE_NEVER_READY", "1")
	var stdout bytes.Buffer
	err := run(context.Background(), devArgs(t, "--json", "--ready-timeout", "500ms"), &stdout, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "not ready after") || !strings.Contains(err.Error(), "told never to be ready") {
		t.Fatalf("dev = %v, want the services that are not ready", err)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout %q before readiness", stdout.String())
	}
	requireNoneRunning(t, bins)
}

// TestBinarySignals runs the greenwave binary: SIGTERM stops it cleanly, and after SIGKILL its children still
// die (parent-death signal).
func TestBinarySignals(t *testing.T) {
	t.Parallel()
	exe := filepath.Join(t.TempDir(), "greenwave")
	if out, err := exec.Command("go", "build", "-o", exe, ".").CombinedOutput(); err != nil {
		t.Fatalf("build greenwave: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		sig      syscall.Signal
		wantExit int
	}{
		{syscall.SIGTERM, 0},
		{syscall.SIGINT, 0},
		{syscall.SIGKILL, -1},
	} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			t.Parallel()
			bins := fakeBins(t)
			cmd := exec.Command(exe, devArgs(t, "--json")...)
			cmd.Env = append(os.Environ(), stack.EnvBinDir+"="+bins, "XDG_CACHE_HOME="+t.TempDir())
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			pipe, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cmd.Process.Kill() })
			first, err := bufio.NewReader(pipe).ReadString('\n')
			if err != nil || !strings.Contains(first, `"event":"ready"`) {
				t.Fatalf("first line %q, %v; stderr:\n%s", first, err, stderr.String())
			}
			if len(running(bins)) != 5 {
				t.Fatalf("running services: %v", running(bins))
			}
			go io.Copy(io.Discard, pipe) //nolint:errcheck // keep the pipe drained
			start := time.Now()
			if err := cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			err = cmd.Wait()
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("stopping took %s", took)
			}
			if code := cmd.ProcessState.ExitCode(); code != tc.wantExit {
				t.Errorf("exit code %d (%v), want %d; stderr:\n%s", code, err, tc.wantExit, stderr.String())
			}
			requireNoneRunning(t, bins)
		})
	}
}

// TestMakeRunCtrlC runs `make run`'s recipe shape (make → greenwave dev) on a pseudo-terminal and presses Ctrl-C:
// greenwave takes the terminal's foreground (takeTerminal), so only it gets the SIGINT, and make exits 0 instead
// of killing itself with the signal.
func TestMakeRunCtrlC(t *testing.T) {
	t.Parallel()
	makePath, err := exec.LookPath("make")
	if err != nil {
		t.Skip("make not installed")
	}
	dir := t.TempDir()
	exe := filepath.Join(dir, "greenwave")
	if out, err := exec.Command("go", "build", "-o", exe, ".").CombinedOutput(); err != nil {
		t.Fatalf("build greenwave: %v\n%s", err, out)
	}
	makefile := filepath.Join(dir, "Makefile")
	recipe := "run:\n\t$(GW) dev --json --speed max --backfill 2h --log-file $(LOG)\n"
	if err := os.WriteFile(makefile, []byte(recipe), 0o644); err != nil {
		t.Fatal(err)
	}
	master, slave := openPTY(t)
	defer master.Close()

	bins := fakeBins(t)
	cmd := exec.Command(makePath, "-f", makefile, "run", "GW="+exe, "LOG="+filepath.Join(dir, "dev.log"))
	cmd.Env = append(os.Environ(), stack.EnvBinDir+"="+bins, "XDG_CACHE_HOME="+t.TempDir())
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	// A session of its own with the terminal as its controlling terminal, as a login shell gives make.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	out := newLineWriter(`"event":"ready"`)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, _ = io.Copy(out, master) // ends with EIO once every process holding the terminal has exited
	}()
	select {
	case <-out.seen:
	case <-time.After(60 * time.Second):
		t.Fatalf("dev not ready within 60s; terminal:\n%s", out.String())
	}
	if _, err := master.Write([]byte{0x03}); err != nil { // Ctrl-C
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		if err != nil {
			t.Errorf("make run after Ctrl-C: %v, want exit status 0; terminal:\n%s", err, out.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("make run did not end within 20s of Ctrl-C; terminal:\n%s", out.String())
	}
	select {
	case <-copied:
	case <-time.After(10 * time.Second):
		t.Error("terminal still held open 10s after make exited")
	}
	// Ctrl-C right after the ready line may reach dev before its main loop ("interrupted" during the last start-up
	// steps) or in it ("stopping on signal"): both are a clean stop.
	if s := out.String(); !(strings.Contains(s, "stopping on signal") || strings.Contains(s, "greenwave dev: interrupted")) || strings.Contains(s, "Interrupt") {
		t.Errorf("terminal output:\n%s", s)
	}
	requireNoneRunning(t, bins)
}

// openPTY opens a pseudo-terminal pair: the master end to type into and read from, and the slave end for the
// child's stdio.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Fatalf("pty number: %v", err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Fatalf("open pty slave: %v", err)
	}
	return m, s
}
