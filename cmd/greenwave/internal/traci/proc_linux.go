package traci

import (
	"os"
	"syscall"
)

// sysProcAttr puts sumo in a process group of its own, so that killGroup reaches anything it starts, and has
// the kernel kill it when the thread that started it dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup kills sumo's process group; sumo leads it, so the group id is its pid.
func killGroup(p *os.Process) error {
	return syscall.Kill(-p.Pid, syscall.SIGKILL)
}
