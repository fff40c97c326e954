package main

import (
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// takeTerminal makes this process the foreground process group of its controlling terminal when it shares that
// group with the processes that started it, and returns the function that gives the terminal back.
//
// Why: a terminal's Ctrl-C sends SIGINT to every process of its foreground group. Under `make run`, that group
// holds make, `go run` and greenwave. greenwave stops cleanly and exits 0, and `go run` ignores SIGINT while its
// program runs and passes the 0 on, but GNU make, once it has waited for its recipe, kills itself with the same
// signal whatever the recipe's status ("make: *** [Makefile:24: run] Interrupt", status 130). In a group of its
// own that holds the terminal, greenwave alone gets the Ctrl-C, and `make run` exits with greenwave's status.
//
// Nothing changes when stdin is no terminal, when the process is not in the terminal's foreground group (a
// background job, a test harness), or when it already leads its group (started directly from a shell, which gives
// every job a group of its own). While greenwave holds the terminal, Ctrl-Z is ignored: stopping greenwave alone
// would leave the shell waiting for a make that never stopped.
func takeTerminal() (restore func()) {
	noop := func() {}
	fd := int(os.Stdin.Fd())
	fg, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
	if err != nil { // not a terminal, or not ours
		return noop
	}
	pgrp := syscall.Getpgrp()
	if fg != pgrp || syscall.Getpid() == pgrp {
		return noop
	}
	// A process outside the foreground group may set it only while ignoring SIGTTOU; keep ignoring it, so the last
	// lines written after the terminal was given back are not stopped either (when the terminal has TOSTOP set).
	signal.Ignore(syscall.SIGTTOU)
	if err := syscall.Setpgid(0, 0); err != nil {
		return noop
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPGRP, syscall.Getpid()); err != nil {
		_ = syscall.Setpgid(0, pgrp)
		return noop
	}
	signal.Ignore(syscall.SIGTSTP)
	return func() {
		_ = unix.IoctlSetPointerInt(fd, unix.TIOCSPGRP, pgrp)
		signal.Reset(syscall.SIGTSTP)
	}
}
