package traci

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"time"
)

// defaultStartTimeout bounds how long Start waits for sumo to listen when neither Options nor ctx say.
const defaultStartTimeout = 30 * time.Second

// Options says how Start runs sumo.
type Options struct {
	// Binary is the program to run: "sumo" (the default) or "sumo-gui", looked up on PATH unless a path.
	Binary string
	// ConfigFile, when set, is passed as -c (a relative path is relative to Dir).
	ConfigFile string
	// Args are further sumo options, e.g. "--no-step-log", "--seed", "42". Start adds --remote-port itself.
	Args []string
	// Port is the loopback port sumo listens on; 0 picks a free one.
	Port int
	// Dir is sumo's working directory; empty is the caller's.
	Dir string
	// Stdout and Stderr receive sumo's output; nil discards it. The end of stderr is also kept for errors.
	Stdout, Stderr io.Writer
	// StartTimeout bounds the wait for sumo to load the scenario and listen; 0 is 30 s. ctx can cut it shorter.
	StartTimeout time.Duration
}

// Start runs sumo as a child process listening for TraCI on a loopback port and connects to it. sumo runs in a
// process group of its own and is killed if this process dies (Linux: parent-death signal; the signal follows
// the OS thread that started it, which Go keeps alive unless a goroutine locked to it exits). ctx bounds the
// start only, not the simulation's life: Client.Close ends that.
func Start(ctx context.Context, opts Options) (*Client, error) {
	if opts.Binary == "" {
		opts.Binary = "sumo"
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = defaultStartTimeout
	}
	port := opts.Port
	if port == 0 {
		p, err := freePort()
		if err != nil {
			return nil, fmt.Errorf("traci start: pick a port: %w", err)
		}
		port = p
	}
	var args []string
	if opts.ConfigFile != "" {
		args = append(args, "-c", opts.ConfigFile)
	}
	args = append(args, opts.Args...)
	args = append(args, "--remote-port", strconv.Itoa(port))

	proc, err := startProcess(opts, args)
	if err != nil {
		return nil, fmt.Errorf("traci start %s: %w", opts.Binary, err)
	}
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	conn, err := proc.dial(ctx, addr)
	if err != nil {
		_ = proc.stop(0) // how sumo exited, if it did, is in err already
		return nil, fmt.Errorf("traci start %s: %w", opts.Binary, err)
	}
	return newClient(ctx, conn, proc)
}

// freePort asks the kernel for a free loopback port. Another process could take it before sumo binds it; sumo
// then exits and Start says so.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// process is a running sumo and the goroutine that waits for it.
type process struct {
	cmd     *exec.Cmd
	exited  chan struct{} // closed once Wait returned
	waitErr error         // Wait's result, read after exited is closed
	stderr  *tail
}

func startProcess(opts Options, args []string) (*process, error) {
	cmd := exec.Command(opts.Binary, args...)
	cmd.Dir = opts.Dir
	cmd.Stdout = opts.Stdout
	p := &process{cmd: cmd, exited: make(chan struct{}), stderr: &tail{max: 2048}}
	cmd.Stderr = p.stderr
	if opts.Stderr != nil {
		cmd.Stderr = io.MultiWriter(opts.Stderr, p.stderr)
	}
	cmd.SysProcAttr = sysProcAttr()
	cmd.WaitDelay = time.Second // output copying must not hold Wait once sumo is gone
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// pid is the sumo process id, for errors.
func (p *process) pid() int { return p.cmd.Process.Pid }

// dial connects to addr once sumo listens there, retrying with a growing pause until ctx ends or sumo exits.
func (p *process) dial(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	pause := 5 * time.Millisecond
	for {
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			return conn, nil
		}
		retry := time.NewTimer(pause)
		select {
		case <-p.exited:
			retry.Stop()
			return nil, fmt.Errorf("sumo exited before listening on %s: %v%s", addr, p.waitErr, p.stderr.suffix())
		case <-ctx.Done():
			retry.Stop()
			return nil, fmt.Errorf("sumo not listening on %s: %w (last: %v)%s", addr, ctx.Err(), err, p.stderr.suffix())
		case <-retry.C:
		}
		pause = min(2*pause, 200*time.Millisecond)
	}
}

// stop waits up to grace for sumo to exit, then kills its process group and waits for it to be gone. An exit
// status other than 0 is an error, unless stop killed it.
func (p *process) stop(grace time.Duration) error {
	select {
	case <-p.exited: // first, so that sumo's own exit is reported even without grace
		return p.exitError()
	default:
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-p.exited:
		return p.exitError()
	case <-timer.C:
	}
	if err := killGroup(p.cmd.Process); err != nil {
		select {
		case <-p.exited: // gone in between
		default:
			return fmt.Errorf("kill sumo (pid %d): %w", p.pid(), err)
		}
	}
	<-p.exited
	return nil
}

// exitError says why sumo ended with an error, nil for a clean exit. It is read once exited is closed.
func (p *process) exitError() error {
	if p.waitErr == nil {
		return nil
	}
	return fmt.Errorf("sumo (pid %d): %w%s", p.pid(), p.waitErr, p.stderr.suffix())
}

// tail keeps the last max bytes written to it: the end of sumo's stderr, where it says why it stopped.
type tail struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

// suffix is ": <stderr>" for an error message, or nothing when sumo said nothing.
func (t *tail) suffix() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.b) == 0 {
		return ""
	}
	return ": sumo stderr: " + string(bytes.TrimSpace(t.b))
}
