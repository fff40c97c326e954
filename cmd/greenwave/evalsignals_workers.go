package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
)

// evalWorkers is the default of eval's --workers: one worker per core the process may use
// (runtime.GOMAXPROCS). The report does not depend on it (evaluate.Config.Workers).
func evalWorkers() int { return runtime.GOMAXPROCS(0) }

// startCPUProfile starts writing a CPU profile of the process to name (eval's --cpuprofile) and returns the
// function that stops it and closes the file; with an empty name it does nothing.
func startCPUProfile(name string) (stop func() error, err error) {
	if name == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(name)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile %s: %w", name, err)
	}
	return func() error {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return fmt.Errorf("--cpuprofile %s: %w", name, err)
		}
		return nil
	}, nil
}
