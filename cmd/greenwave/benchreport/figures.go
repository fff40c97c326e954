package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/benchfig"
)

// ParseFigures decodes a figures file (benchfig.Parse).
func ParseFigures(r io.Reader, name string) (benchfig.Figures, error) { return benchfig.Parse(r, name) }

// Rows converts the figures to report rows; the setup ends with when they were measured and the load.
func reportRows(f benchfig.Figures) []Row {
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
func Merge(rows []Row, figs ...benchfig.Figures) []Row {
	out := append([]Row(nil), rows...)
	for _, f := range figs {
		for _, r := range reportRows(f) {
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
