// Package stack runs the Greenwave services as child processes against a given Kafka, the way `greenwave dev`
// and end-to-end tests need them: every child on free loopback ports, its bound addresses read back from its
// address file, its output copied line by line into one log with a `name | ` prefix, readiness polled on
// /readyz, and a bounded stop (SIGTERM, then SIGKILL) that leaves no process behind.
//
// A service may run as more than one process: StartExtra starts another instance of a configured service with the
// same environment (so the same Kafka consumer group) and addresses of its own, named SERVICE#N, which Kill,
// Restart, Addrs, Pid and WaitReady take like a service name; StopExtra stops it and forgets it. This is how tests
// scale a service out and force consumer group rebalances.
//
// Each child runs in its own process group (so a terminal's Ctrl-C reaches only the parent, which then stops the
// children in order) with the parent-death signal set to SIGKILL (so the children die with the parent even when
// the parent is SIGKILLed). Linux delivers the parent-death signal when the OS thread that started the child
// exits; the Go runtime does not end threads except under runtime.LockOSThread, which this package never uses.
package stack

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/greenwave-city/greenwave/pkg/server"
)

// Services lists the five Greenwave services in pipeline order; each is the main package ./services/NAME and the
// binary BinDir/NAME.
var Services = []string{"collector", "cleaner", "trainer", "predictor", "signalcontrol"}

// Defaults applied by Start to zero Config fields.
const (
	DefaultStartTimeout = 30 * time.Second
	DefaultReadyTimeout = 90 * time.Second
	// DefaultStopTimeout is the grace a deployment gives a service before SIGKILL (terminationGracePeriodSeconds
	// in deploy/k8s): a service's own bounds are SHUTDOWN_TIMEOUT (8s) to drain requests beside the stream
	// processor's 5s to leave its group, but under the race detector on a loaded two-core CI machine a cleaner
	// stopping right after a broker outage once took longer than 15s (cause not found yet).
	DefaultStopTimeout = 30 * time.Second
)

// tailLines is how many of a child's last output lines an ExitError carries.
const tailLines = 20

// Config says what to run and where.
type Config struct {
	// Brokers are the Kafka bootstrap addresses (KAFKA_BROKERS of every child). Required.
	Brokers []string
	// TopicPrefix is TOPIC_PREFIX of every child.
	TopicPrefix string
	// TopologyFile is TOPOLOGY_FILE of every child; a relative path is made absolute against the parent's
	// working directory.
	TopologyFile string
	// BinDir holds the prebuilt binaries, one per service, named as the service (see Build). Required.
	BinDir string
	// Services to run, in start order; nil means all of Services.
	Services []string
	// Env is added to every child's environment (KEY=VALUE), after the parent's environment.
	Env []string
	// ExtraEnv is added to one service's environment (KEY=VALUE), after everything else, so it wins.
	ExtraEnv map[string][]string
	// Stdout receives every child's stdout and stderr, one `name | line` per line. Writes are serialised, so
	// it need not be safe for concurrent use. Nil discards the output.
	Stdout io.Writer
	// LogFormat is LOG_FORMAT of every child ("json" or "console"); empty leaves it unset.
	LogFormat string
	// LogLevel is LOG_LEVEL of every child; empty leaves it unset.
	LogLevel string
	// Dir is the children's working directory; empty means the parent's.
	Dir string
	// StartTimeout bounds how long Start and Restart wait for a child to write its address file
	// (default DefaultStartTimeout).
	StartTimeout time.Duration
	// ReadyTimeout bounds WaitReady (default DefaultReadyTimeout).
	ReadyTimeout time.Duration
	// StopTimeout is how long Stop and Restart wait after SIGTERM before sending SIGKILL
	// (default DefaultStopTimeout).
	StopTimeout time.Duration
}

func (c Config) withDefaults() (Config, error) {
	var problems []string
	if len(c.Brokers) == 0 {
		problems = append(problems, "no brokers")
	}
	if c.BinDir == "" {
		problems = append(problems, "no BinDir")
	}
	if c.Services == nil {
		c.Services = slices.Clone(Services)
	}
	seen := map[string]bool{}
	for _, s := range c.Services {
		if s == "" || strings.ContainsAny(s, `/\`) {
			problems = append(problems, fmt.Sprintf("bad service name %q", s))
		}
		if seen[s] {
			problems = append(problems, fmt.Sprintf("service %q listed twice", s))
		}
		seen[s] = true
	}
	for s := range c.ExtraEnv {
		if !seen[s] {
			problems = append(problems, fmt.Sprintf("ExtraEnv names service %q, which is not run", s))
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems[1:]) // keep the first (most basic) problem first
		return c, fmt.Errorf("stack config: %s", strings.Join(problems, "; "))
	}
	if c.TopologyFile != "" {
		abs, err := filepath.Abs(c.TopologyFile)
		if err != nil {
			return c, fmt.Errorf("stack config: topology file: %w", err)
		}
		c.TopologyFile = abs
	}
	if c.Stdout == nil {
		c.Stdout = io.Discard
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = DefaultStartTimeout
	}
	if c.ReadyTimeout <= 0 {
		c.ReadyTimeout = DefaultReadyTimeout
	}
	if c.StopTimeout <= 0 {
		c.StopTimeout = DefaultStopTimeout
	}
	return c, nil
}

// ExitError reports a child that exited while the stack did not expect it to.
type ExitError struct {
	// Service is the instance's name: the service's, or SERVICE#N for an instance started by StartExtra.
	Service string
	// Pid was the child's process id.
	Pid int
	// Err is the error from waiting for the process (an *exec.ExitError for a non-zero status or a signal),
	// or nil when it exited with status 0.
	Err error
	// Tail holds the child's last output lines, oldest first.
	Tail []string
}

func (e *ExitError) Error() string {
	status := "exit status 0"
	if e.Err != nil {
		status = e.Err.Error()
	}
	return fmt.Sprintf("service %s (pid %d) exited unexpectedly: %s", e.Service, e.Pid, status)
}

func (e *ExitError) Unwrap() error { return e.Err }

// NotReadyError is returned by WaitReady when services did not become ready in time.
type NotReadyError struct {
	// Waited is how long WaitReady polled.
	Waited time.Duration
	// Services maps each service that is not ready to its last /readyz answer (status and body) or the error
	// of its last request.
	Services map[string]string
}

func (e *NotReadyError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "not ready after %s:", e.Waited.Round(time.Millisecond))
	for i, name := range server.SortedKeys(e.Services) {
		if i > 0 {
			b.WriteString(";")
		}
		fmt.Fprintf(&b, " %s (%s)", name, e.Services[name])
	}
	return b.String()
}

// Stack is a set of running services. Its methods are safe for concurrent use.
type Stack struct {
	cfg  Config
	dir  string // temp dir holding the address files
	logs *prefixWriter

	// instances guards byName, order and extras: StartExtra and StopExtra change them while the stack runs.
	instances sync.Mutex
	byName    map[string]*service // by instance name: the service's name, or SERVICE#N for an extra instance
	order     []*service          // start order; extra instances last, in the order they were started
	extras    map[string]int      // by service: how many extra instances were ever started (numbers SERVICE#N)

	done     chan struct{} // closed on the first unexpected exit or on Stop
	doneOnce sync.Once
	mu       sync.Mutex
	err      error // first unexpected exit
	stopping bool

	stopOnce sync.Once
	stopErr  error
}

// service is one instance of a configured service; its process changes on Restart.
type service struct {
	name string   // instance name: the service's, or SERVICE#N for an extra instance
	bin  string   // the service: names its binary and its Config.ExtraEnv entry
	env  []string // the environment before ADDR_FILE and Config.ExtraEnv
	// instanceEnv is added after Config.ExtraEnv: StartExtra's env for this instance alone.
	instanceEnv []string

	mu    sync.Mutex // serialises Kill, Restart and Stop on this service; guards proc
	proc  *proc
	start int // how many times it was started (names the address files)
}

// proc is one child process.
type proc struct {
	cmd      *exec.Cmd
	pid      int
	addrFile string
	addrs    server.Addrs  // set by awaitAddrs under service.mu
	exited   chan struct{} // closed once the process was reaped and its output drained
	err      error         // wait error, valid after exited
	tail     *ring

	mu       sync.Mutex
	expected bool // the exit was asked for (Kill, Restart, Stop): do not report it
}

func (p *proc) expect() {
	p.mu.Lock()
	p.expected = true
	p.mu.Unlock()
}

func (p *proc) wasExpected() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.expected
}

// Start launches every configured service, in order, and returns once each has written its address file (or
// fails, having stopped whatever it started). ctx bounds only the start-up; the children run until Stop.
// Start does not wait for readiness: call WaitReady.
func Start(ctx context.Context, cfg Config) (*Stack, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	for _, name := range cfg.Services {
		bin := filepath.Join(cfg.BinDir, name)
		if _, err := os.Stat(bin); err != nil {
			return nil, fmt.Errorf("start stack: binary for %s: %w", name, err)
		}
	}
	dir, err := os.MkdirTemp("", "greenwave-stack-")
	if err != nil {
		return nil, fmt.Errorf("start stack: %w", err)
	}
	s := &Stack{
		cfg:    cfg,
		dir:    dir,
		logs:   newPrefixWriter(cfg.Stdout, cfg.Services),
		byName: map[string]*service{},
		extras: map[string]int{},
		done:   make(chan struct{}),
	}
	base := append(os.Environ(), "KAFKA_BROKERS="+strings.Join(cfg.Brokers, ","), "TOPIC_PREFIX="+cfg.TopicPrefix)
	if cfg.TopologyFile != "" {
		base = append(base, "TOPOLOGY_FILE="+cfg.TopologyFile)
	}
	if cfg.LogFormat != "" {
		base = append(base, "LOG_FORMAT="+cfg.LogFormat)
	}
	if cfg.LogLevel != "" {
		base = append(base, "LOG_LEVEL="+cfg.LogLevel)
	}
	base = append(base, cfg.Env...)
	for _, name := range cfg.Services {
		env := slices.Clone(base)
		env = append(env, "GRPC_ADDR=127.0.0.1:0", "HTTP_ADDR=127.0.0.1:0")
		svc := &service{name: name, bin: name, env: env}
		s.byName[name] = svc
		s.order = append(s.order, svc)
	}

	// Launch all, then wait for all address files: the services find each other through Kafka, so none needs
	// another's addresses to start.
	for _, svc := range s.order {
		svc.mu.Lock()
		_, err := s.launch(svc)
		svc.mu.Unlock()
		if err != nil {
			s.Stop()
			return nil, fmt.Errorf("start stack: %w", err)
		}
	}
	for _, svc := range s.order {
		svc.mu.Lock()
		err := s.awaitAddrs(ctx, svc, svc.proc)
		svc.mu.Unlock()
		if err != nil {
			s.Stop()
			return nil, fmt.Errorf("start stack: %w", err)
		}
	}
	return s, nil
}

// launch starts svc's process; the caller holds svc.mu.
func (s *Stack) launch(svc *service) (*proc, error) {
	svc.start++
	addrFile := filepath.Join(s.dir, fmt.Sprintf("%s.%d.addr.json", svc.name, svc.start))
	env := append(slices.Clone(svc.env), "ADDR_FILE="+addrFile)
	env = append(env, s.cfg.ExtraEnv[svc.bin]...)
	env = append(env, svc.instanceEnv...)

	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("launch %s: %w", svc.name, err)
	}
	cmd := exec.Command(filepath.Join(s.cfg.BinDir, svc.bin))
	cmd.Env = env
	cmd.Dir = s.cfg.Dir
	cmd.Stdout = w
	cmd.Stderr = w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("launch %s: %w", svc.name, err)
	}
	w.Close() // the child holds its own copy; EOF on r means every holder is gone
	p := &proc{cmd: cmd, pid: cmd.Process.Pid, addrFile: addrFile, exited: make(chan struct{}), tail: newRing(tailLines)}
	svc.proc = p

	drained := make(chan struct{})
	go func() {
		defer close(drained)
		defer r.Close()
		s.logs.copyLines(svc.name, r, p.tail)
	}()
	go func() {
		err := cmd.Wait()
		// Sweep the process group: a grandchild the service started must not outlive it.
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
		// A grandchild that escaped the group could keep the pipe open; do not wait for it forever.
		select {
		case <-drained:
		case <-time.After(2 * time.Second):
		}
		p.err = err
		close(p.exited)
		if !p.wasExpected() {
			s.fail(&ExitError{Service: svc.name, Pid: p.pid, Err: err, Tail: p.tail.lines()})
		}
	}()
	return p, nil
}

// awaitAddrs waits until p has written its address file; the caller holds svc.mu.
func (s *Stack) awaitAddrs(ctx context.Context, svc *service, p *proc) error {
	file := p.addrFile
	ctx, cancel := context.WithTimeout(ctx, s.cfg.StartTimeout)
	defer cancel()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		b, err := os.ReadFile(file)
		if err == nil {
			var a server.Addrs
			if err := json.Unmarshal(b, &a); err != nil {
				return fmt.Errorf("%s: read address file %s: %w", svc.name, file, err)
			}
			if a.GRPC == "" || a.HTTP == "" {
				return fmt.Errorf("%s: address file %s lacks grpc or http: %s", svc.name, file, b)
			}
			p.addrs = a
			return nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s: read address file: %w", svc.name, err)
		}
		select {
		case <-p.exited:
			status := "exit status 0"
			if p.err != nil {
				status = p.err.Error()
			}
			return fmt.Errorf("%s exited during start-up (%s); last output:\n%s", svc.name, status, indent(p.tail.lines()))
		case <-ctx.Done():
			return fmt.Errorf("%s wrote no address file within %s: %w", svc.name, s.cfg.StartTimeout, ctx.Err())
		case <-t.C:
		}
	}
}

func indent(lines []string) string {
	if len(lines) == 0 {
		return "    (no output)"
	}
	return "    " + strings.Join(lines, "\n    ")
}

// fail records the first unexpected exit and closes Done, unless the stack is stopping.
func (s *Stack) fail(err *ExitError) {
	s.mu.Lock()
	if s.stopping || s.err != nil {
		s.mu.Unlock()
		return
	}
	s.err = err
	s.mu.Unlock()
	s.doneOnce.Do(func() { close(s.done) })
}

// Services returns the names of the configured services in start order.
func (s *Stack) Services() []string { return slices.Clone(s.cfg.Services) }

// Instances returns the names of the running instances: the configured services in start order, then the extra
// instances (SERVICE#N) not stopped by StopExtra, in the order they were started.
func (s *Stack) Instances() []string {
	s.instances.Lock()
	defer s.instances.Unlock()
	names := make([]string, len(s.order))
	for i, svc := range s.order {
		names[i] = svc.name
	}
	return names
}

// lookup returns the instance of that name.
func (s *Stack) lookup(name string) (*service, bool) {
	s.instances.Lock()
	defer s.instances.Unlock()
	svc, ok := s.byName[name]
	return svc, ok
}

// StartExtra starts another instance of a configured service and waits for its addresses (bounded by ctx and
// Config.StartTimeout), not for its readiness. The instance gets the service's environment (Config.Env and
// Config.ExtraEnv included, so the same consumer group and topics), addresses and an address file of its own, and
// env added last (KEY=VALUE, for this instance alone). It returns the instance's name, SERVICE#N with N from 2 up,
// never reused within the stack: Kill, Restart, Addrs, Pid and StopExtra take it, WaitReady waits for it too,
// its log lines carry it as their prefix, and an unexpected exit of it is reported like a service's. Stop stops
// it with the rest.
func (s *Stack) StartExtra(ctx context.Context, serviceName string, env ...string) (string, error) {
	s.instances.Lock()
	base, ok := s.byName[serviceName]
	if !ok || base.bin != base.name {
		s.instances.Unlock()
		return "", fmt.Errorf("start extra: %q is not a configured service", serviceName)
	}
	s.extras[serviceName]++
	name := fmt.Sprintf("%s#%d", serviceName, s.extras[serviceName]+1)
	svc := &service{name: name, bin: serviceName, env: base.env, instanceEnv: slices.Clone(env)}
	s.byName[name] = svc
	s.order = append(s.order, svc)
	s.instances.Unlock()

	svc.mu.Lock()
	defer svc.mu.Unlock()
	// Stop sets stopping before it takes the instances to stop: seen false here (after the instance was added),
	// Stop will find this instance and stop it once this launch has released svc.mu.
	s.mu.Lock()
	stopping := s.stopping
	s.mu.Unlock()
	if stopping {
		s.forget(svc)
		return "", fmt.Errorf("start extra %s: stack is stopping", serviceName)
	}
	p, err := s.launch(svc)
	if err == nil {
		err = s.awaitAddrs(ctx, svc, p)
	}
	if err != nil {
		if svc.proc != nil {
			_, _ = s.terminate(svc.proc)
		}
		s.forget(svc)
		return "", fmt.Errorf("start extra: %w", err)
	}
	return name, nil
}

// StopExtra stops an instance started by StartExtra (SIGTERM, then SIGKILL after Config.StopTimeout) and forgets
// it: WaitReady and Instances no longer include it, and its name is not given again. Stopping an instance that
// already exited (killed, or exited unexpectedly) only forgets it. The error says when it needed SIGKILL.
func (s *Stack) StopExtra(name string) error {
	svc, ok := s.lookup(name)
	if !ok || svc.bin == svc.name {
		return fmt.Errorf("stop extra: %q is not a running extra instance", name)
	}
	svc.mu.Lock()
	defer svc.mu.Unlock()
	killed, err := s.terminate(svc.proc)
	s.forget(svc)
	switch {
	case err != nil:
		return fmt.Errorf("stop extra %s: %w", name, err)
	case killed:
		return fmt.Errorf("stop extra: %s did not exit within %s of SIGTERM and was killed", name, s.cfg.StopTimeout)
	}
	return nil
}

// forget removes an extra instance from the running set.
func (s *Stack) forget(svc *service) {
	s.instances.Lock()
	defer s.instances.Unlock()
	delete(s.byName, svc.name)
	s.order = slices.DeleteFunc(s.order, func(x *service) bool { return x == svc })
}

// Addrs returns the addresses the instance's current process is bound to; zero Addrs for an unknown name.
func (s *Stack) Addrs(name string) server.Addrs {
	svc, ok := s.lookup(name)
	if !ok {
		return server.Addrs{}
	}
	svc.mu.Lock()
	defer svc.mu.Unlock()
	return svc.proc.addrs
}

// Pid returns the process id of the instance's current process, or 0 for an unknown name.
func (s *Stack) Pid(name string) int {
	svc, ok := s.lookup(name)
	if !ok {
		return 0
	}
	svc.mu.Lock()
	defer svc.mu.Unlock()
	return svc.proc.pid
}

// Done is closed when a child exits unexpectedly (Err then returns its *ExitError) or when Stop is called.
func (s *Stack) Done() <-chan struct{} { return s.done }

// Err returns the *ExitError of the first child that exited unexpectedly, or nil.
func (s *Stack) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		return nil
	}
	return s.err
}

// Wait blocks until a child exits unexpectedly, returning its *ExitError, or until Stop is called, returning nil.
func (s *Stack) Wait() error {
	<-s.done
	return s.Err()
}

// WaitReady polls the GET /readyz of every instance (Instances) until each answers 200. It gives up when ctx
// ends, after Config.ReadyTimeout, or as soon as a child exits, and then names every instance that is not ready
// with its last /readyz answer (a *NotReadyError), or the child that exited (an *ExitError).
func (s *Stack) WaitReady(ctx context.Context) error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ReadyTimeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	pending := map[string]string{}
	for _, name := range s.Instances() {
		pending[name] = "not polled yet"
	}
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		for name := range pending {
			ok, detail := probe(ctx, client, s.Addrs(name).HTTP)
			switch {
			case ok:
				delete(pending, name)
			case ctx.Err() == nil: // a probe cut short by the deadline says nothing: keep the last answer
				pending[name] = detail
			}
		}
		if len(pending) == 0 {
			return nil
		}
		select {
		case <-s.done:
			if err := s.Err(); err != nil {
				return fmt.Errorf("wait ready: %w", err)
			}
			return errors.New("wait ready: stack stopped")
		case <-ctx.Done():
			return &NotReadyError{Waited: time.Since(start), Services: pending}
		case <-t.C:
		}
	}
}

// probe asks one /readyz and says whether it answered 200, otherwise what it answered.
func probe(ctx context.Context, client *http.Client, addr string) (bool, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/readyz", nil)
	if err != nil {
		return false, err.Error()
	}
	resp, err := client.Do(req)
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode == http.StatusOK {
		return true, ""
	}
	return false, fmt.Sprintf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
}

// Kill sends sig to the process group of the service (or instance, SERVICE#N) and waits until its process has
// exited, at most Config.StopTimeout; it never escalates. The exit is expected: it is not reported through Done,
// Err or Wait. Restart starts the service again. Killing a process that already exited is not an error.
func (s *Stack) Kill(name string, sig syscall.Signal) error {
	svc, ok := s.lookup(name)
	if !ok {
		return fmt.Errorf("kill: unknown service %q", name)
	}
	svc.mu.Lock()
	defer svc.mu.Unlock()
	p := svc.proc
	p.expect()
	if err := signalGroup(p, sig); err != nil {
		return fmt.Errorf("kill %s: %w", name, err)
	}
	select {
	case <-p.exited:
		return nil
	case <-time.After(s.cfg.StopTimeout):
		return fmt.Errorf("kill %s: pid %d still running %s after %v", name, p.pid, s.cfg.StopTimeout, sig)
	}
}

// Restart stops the service (or instance, SERVICE#N) if it is running (SIGTERM, then SIGKILL after
// Config.StopTimeout), starts it again with the same environment and a new address file, and waits for its
// addresses (bounded by ctx and Config.StartTimeout). It does not wait for readiness.
func (s *Stack) Restart(ctx context.Context, name string) error {
	svc, ok := s.lookup(name)
	if !ok {
		return fmt.Errorf("restart: unknown service %q", name)
	}
	s.mu.Lock()
	stopping := s.stopping
	s.mu.Unlock()
	if stopping {
		return fmt.Errorf("restart %s: stack is stopping", name)
	}
	svc.mu.Lock()
	defer svc.mu.Unlock()
	if _, err := s.terminate(svc.proc); err != nil {
		return fmt.Errorf("restart %s: %w", name, err)
	}
	p, err := s.launch(svc)
	if err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	if err := s.awaitAddrs(ctx, svc, p); err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	return nil
}

// terminate stops p: SIGTERM, then after StopTimeout SIGQUIT (a goroutine dump) and SIGKILL. It reports whether
// SIGTERM was not enough.
func (s *Stack) terminate(p *proc) (killed bool, err error) {
	p.expect()
	select {
	case <-p.exited:
		return false, nil
	default:
	}
	if err := signalGroup(p, syscall.SIGTERM); err != nil {
		return false, err
	}
	select {
	case <-p.exited:
		return false, nil
	case <-time.After(s.cfg.StopTimeout):
	}
	// SIGQUIT first: the Go runtime writes every goroutine's stack to the service's stderr (the stack's output)
	// and exits, so a stop that hangs leaves the reason behind. SIGKILL if even that does not end it.
	if err := syscall.Kill(p.pid, syscall.SIGQUIT); err != nil && !errors.Is(err, syscall.ESRCH) {
		return true, fmt.Errorf("signal %v to process %d: %w", syscall.SIGQUIT, p.pid, err)
	}
	select {
	case <-p.exited:
		return true, nil
	case <-time.After(goroutineDumpWait):
	}
	if err := signalGroup(p, syscall.SIGKILL); err != nil {
		return true, err
	}
	<-p.exited
	return true, nil
}

// goroutineDumpWait is how long terminate lets a service that ignored SIGTERM write its goroutine dump after
// SIGQUIT before SIGKILL.
const goroutineDumpWait = 5 * time.Second

// signalGroup signals p's process group; a group that is already gone is not an error.
func signalGroup(p *proc, sig syscall.Signal) error {
	if err := syscall.Kill(-p.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal %v to process group %d: %w", sig, p.pid, err)
	}
	return nil
}

// Stop sends SIGTERM to every child at once, waits up to Config.StopTimeout for them to exit, sends SIGKILL to
// the rest and returns once every child has exited and its output is flushed. The error names the children
// that needed SIGKILL or exited with a failure status on SIGTERM (nil for a clean stop). Stop is idempotent:
// later calls return the first call's result. Done is closed.
func (s *Stack) Stop() error {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.stopping = true
		s.mu.Unlock()
		s.doneOnce.Do(func() { close(s.done) })

		type result struct {
			name   string
			killed bool
			err    error
		}
		s.instances.Lock()
		order := slices.Clone(s.order)
		s.instances.Unlock()
		results := make([]result, len(order))
		var wg sync.WaitGroup
		for i, svc := range order {
			wg.Go(func() {
				svc.mu.Lock()
				defer svc.mu.Unlock()
				p := svc.proc
				if p == nil {
					return
				}
				wasRunning := true
				select {
				case <-p.exited:
					wasRunning = false
				default:
				}
				killed, err := s.terminate(p)
				if err == nil && wasRunning && !killed && p.err != nil && !isTermination(p.err) {
					err = fmt.Errorf("exited with %w on SIGTERM", p.err)
				}
				results[i] = result{name: svc.name, killed: killed, err: err}
			})
		}
		wg.Wait()
		var problems []string
		for _, r := range results {
			switch {
			case r.killed:
				problems = append(problems, fmt.Sprintf("%s did not exit within %s of SIGTERM and was killed (its goroutine dump, from SIGQUIT, is in its output)", r.name, s.cfg.StopTimeout))
			case r.err != nil:
				problems = append(problems, fmt.Sprintf("%s: %v", r.name, r.err))
			}
		}
		if len(problems) > 0 {
			s.stopErr = fmt.Errorf("stop: %s", strings.Join(problems, "; "))
		}
		_ = os.RemoveAll(s.dir)
	})
	return s.stopErr
}

// isTermination reports whether err is the wait status of a process killed by SIGTERM (one that installed no
// handler), which is a clean stop.
func isTermination(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM
}

// prefixWriter serialises lines from many children into one writer with a fixed-width name prefix.
type prefixWriter struct {
	mu    sync.Mutex
	w     io.Writer
	width int
}

func newPrefixWriter(w io.Writer, names []string) *prefixWriter {
	width := 0
	for _, n := range names {
		width = max(width, len(n))
	}
	return &prefixWriter{w: w, width: width}
}

// copyLines copies r to the writer line by line until EOF, prefixing each line with name and keeping the last
// lines in tail. A final line without a newline is written with one.
func (pw *prefixWriter) copyLines(name string, r io.Reader, tail *ring) {
	br := bufio.NewReaderSize(r, 64<<10)
	prefix := fmt.Sprintf("%-*s | ", pw.width, name)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			line = strings.TrimRight(line, "\r\n")
			tail.add(line)
			pw.mu.Lock()
			_, _ = io.WriteString(pw.w, prefix+line+"\n")
			pw.mu.Unlock()
		}
		if err != nil {
			return
		}
	}
}

// ring keeps the last n lines.
type ring struct {
	mu    sync.Mutex
	buf   []string
	next  int
	count int
}

func newRing(n int) *ring { return &ring{buf: make([]string, n)} }

func (r *ring) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf[r.next] = s
	r.next = (r.next + 1) % len(r.buf)
	r.count = min(r.count+1, len(r.buf))
}

func (r *ring) lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, r.count)
	for i := range r.count {
		out = append(out, r.buf[(r.next-r.count+i+len(r.buf))%len(r.buf)])
	}
	return out
}
