//go:build !linux

package traci

import (
	"os"
	"syscall"
)

// sysProcAttr has no process group or parent-death signal outside Linux: Close is what ends sumo there.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// killGroup kills sumo itself, the only process Start knows of outside Linux.
func killGroup(p *os.Process) error { return p.Kill() }
