package stack_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/stack"
	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/stack/stacktest"
)

// binDir holds the fake service under every service name, built once by TestMain.
var binDir string

func TestMain(m *testing.M) { os.Exit(stacktest.Main(m, &binDir, stack.Services...)) }

func config(out io.Writer, extra map[string][]string) stack.Config {
	return stack.Config{
		Brokers:      []string{"127.0.0.1:1"}, // the fake never dials Kafka
		BinDir:       binDir,
		ExtraEnv:     extra,
		Stdout:       out,
		StartTimeout: 20 * time.Second,
		ReadyTimeout: 20 * time.Second,
		StopTimeout:  5 * time.Second,
	}
}

func start(t *testing.T, cfg stack.Config) *stack.Stack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := stack.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s
}

// gone reports whether pid no longer runs: it does not exist, or it is a zombie waiting for its reaper.
func gone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// The state follows the parenthesised command name: "pid (comm) S ...".
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}

func requireGone(t *testing.T, what string, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !gone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("%s (pid %d) still runs", what, pid)
		}
		time.Sleep(10 * time.Millisecond) // polling a deadline, not synchronisation
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func get(t *testing.T, url string) int {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestStartReadyStop(t *testing.T) {
	t.Parallel()
	var out stacktest.SyncBuffer
	extra := map[string][]string{}
	for _, n := range stack.Services {
		extra[n] = []string{"FAKE_LOG_LINES=3"}
	}
	s := start(t, config(&out, extra))
	if err := s.WaitReady(context.Background()); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	pids := map[string]int{}
	for _, n := range stack.Services {
		a := s.Addrs(n)
		if a.GRPC == "" || a.HTTP == "" {
			t.Fatalf("Addrs(%s) = %+v", n, a)
		}
		if code := get(t, "http://"+a.HTTP+"/healthz"); code != http.StatusOK {
			t.Errorf("%s /healthz = %d", n, code)
		}
		pids[n] = s.Pid(n)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	select {
	case <-s.Done():
	default:
		t.Fatal("Done not closed after Stop")
	}
	if err := s.Wait(); err != nil {
		t.Fatalf("Wait after Stop = %v, want nil", err)
	}
	for n, pid := range pids {
		requireGone(t, n, pid)
	}

	// Every line carries its service's name, padded to the longest name; nothing is lost or torn.
	line := regexp.MustCompile(`^(collector|cleaner|trainer|predictor|signalcontrol) *\| (.*)$`)
	got := map[string][]string{}
	for l := range strings.SplitSeq(strings.TrimSuffix(out.String(), "\n"), "\n") {
		m := line.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("unprefixed line %q", l)
		}
		if want := len("signalcontrol") + 3; strings.Index(l, "| ")+2 != want {
			t.Errorf("prefix width of %q: want text at column %d", l, want)
		}
		got[m[1]] = append(got[m[1]], m[2])
	}
	for _, n := range stack.Services {
		var stdout, stderr int
		for _, l := range got[n] {
			if strings.HasPrefix(l, "stdout line ") {
				stdout++
			}
			if strings.HasPrefix(l, "stderr line ") {
				stderr++
			}
		}
		if stdout != 3 || stderr != 3 {
			t.Errorf("%s: %d stdout and %d stderr lines, want 3 each; got %q", n, stdout, stderr, got[n])
		}
		if last := got[n][len(got[n])-1]; last != "fake "+n+" stopped" {
			t.Errorf("%s: last line %q, want the stop message (output flushed before Stop returns)", n, last)
		}
	}
}

func TestWaitReadyNamesServicesNotReady(t *testing.T) {
	t.Parallel()
	cfg := config(io.Discard, map[string][]string{"trainer": {"FAKE_NEVER_READY=1"}})
	cfg.ReadyTimeout = 500 * time.Millisecond
	s := start(t, cfg)
	err := s.WaitReady(context.Background())
	var nr *stack.NotReadyError
	if !errors.As(err, &nr) {
		t.Fatalf("WaitReady = %v, want *NotReadyError", err)
	}
	if len(nr.Services) != 1 || !strings.Contains(nr.Services["trainer"], "told never to be ready") ||
		!strings.Contains(nr.Services["trainer"], "503") {
		t.Fatalf("not ready: %v", nr.Services)
	}
	if !strings.Contains(err.Error(), "trainer (503") {
		t.Errorf("error %q does not name trainer and its status", err)
	}
}

func TestStopEscalatesToSIGKILL(t *testing.T) {
	t.Parallel()
	cfg := config(io.Discard, map[string][]string{"predictor": {"FAKE_IGNORE_TERM=1"}})
	cfg.StopTimeout = 300 * time.Millisecond
	s := start(t, cfg)
	if err := s.WaitReady(context.Background()); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	pid := s.Pid("predictor")
	err := s.Stop()
	if err == nil || !strings.Contains(err.Error(), "predictor did not exit") {
		t.Fatalf("Stop = %v, want it to name predictor as killed", err)
	}
	for _, n := range []string{"collector", "cleaner", "trainer", "signalcontrol"} {
		if strings.Contains(err.Error(), n) {
			t.Errorf("Stop error names %s, which stopped on SIGTERM: %v", n, err)
		}
	}
	requireGone(t, "predictor", pid)
	if err2 := s.Stop(); err2 == nil || err2.Error() != err.Error() {
		t.Errorf("second Stop = %v, want the first result", err2)
	}
}

func TestStopKillsGrandchildren(t *testing.T) {
	t.Parallel()
	pidFile := filepath.Join(t.TempDir(), "grandchild.pid")
	cfg := config(io.Discard, map[string][]string{"cleaner": {"FAKE_GRANDCHILD_PID_FILE=" + pidFile}})
	cfg.Services = []string{"cleaner"}
	s := start(t, cfg)
	b, err := os.ReadFile(pidFile) // written before the address file
	if err != nil {
		t.Fatal(err)
	}
	gc, err := strconv.Atoi(string(b))
	if err != nil {
		t.Fatal(err)
	}
	if gone(gc) {
		t.Fatalf("grandchild %d not running before Stop", gc)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	requireGone(t, "grandchild", gc)
}

func TestKillAndRestart(t *testing.T) {
	t.Parallel()
	var out stacktest.SyncBuffer
	s := start(t, config(&out, nil))
	if err := s.WaitReady(context.Background()); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	oldPid, oldAddrs := s.Pid("cleaner"), s.Addrs("cleaner")
	if err := s.Kill("cleaner", syscall.SIGKILL); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	requireGone(t, "killed cleaner", oldPid)
	select {
	case <-s.Done():
		t.Fatalf("Done closed by a requested kill: %v", s.Err())
	default:
	}

	if err := s.Restart(context.Background(), "cleaner"); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	newPid, newAddrs := s.Pid("cleaner"), s.Addrs("cleaner")
	if newPid == oldPid || newAddrs.HTTP == "" {
		t.Fatalf("after Restart pid %d (was %d), addrs %+v", newPid, oldPid, newAddrs)
	}
	if newAddrs == oldAddrs {
		t.Logf("restarted cleaner reuses ports %+v", newAddrs)
	}
	if err := s.WaitReady(context.Background()); err != nil {
		t.Fatalf("WaitReady after restart: %v", err)
	}
	waitFor(t, "two start messages of cleaner", func() bool {
		return strings.Count(out.String(), "cleaner       | fake cleaner starting") == 2
	})

	// Restart of a running service stops it first.
	if err := s.Restart(context.Background(), "trainer"); err != nil {
		t.Fatalf("Restart running trainer: %v", err)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if s.Err() != nil {
		t.Fatalf("Err = %v after requested kills and restarts", s.Err())
	}
	requireGone(t, "restarted cleaner", newPid)
	if err := s.Restart(context.Background(), "cleaner"); err == nil {
		t.Fatal("Restart after Stop succeeded")
	}
}

// TestStartExtra runs a second and third instance of one service next to the first: each with its own process,
// addresses, address file and log prefix, the service's environment plus its own, waited for by WaitReady,
// killed, restarted and stopped by name without disturbing the others, and stopped by Stop with the rest.
func TestStartExtra(t *testing.T) {
	t.Parallel()
	var out stacktest.SyncBuffer
	cfg := config(&out, map[string][]string{"cleaner": {"FAKE_LOG_LINES=1"}})
	cfg.Services = []string{"collector", "cleaner"}
	s := start(t, cfg)
	ctx := context.Background()
	second, err := s.StartExtra(ctx, "cleaner")
	if err != nil {
		t.Fatalf("StartExtra: %v", err)
	}
	third, err := s.StartExtra(ctx, "cleaner", "FAKE_NEVER_READY=1")
	if err != nil {
		t.Fatalf("StartExtra with env: %v", err)
	}
	if second != "cleaner#2" || third != "cleaner#3" {
		t.Fatalf("extra instances named %q and %q, want cleaner#2 and cleaner#3", second, third)
	}
	if got, want := s.Instances(), []string{"collector", "cleaner", "cleaner#2", "cleaner#3"}; !slices.Equal(got, want) {
		t.Fatalf("Instances() = %v, want %v", got, want)
	}
	if got := s.Services(); !slices.Equal(got, []string{"collector", "cleaner"}) {
		t.Errorf("Services() = %v, want the configured services only", got)
	}
	pids, addrs := map[int]string{}, map[string]string{}
	for _, n := range s.Instances() {
		pid, a := s.Pid(n), s.Addrs(n)
		if pid == 0 || a.HTTP == "" || a.GRPC == "" {
			t.Fatalf("%s: pid %d, addrs %+v", n, pid, a)
		}
		if other, dup := pids[pid]; dup {
			t.Fatalf("%s and %s share pid %d", n, other, pid)
		}
		if other, dup := addrs[a.HTTP]; dup {
			t.Fatalf("%s and %s share address %s", n, other, a.HTTP)
		}
		pids[pid], addrs[a.HTTP] = n, n
	}

	// The third instance alone got FAKE_NEVER_READY: WaitReady waits for every instance and names it.
	shortCtx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	err = s.WaitReady(shortCtx)
	cancel()
	var nr *stack.NotReadyError
	if !errors.As(err, &nr) || len(nr.Services) != 1 || nr.Services[third] == "" {
		t.Fatalf("WaitReady = %v, want only %s not ready", err, third)
	}
	if err := s.StopExtra(third); err != nil {
		t.Fatalf("StopExtra(%s): %v", third, err)
	}
	if err := s.WaitReady(ctx); err != nil {
		t.Fatalf("WaitReady after stopping %s: %v", third, err)
	}
	if err := s.StopExtra(third); err == nil {
		t.Errorf("StopExtra(%s) twice succeeded", third)
	}
	if err := s.StopExtra("cleaner"); err == nil {
		t.Error("StopExtra of a configured service succeeded")
	}
	if _, err := s.StartExtra(ctx, "trainer"); err == nil {
		t.Error("StartExtra of a service the stack does not run succeeded")
	}
	if _, err := s.StartExtra(ctx, second); err == nil {
		t.Error("StartExtra of an extra instance succeeded")
	}

	// Kill and Restart take the instance's name; the first instance runs on.
	oldPid := s.Pid(second)
	if err := s.Kill(second, syscall.SIGKILL); err != nil {
		t.Fatalf("Kill(%s): %v", second, err)
	}
	requireGone(t, second, oldPid)
	if err := s.Restart(ctx, second); err != nil {
		t.Fatalf("Restart(%s): %v", second, err)
	}
	if err := s.WaitReady(ctx); err != nil {
		t.Fatalf("WaitReady after restarting %s: %v", second, err)
	}
	if pid := s.Pid("cleaner"); gone(pid) {
		t.Fatalf("cleaner (pid %d) gone after killing %s", pid, second)
	}
	fourth, err := s.StartExtra(ctx, "cleaner")
	if err != nil || fourth != "cleaner#4" {
		t.Fatalf("StartExtra after StopExtra = %q, %v; want cleaner#4 (names are not reused)", fourth, err)
	}
	last := map[string]int{"cleaner": s.Pid("cleaner"), second: s.Pid(second), fourth: s.Pid(fourth)}
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if s.Err() != nil {
		t.Fatalf("Err = %v after requested kills and stops", s.Err())
	}
	for n, pid := range last {
		requireGone(t, n, pid)
	}
	if _, err := s.StartExtra(ctx, "cleaner"); err == nil {
		t.Error("StartExtra after Stop succeeded")
	}

	// Every instance's lines carry its name; the service's ExtraEnv reached the extra instances too.
	for _, n := range []string{"cleaner", second, third, fourth} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(n) + ` *\| stdout line 0$`).MatchString(out.String()) {
			t.Errorf("no line of %s with its prefix in:\n%s", n, out.String())
		}
	}
}

// TestExtraInstanceExitIsReported: an extra instance that exits unexpectedly is reported by its own name.
func TestExtraInstanceExitIsReported(t *testing.T) {
	t.Parallel()
	cfg := config(io.Discard, nil)
	cfg.Services = []string{"predictor"}
	s := start(t, cfg)
	name, err := s.StartExtra(context.Background(), "predictor", "FAKE_EXIT_AFTER=200ms")
	if err != nil {
		t.Fatalf("StartExtra: %v", err)
	}
	var ee *stack.ExitError
	if err := s.Wait(); !errors.As(err, &ee) || ee.Service != name || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("Wait = %v, want %s's exit", err, name)
	}
	if err := s.StopExtra(name); err != nil {
		t.Errorf("StopExtra of the exited instance: %v", err)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("Stop of the rest: %v", err)
	}
}

func TestUnexpectedExitIsReported(t *testing.T) {
	t.Parallel()
	s := start(t, config(io.Discard, map[string][]string{"predictor": {"FAKE_EXIT_AFTER=200ms"}}))
	err := s.Wait()
	var ee *stack.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("Wait = %v, want *ExitError", err)
	}
	if ee.Service != "predictor" || !strings.Contains(err.Error(), "predictor") || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("ExitError %+v: %v", ee, err)
	}
	if !strings.Contains(strings.Join(ee.Tail, "\n"), "exiting as told") {
		t.Errorf("Tail %q lacks the last output", ee.Tail)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("Stop of the rest: %v", err)
	}
}

func TestStartFailsWhenAChildExits(t *testing.T) {
	t.Parallel()
	_, err := stack.Start(context.Background(), config(io.Discard, map[string][]string{"trainer": {"FAKE_EXIT_AT_START=1"}}))
	if err == nil || !strings.Contains(err.Error(), "trainer exited during start-up") || !strings.Contains(err.Error(), "told to fail at start") {
		t.Fatalf("Start = %v, want trainer's failure with its output", err)
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  stack.Config
		want string
	}{
		{"no brokers", stack.Config{BinDir: binDir}, "no brokers"},
		{"no bin dir", stack.Config{Brokers: []string{"x:1"}}, "no BinDir"},
		{"duplicate", stack.Config{Brokers: []string{"x:1"}, BinDir: binDir, Services: []string{"cleaner", "cleaner"}}, "listed twice"},
		{"extra env for unknown", stack.Config{Brokers: []string{"x:1"}, BinDir: binDir, Services: []string{"cleaner"},
			ExtraEnv: map[string][]string{"trainer": {"A=1"}}}, `"trainer", which is not run`},
		{"missing binary", stack.Config{Brokers: []string{"x:1"}, BinDir: t.TempDir()}, "binary for collector"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := stack.Start(context.Background(), tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Start = %v, want %q", err, tc.want)
			}
		})
	}
}
