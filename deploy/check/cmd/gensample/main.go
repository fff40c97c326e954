// Command gensample regenerates deploy/demo/sample.csv, the readings the compose demo replays, from the example
// topology (config/topology.yaml):
//
//	go run ./deploy/check/cmd/gensample
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/greenwave-city/greenwave/deploy/check"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "gensample: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	root, err := check.FindRepoRoot(wd)
	if err != nil {
		return err
	}
	topo, err := os.ReadFile(filepath.Join(root, "config", "topology.yaml"))
	if err != nil {
		return fmt.Errorf("read topology: %w", err)
	}
	detectors, err := check.TopologyDetectors(topo)
	if err != nil {
		return fmt.Errorf("config/topology.yaml: %w", err)
	}
	data := check.Sample(detectors, check.DemoSampleConfig())
	if err := os.WriteFile(filepath.Join(root, check.SampleCSV), data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", check.SampleCSV, err)
	}
	fmt.Printf("wrote %s (%d bytes)\n", check.SampleCSV, len(data))
	return nil
}
