package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/cli"
	"github.com/greenwave-city/greenwave/pkg/evaluate"
	"github.com/greenwave-city/greenwave/pkg/npy"
)

const fitSynopsis = "--x X.npy --y y.npy [--split tail|random] [--seed N] [--json]"

const fitDescription = `
Fits ordinary least squares with an intercept (pkg/regression.OLS, Householder QR) to NumPy arrays and reports
the coefficients and the test mean squared error of an 80/20 split: the training rows are the first
floor(0.8·n); --split tail (default) tests on the last 20 % of the rows, --split random on those of a
permutation seeded by --seed (Fisher–Yates driven by SplitMix64; docs/evaluation.md gives the algorithm).
The result matches scikit-learn's LinearRegression on the same training rows.

X must be a 2-D float64 array (rows, features), y a float64 vector (n,) or (n, 1), both saved by numpy.save
(format 1.0 or 2.0, C order). Convert other dtypes first: numpy.save("X.npy", X.astype(numpy.float64)).

--json prints one object: {"intercept": x, "coef": [..], "mse": x, "n_train": N, "n_test": N}.`

// fitOutput is the --json output of greenwave fit.
type fitOutput struct {
	Intercept float64   `json:"intercept"`
	Coef      []float64 `json:"coef"`
	MSE       float64   `json:"mse"`
	NTrain    int       `json:"n_train"`
	NTest     int       `json:"n_test"`
}

func runFit(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("fit", fitSynopsis, fitDescription, stderr)
	xPath := fs.String("x", "", "feature matrix `X.npy` (float64, shape (rows, features))")
	yPath := fs.String("y", "", "target vector `y.npy` (float64, shape (rows,) or (rows, 1))")
	split := fs.String("split", evaluate.SplitTail, "test rows: tail (the last 20 %) or random (seeded permutation)")
	seed := fs.Uint64("seed", 0, "seed of --split random")
	asJSON := fs.Bool("json", false, "print one JSON object instead of a table")
	if err := cli.ParseFlags(fs, args); err != nil {
		return err
	}
	if *xPath == "" || *yPath == "" {
		return usagef("fit: --x and --y are required (see greenwave fit --help)")
	}
	if *split != evaluate.SplitTail && *split != evaluate.SplitRandom {
		return usagef("fit: --split %q: want tail or random", *split)
	}
	xa, err := readNPY(*xPath)
	if err != nil {
		return err
	}
	X, err := xa.Matrix()
	if err != nil {
		return fmt.Errorf("%s: %w", *xPath, err)
	}
	ya, err := readNPY(*yPath)
	if err != nil {
		return err
	}
	y, err := ya.Vector()
	if err != nil {
		return fmt.Errorf("%s: %w", *yPath, err)
	}
	if len(X) != len(y) {
		return fmt.Errorf("%s has %d rows but %s has %d values", *xPath, len(X), *yPath, len(y))
	}
	res, err := evaluate.Fit(X, y, *split, *seed)
	if err != nil {
		return err
	}
	out := fitOutput{Intercept: res.Intercept, Coef: res.Coef, MSE: res.MSE, NTrain: res.NTrain, NTest: res.NTest}
	if *asJSON {
		b, err := json.Marshal(out)
		if err != nil {
			return fmt.Errorf("encode result: %w", err)
		}
		_, err = fmt.Fprintf(stdout, "%s\n", b)
		return err
	}
	fmt.Fprintf(stdout, "OLS with intercept, %s split: %d training rows, %d test rows\n", *split, out.NTrain, out.NTest)
	fmt.Fprintf(stdout, "  %-10s %.10g\n", "intercept", out.Intercept)
	for i, c := range out.Coef {
		fmt.Fprintf(stdout, "  %-10s %.10g\n", fmt.Sprintf("x%d", i), c)
	}
	_, err = fmt.Fprintf(stdout, "test MSE %.10g\n", out.MSE)
	return err
}

// readNPY reads one .npy file; errors name the file.
func readNPY(path string) (*npy.Array, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	a, err := npy.Read(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}
