// Package benchfig is the figures file that cmd/greenwave/loadtest writes and benchreport --figures reads: rows
// measured outside `go test`, with when and under what load they were measured. One type for both sides keeps
// writer and reader from drifting apart.
package benchfig

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
)

// Figures is one run's measured rows.
type Figures struct {
	// Kind is the mode that measured them (pipeline or load).
	Kind string `json:"kind"`
	// Date is when the run ended (RFC 3339, UTC).
	Date string `json:"date"`
	// LoadStart and LoadEnd are /proc/loadavg's first three fields at the start and the end of the run.
	LoadStart string `json:"load_start"`
	LoadEnd   string `json:"load_end"`
	Rows      []Row  `json:"rows"`
}

// Row is one measured row.
type Row struct {
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

// Parse decodes a figures file strictly (unknown fields are an error, as is a row without a name or unit or with
// a value that is not finite), naming the file.
func Parse(r io.Reader, name string) (Figures, error) {
	var f Figures
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return Figures{}, fmt.Errorf("%s: decode figures: %w", name, err)
	}
	if dec.More() {
		return Figures{}, fmt.Errorf("%s: data after the figures object", name)
	}
	if len(f.Rows) == 0 {
		return Figures{}, fmt.Errorf("%s: no rows", name)
	}
	for i, r := range f.Rows {
		switch {
		case r.Name == "" || r.Unit == "":
			return Figures{}, fmt.Errorf("%s: row %d has no name or unit", name, i+1)
		case math.IsNaN(r.Value) || math.IsInf(r.Value, 0):
			return Figures{}, fmt.Errorf("%s: row %s: value %v is not finite", name, r.Name, r.Value)
		case r.Aim != nil && (math.IsNaN(r.Aim.Bound) || math.IsInf(r.Aim.Bound, 0)):
			return Figures{}, fmt.Errorf("%s: row %s: aim %v is not finite", name, r.Name, r.Aim.Bound)
		}
	}
	return f, nil
}

// Write writes f to path as indented JSON.
func (f Figures) Write(path string) error {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encode figures: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write figures: %w", err)
	}
	return nil
}
