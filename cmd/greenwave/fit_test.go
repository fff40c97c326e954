package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/cli"
)

// TestFitMatchesScikitLearn checks `greenwave fit --json` against scikit-learn's LinearRegression on the same
// training rows (testdata/fit/expected.json, written by testdata/fit/gen.py), to 1e-6 relative.
func TestFitMatchesScikitLearn(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("testdata/fit/expected.json")
	if err != nil {
		t.Fatal(err)
	}
	var golden map[string]fitOutput
	if err := json.Unmarshal(b, &golden); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
	}{
		{"tail", nil},
		{"random_seed_7", []string{"--split", "random", "--seed", "7"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			want, ok := golden[tc.name]
			if !ok {
				t.Fatalf("no golden %q", tc.name)
			}
			var stdout, stderr bytes.Buffer
			args := append([]string{"fit", "--x", "testdata/fit/X.npy", "--y", "testdata/fit/y.npy", "--json"}, tc.args...)
			if err := run(context.Background(), args, &stdout, &stderr); err != nil {
				t.Fatalf("fit: %v (stderr %s)", err, stderr.String())
			}
			// The schema: exactly these keys.
			var raw map[string]json.RawMessage
			if err := json.Unmarshal(stdout.Bytes(), &raw); err != nil {
				t.Fatalf("output %q is not one JSON object: %v", stdout.String(), err)
			}
			for _, k := range []string{"intercept", "coef", "mse", "n_train", "n_test"} {
				if _, ok := raw[k]; !ok {
					t.Errorf("output lacks %q", k)
				}
			}
			if len(raw) != 5 {
				t.Errorf("output has %d keys, want 5: %s", len(raw), stdout.String())
			}
			var got fitOutput
			if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			close := func(what string, g, w float64) {
				if math.Abs(g-w) > 1e-6*math.Abs(w) {
					t.Errorf("%s = %.12g, scikit-learn %.12g (relative error %.2g)", what, g, w, math.Abs(g-w)/math.Abs(w))
				}
			}
			close("intercept", got.Intercept, want.Intercept)
			close("mse", got.MSE, want.MSE)
			if len(got.Coef) != len(want.Coef) {
				t.Fatalf("coef %v, want %v", got.Coef, want.Coef)
			}
			for i := range got.Coef {
				close("coef", got.Coef[i], want.Coef[i])
			}
			if got.NTrain != want.NTrain || got.NTest != want.NTest {
				t.Errorf("rows %d/%d, want %d/%d", got.NTrain, got.NTest, want.NTrain, want.NTest)
			}
		})
	}
}

func TestFitErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// A float32 array as numpy.save writes it.
	f32 := filepath.Join(dir, "f32.npy")
	hdr := "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }"
	for (10+len(hdr)+1)%64 != 0 {
		hdr += " "
	}
	hdr += "\n"
	file := append([]byte("\x93NUMPY\x01\x00"), byte(len(hdr)), 0)
	file = append(append(file, hdr...), make([]byte, 8)...)
	if err := os.WriteFile(f32, file, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		args  []string
		usage bool
		msg   string
	}{
		{"missing flags", []string{"--x", "testdata/fit/X.npy"}, true, "--x and --y are required"},
		{"bad split", []string{"--x", "a", "--y", "b", "--split", "middle"}, true, `--split "middle"`},
		{"float32 y", []string{"--x", "testdata/fit/X.npy", "--y", f32}, false, `f32.npy: dtype "<f4"`},
		{"y is a matrix", []string{"--x", "testdata/fit/X.npy", "--y", "testdata/fit/X.npy"}, false, "X.npy: array of shape [250 3] is not a vector"},
		{"missing file", []string{"--x", filepath.Join(dir, "nope.npy"), "--y", "testdata/fit/y.npy"}, false, "nope.npy"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), append([]string{"fit"}, tc.args...), &stdout, &stderr)
			var ue *cli.UsageError
			if err == nil || !strings.Contains(err.Error(), tc.msg) || (tc.usage != (errorsAs(err, &ue))) {
				t.Fatalf("err %v (usage %v), want one containing %q (usage %v)", err, errorsAs(err, &ue), tc.msg, tc.usage)
			}
		})
	}
}

func errorsAs(err error, target **cli.UsageError) bool { return errors.As(err, target) }
