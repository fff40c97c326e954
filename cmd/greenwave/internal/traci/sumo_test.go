//go:build linux

package traci

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The tests below run a real sumo on testdata/grid2x2 (see testdata/README): four signalised junctions, two
// fixed flows through A0 (50 and 30 vehicles), an induction loop e1_A0B0 and a lane-area detector e2_left0A0.

const (
	scenario      = "testdata/grid2x2.sumocfg"
	scenarioCars  = 80 // 300 s of one car every 6 s west-east and every 10 s south-north
	grid2x2Signal = "A0"
)

// requireSumo skips a test when sumo is not installed, unless GREENWAVE_REQUIRE_SUMO=1 (CI) makes it a failure.
func requireSumo(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("sumo"); err != nil {
		if os.Getenv("GREENWAVE_REQUIRE_SUMO") == "1" {
			t.Fatalf("GREENWAVE_REQUIRE_SUMO=1 but sumo is not on PATH: %v", err)
		}
		t.Skip("sumo is not on PATH: install SUMO (Debian packages sumo and sumo-tools) to run the TraCI tests " +
			"against it; GREENWAVE_REQUIRE_SUMO=1 turns this skip into a failure")
	}
}

// startSumo starts sumo on the test scenario and closes it when the test ends, checking no process is left.
func startSumo(t *testing.T) *Client {
	t.Helper()
	requireSumo(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := Start(ctx, Options{ConfigFile: scenario, Args: []string{"--no-step-log", "--no-warnings"}})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	pid := c.proc.pid()
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		assertGone(t, pid)
	})
	return c
}

// assertGone fails unless neither process pid nor any process of its group exists.
func assertGone(t *testing.T, pid int) {
	t.Helper()
	for _, target := range []int{pid, -pid} {
		if err := syscall.Kill(target, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("signal 0 to %d: %v, want ESRCH: a sumo process is left behind", target, err)
		}
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestSumoSimulation(t *testing.T) {
	t.Parallel()
	c := startSumo(t)
	ctx := testContext(t)
	if v := c.Version(); v.API != 20 || !strings.HasPrefix(v.Software, "SUMO ") {
		t.Errorf("Version = %+v, want API 20 from SUMO", v)
	}
	if d, err := c.StepLength(ctx); err != nil || d != time.Second {
		t.Errorf("StepLength = %v, %v; want the scenario's 1s", d, err)
	}

	// Run to the end one step at a time: every car that departed arrives.
	departed, arrived := 0, 0
	for {
		left, err := c.MinExpectedNumber(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if left == 0 {
			break
		}
		if err := c.Step(ctx, 0); err != nil {
			t.Fatal(err)
		}
		d, err := c.DepartedNumber(ctx)
		if err != nil {
			t.Fatal(err)
		}
		a, err := c.ArrivedNumber(ctx)
		if err != nil {
			t.Fatal(err)
		}
		departed, arrived = departed+d, arrived+a
	}
	if departed != scenarioCars || arrived != scenarioCars {
		t.Fatalf("departed %d and arrived %d, want %d each", departed, arrived, scenarioCars)
	}

	end, err := c.Time(ctx)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name  string
		until time.Duration
		want  time.Duration
	}{
		{"one step", 0, end + time.Second},
		{"to a target time", end + time.Minute, end + time.Minute},
		{"a past target does nothing", end + 30*time.Second, end + time.Minute},
	}
	for _, st := range steps {
		if err := c.Step(ctx, st.until); err != nil {
			t.Fatalf("%s: Step(%v): %v", st.name, st.until, err)
		}
		if now, err := c.Time(ctx); err != nil || now != st.want {
			t.Fatalf("%s: Time = %v, %v; want %v", st.name, now, err, st.want)
		}
	}
}

func TestSumoDetectors(t *testing.T) {
	t.Parallel()
	c := startSumo(t)
	ctx := testContext(t)
	tests := []struct {
		name string
		ids  func(context.Context) ([]string, error)
		read func(context.Context, []string) ([]DetectorReading, error)
		want string
	}{
		{"induction loop", c.InductionLoopIDs, c.InductionLoops, "e1_A0B0"},
		{"lane-area detector", c.LaneAreaIDs, c.LaneAreas, "e2_left0A0"},
	}
	totals := make([]int, len(tests))
	for step := 0; step < 120; step++ {
		if err := c.Step(ctx, 0); err != nil {
			t.Fatal(err)
		}
		for i, tc := range tests {
			ids, err := tc.ids(ctx)
			if err != nil || !slices.Equal(ids, []string{tc.want}) {
				t.Fatalf("%s: ids = %v, %v; want [%s]", tc.name, ids, err, tc.want)
			}
			rs, err := tc.read(ctx, ids)
			if err != nil || len(rs) != 1 || rs[0].ID != tc.want {
				t.Fatalf("%s: readings = %+v, %v", tc.name, rs, err)
			}
			r := rs[0]
			switch {
			case r.Vehicles < 0, r.OccupancyPct < 0, r.OccupancyPct > 100,
				r.Vehicles == 0 && r.MeanSpeedMPS != -1,
				r.MeanSpeedMPS != -1 && (r.MeanSpeedMPS < 0 || r.MeanSpeedMPS > 14):
				t.Fatalf("%s at step %d: implausible reading %+v", tc.name, step, r)
			}
			totals[i] += r.Vehicles
		}
	}
	for i, tc := range tests {
		if totals[i] == 0 {
			t.Errorf("%s saw no vehicle in two minutes of a flow over it", tc.name)
		}
	}

	unknown := []struct {
		name string
		read func(context.Context, []string) ([]DetectorReading, error)
		want string
	}{
		{"unknown induction loop", c.InductionLoops, `traci inductionloop.getLastStepVehicleNumber "nope"`},
		{"unknown lane-area detector", c.LaneAreas, `traci lanearea.getLastStepVehicleNumber "nope"`},
	}
	for _, tc := range unknown {
		_, err := tc.read(ctx, []string{"nope"})
		var se *StatusError
		if !errors.As(err, &se) || !strings.HasPrefix(err.Error(), tc.want) || !strings.Contains(se.Message, "nope") {
			t.Errorf("%s: %v, want a StatusError starting %q naming the detector", tc.name, err, tc.want)
		}
	}
}

func TestSumoTrafficLights(t *testing.T) {
	t.Parallel()
	c := startSumo(t)
	ctx := testContext(t)
	if err := c.Step(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	ids, err := c.TrafficLightIDs(ctx)
	if err != nil || !slices.Equal(ids, []string{"A0", "A1", "B0", "B1"}) {
		t.Fatalf("TrafficLightIDs = %v, %v", ids, err)
	}
	logics, err := c.TrafficLightLogics(ctx, grid2x2Signal)
	if err != nil || len(logics) != 1 {
		t.Fatalf("TrafficLightLogics = %+v, %v; want netgenerate's one program", logics, err)
	}
	static := logics[0]
	if static.ProgramID != "0" || static.Type != LogicStatic || len(static.Phases) != 4 ||
		static.Phases[0].Duration != 42*time.Second || static.Phases[1].State != "yyyyrrrryyyyrrrr" {
		t.Fatalf("netgenerate's program = %+v", static)
	}

	links, err := c.TrafficLightControlledLinks(ctx, grid2x2Signal)
	if err != nil || len(links) != len(static.Phases[0].State) {
		t.Fatalf("TrafficLightControlledLinks = %v, %v; want one entry per signal of the state", links, err)
	}
	lanes, err := c.TrafficLightControlledLanes(ctx, grid2x2Signal)
	if err != nil || len(lanes) != len(links) {
		t.Fatalf("TrafficLightControlledLanes = %v, %v", lanes, err)
	}
	for i, l := range links {
		if len(l) != 1 || l[0].From != lanes[i] || !strings.HasPrefix(l[0].Via, ":A0_") || l[0].To == "" {
			t.Fatalf("link %d = %+v, want one link from %s through A0", i, l, lanes[i])
		}
	}

	actuated := static
	actuated.ProgramID = "greenwave"
	actuated.Type = LogicActuated
	actuated.CurrentPhase = 0
	actuated.Phases = slices.Clone(static.Phases)
	actuated.Phases[0].MinDur, actuated.Phases[0].MaxDur = 10*time.Second, time.Minute
	actuated.Phases[2].Name = "north-south"
	actuated.Params = map[string]string{"max-gap": "3", "detector-gap": "2"}
	badState := actuated
	badState.ProgramID = "bad"
	badState.Phases = []Phase{{Duration: time.Second, State: "G", MinDur: time.Second, MaxDur: time.Second}}

	tests := []struct {
		name    string
		do      func() error
		refusal string // SUMO's refusal, as part of the message
		invalid string // the client's refusal (ErrInvalidLogic), as part of the message
		check   func(t *testing.T)
	}{
		{name: "load and run an actuated program", do: func() error {
			return c.SetTrafficLightLogic(ctx, grid2x2Signal, actuated)
		}, check: func(t *testing.T) {
			if p, err := c.TrafficLightProgram(ctx, grid2x2Signal); err != nil || p != "greenwave" {
				t.Errorf("TrafficLightProgram = %q, %v", p, err)
			}
			all, err := c.TrafficLightLogics(ctx, grid2x2Signal)
			if err != nil || len(all) != 2 {
				t.Fatalf("TrafficLightLogics = %+v, %v; want the static and the new program", all, err)
			}
			got := all[slices.IndexFunc(all, func(l Logic) bool { return l.ProgramID == "greenwave" })]
			got.CurrentPhase = 0
			if !reflect.DeepEqual(got, actuated) {
				t.Errorf("read back\n%+v\nwant\n%+v", got, actuated)
			}
		}},
		{name: "a state of the wrong length, which would make SUMO quit", do: func() error {
			return c.SetTrafficLightLogic(ctx, grid2x2Signal, badState)
		}, invalid: "phase 0 has 1 signals, the traffic light 16"},
		{name: "a current phase out of range", do: func() error {
			l := actuated
			l.CurrentPhase = 4
			return c.SetTrafficLightLogic(ctx, grid2x2Signal, l)
		}, invalid: "current phase 4 of 4"},
		{name: "state of an unknown traffic light", do: func() error {
			return c.SetTrafficLightLogic(ctx, "nope", actuated)
		}, refusal: "nope"},
		{name: "switch phase", do: func() error {
			return c.SetTrafficLightPhase(ctx, grid2x2Signal, 2)
		}, check: func(t *testing.T) {
			if p, err := c.TrafficLightPhase(ctx, grid2x2Signal); err != nil || p != 2 {
				t.Errorf("TrafficLightPhase = %d, %v; want 2", p, err)
			}
		}},
		{name: "a phase out of range", do: func() error {
			return c.SetTrafficLightPhase(ctx, grid2x2Signal, 17)
		}, refusal: "not in the allowed range"},
		{name: "set the remaining duration", do: func() error {
			return c.SetTrafficLightPhaseDuration(ctx, grid2x2Signal, 7500*time.Millisecond)
		}, check: func(t *testing.T) {
			now, err := c.Time(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if next, err := c.TrafficLightNextSwitch(ctx, grid2x2Signal); err != nil || next != now+7500*time.Millisecond {
				t.Errorf("TrafficLightNextSwitch = %v, %v; want %v", next, err, now+7500*time.Millisecond)
			}
			if d, err := c.TrafficLightPhaseDuration(ctx, grid2x2Signal); err != nil || d != actuated.Phases[2].Duration {
				t.Errorf("TrafficLightPhaseDuration = %v, %v; want the program's %v", d, err, actuated.Phases[2].Duration)
			}
		}},
		{name: "back to the static program", do: func() error {
			return c.SetTrafficLightProgram(ctx, grid2x2Signal, "0")
		}, check: func(t *testing.T) {
			if p, err := c.TrafficLightProgram(ctx, grid2x2Signal); err != nil || p != "0" {
				t.Errorf("TrafficLightProgram = %q, %v", p, err)
			}
		}},
		{name: "an unknown program", do: func() error {
			return c.SetTrafficLightProgram(ctx, grid2x2Signal, "nope")
		}, refusal: "nope"},
		{name: "an unknown traffic light", do: func() error {
			_, err := c.TrafficLightPhase(ctx, "nope")
			return err
		}, refusal: "nope"},
	}
	for _, tc := range tests { // in order: each case starts where the one before left the signal
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			var se *StatusError
			switch {
			case tc.refusal == "" && tc.invalid == "" && err != nil:
				t.Fatal(err)
			case tc.invalid != "" && (!errors.Is(err, ErrInvalidLogic) || !strings.Contains(err.Error(), tc.invalid)):
				t.Fatalf("error %v, want ErrInvalidLogic saying %q", err, tc.invalid)
			case tc.refusal != "" && (!errors.As(err, &se) || !strings.Contains(se.Message, tc.refusal)):
				t.Fatalf("error %v, want SUMO's refusal mentioning %q", err, tc.refusal)
			}
			if tc.check != nil {
				tc.check(t)
			}
			if err := c.Step(ctx, 0); err != nil { // the simulation goes on with the change
				t.Fatalf("Step after the change: %v", err)
			}
		})
	}
}

func TestSumoLifecycle(t *testing.T) {
	t.Parallel()
	requireSumo(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	tests := []struct {
		name    string
		opts    Options
		wantErr string // Start's error contains it; "" means Start succeeds
		// use runs on a started client, then Close is checked.
		use func(t *testing.T, c *Client)
		// closeErr is part of Close's error; "" means Close succeeds.
		closeErr string
	}{
		{name: "close after use", opts: Options{ConfigFile: scenario}, use: func(t *testing.T, c *Client) {
			if err := c.Step(testContext(t), 5*time.Second); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "close while sumo is busy with a call ctx cut short", opts: Options{ConfigFile: scenario},
			use: func(t *testing.T, c *Client) {
				ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
				defer cancel()
				// Three years of simulated time in one call, far more than 200 ms of work.
				if err := c.Step(ctx, 1e8*time.Second); !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("a long Step with a short deadline: %v, want DeadlineExceeded", err)
				}
				if _, err := c.Time(testContext(t)); !errors.Is(err, ErrClosed) {
					t.Fatalf("Time after a call cut short: %v, want ErrClosed", err)
				}
			}},
		{name: "sumo quits on its own: Close says why", opts: Options{ConfigFile: scenario},
			use: func(t *testing.T, c *Client) {
				// A program SetTrafficLightLogic would refuse, sent past its check: SUMO quits on it.
				var e encoder
				encodeLogic(&e, Logic{ProgramID: "bad", Phases: []Phase{{Duration: time.Second, State: "G"}}})
				err := c.setTrafficLight(testContext(t), "test", tlCompleteProgram, grid2x2Signal, e.b)
				if !errors.Is(err, io.EOF) {
					t.Fatalf("setProgramLogic with a state of the wrong length: %v, want EOF as SUMO quits", err)
				}
			}, closeErr: "Error: Mismatching phase size in tls 'A0'"},
		{name: "a missing binary", opts: Options{Binary: "greenwave-no-such-sumo"}, wantErr: "executable file not found"},
		{name: "a missing config file", opts: Options{ConfigFile: "testdata/nope.sumocfg"}, wantErr: "sumo stderr: Error"},
		{name: "a process that never listens", opts: Options{
			Binary: "/bin/sh", Args: []string{"-c", "echo $$ > " + pidFile + "; exec sleep 600"},
			StartTimeout: 300 * time.Millisecond,
		}, wantErr: "not listening"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Start(testContext(t), tc.opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Start: %v, want an error containing %q", err, tc.wantErr)
				}
				if b, err := os.ReadFile(pidFile); err == nil && tc.opts.Binary == "/bin/sh" {
					pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
					if err != nil {
						t.Fatal(err)
					}
					assertGone(t, pid)
				}
				return
			}
			if err != nil {
				t.Fatalf("Start: %v", err)
			}
			pid := c.proc.pid()
			tc.use(t, c)
			if err := c.Close(); tc.closeErr == "" && err != nil || tc.closeErr != "" && (err == nil || !strings.Contains(err.Error(), tc.closeErr)) {
				t.Errorf("Close: %v, want an error containing %q", err, tc.closeErr)
			}
			assertGone(t, pid)
			if err := c.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
		})
	}
}

// TestSumoParentDeath kills a process that started sumo, without Close, and expects the kernel to end sumo.
func TestSumoParentDeath(t *testing.T) {
	if os.Getenv("GREENWAVE_TRACI_PARENT") == "1" {
		runParent()
		return
	}
	t.Parallel()
	requireSumo(t)
	parent := exec.Command(os.Args[0], "-test.run=^TestSumoParentDeath$")
	parent.Env = append(os.Environ(), "GREENWAVE_TRACI_PARENT=1")
	out, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parent.StdinPipe(); err != nil { // never written: the parent waits on it
		t.Fatal(err)
	}
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = parent.Process.Kill(); _ = parent.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	pid, convErr := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "sumo pid ")))
	if err != nil || convErr != nil || !strings.HasPrefix(line, "sumo pid ") {
		t.Fatalf("parent said %q (%v)", line, err)
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		t.Fatalf("pidfd of sumo %d: %v", pid, err)
	}
	defer unix.Close(fd)
	if err := parent.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = parent.Wait()
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 30_000) // readable once sumo has exited
	if err != nil || n != 1 {
		t.Fatalf("sumo %d still runs 30s after its parent died (poll: %d, %v)", pid, n, err)
	}
}

// runParent is the process TestSumoParentDeath kills: it starts sumo, says its pid and waits to die.
func runParent() {
	c, err := Start(context.Background(), Options{ConfigFile: scenario})
	if err != nil {
		fmt.Println("start:", err)
		os.Exit(1)
	}
	fmt.Printf("sumo pid %d\n", c.proc.pid())
	_, _ = io.Copy(io.Discard, os.Stdin)
	os.Exit(0) // without Close: the parent-death signal is what ends sumo
}
