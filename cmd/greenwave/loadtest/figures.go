package main

import (
	"encoding/json"
	"fmt"
	"os"
)

// Figures is what a run writes for benchreport --figures: rows measured outside `go test`, with when and under
// what load they were measured.
type Figures struct {
	// Kind is the mode that measured them (pipeline or load).
	Kind string `json:"kind"`
	// Date is when the run ended (RFC 3339, UTC).
	Date string `json:"date"`
	// LoadStart and LoadEnd are /proc/loadavg's first three fields at the start and the end of the run.
	LoadStart string      `json:"load_start"`
	LoadEnd   string      `json:"load_end"`
	Rows      []FigureRow `json:"rows"`
}

// FigureRow is one row of the report.
type FigureRow struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	Setup string  `json:"setup"`
	Aim   *Aim    `json:"aim,omitempty"`
}

// Aim is a row's target: the value must be at most (or, AtLeast, at least) Bound.
type Aim struct {
	Bound   float64 `json:"bound"`
	AtLeast bool    `json:"at_least,omitempty"`
}

func (f Figures) write(path string) error {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encode figures: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write figures: %w", err)
	}
	return nil
}
