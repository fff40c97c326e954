package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
)

// Figures is a file of rows measured outside `go test`, written by cmd/greenwave/loadtest (`--mode pipeline`
// in `make bench`, `--mode load` in `make loadtest`): the rows with when and under what load they were measured.
type Figures struct {
	Kind      string      `json:"kind"`
	Date      string      `json:"date"`
	LoadStart string      `json:"load_start"`
	LoadEnd   string      `json:"load_end"`
	Rows      []FigureRow `json:"rows"`
}

// FigureRow is one measured row of a Figures file.
type FigureRow struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	Setup string  `json:"setup"`
	Aim   *struct {
		Bound   float64 `json:"bound"`
		AtLeast bool    `json:"at_least"`
	} `json:"aim"`
}

// ParseFigures decodes a Figures file strictly (unknown fields are an error, as is a row without a name or unit
// or with a value that is not finite), naming the file.
func ParseFigures(r io.Reader, name string) (Figures, error) {
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

// Rows converts the figures to report rows; the setup ends with when they were measured and the load.
func (f Figures) reportRows() []Row {
	var out []Row
	for _, fr := range f.Rows {
		v := fr.Value
		r := Row{Name: fr.Name, Value: &v, Unit: fr.Unit,
			Setup: fmt.Sprintf("%s (measured %s, load average %s at the start, %s at the end)", fr.Setup, f.Date, f.LoadStart, f.LoadEnd)}
		if fr.Aim != nil {
			a := aim{bound: fr.Aim.Bound, atLeast: fr.Aim.AtLeast}
			r.Aim = a.String(fr.Unit)
			r.Met = a.met(r.Value, nil)
		}
		out = append(out, r)
	}
	return out
}

// Merge puts the rows of figs into rows: a row of the same name is replaced where it stands (a "not measured"
// placeholder, or an older measurement), a new one is appended.
func Merge(rows []Row, figs ...Figures) []Row {
	out := append([]Row(nil), rows...)
	for _, f := range figs {
		for _, r := range f.reportRows() {
			replaced := false
			for i := range out {
				if out[i].Name == r.Name {
					out[i], replaced = r, true
					break
				}
			}
			if !replaced {
				out = append(out, r)
			}
		}
	}
	return out
}

// figuresFlag collects the --figures files.
type figuresFlag []string

func (f *figuresFlag) String() string { return strings.Join(*f, ",") }

func (f *figuresFlag) Set(s string) error {
	*f = append(*f, s)
	return nil
}

// decodeStrict decodes JSON into v, refusing unknown fields.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
