package check

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The tests share one build of the five services (and their `--env-json`), made once in TestMain: building is
// the slow part, every check after it is a pure comparison.
var (
	repoRoot string
	// serviceVars is each service's configuration as its binary prints it, keyed by service name.
	serviceVars map[string][]Var
	// configuration is the same in pipeline order, as docs/configuration.md is rendered from it.
	configuration []ServiceVars
)

func TestMain(m *testing.M) {
	if fuzzOnly() {
		os.Exit(m.Run())
	}
	code, err := setup(m)
	if err != nil {
		fmt.Fprintf(os.Stderr, "deploy/check: %v\n", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func setup(m *testing.M) (int, error) {
	wd, err := os.Getwd()
	if err != nil {
		return 0, err
	}
	if repoRoot, err = FindRepoRoot(wd); err != nil {
		return 0, err
	}
	tmp, err := os.MkdirTemp("", "deploy-check-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bins, err := BuildServices(ctx, repoRoot, tmp)
	if err != nil {
		return 0, err
	}
	if configuration, err = Configuration(ctx, bins); err != nil {
		return 0, err
	}
	serviceVars = map[string][]Var{}
	for _, s := range configuration {
		serviceVars[s.Service] = s.Vars
	}
	return m.Run(), nil
}

// fuzzOnly reports whether this process runs fuzz targets alone: a fuzz worker (which runs TestMain too) or a
// coordinator started with -run '^$'. The fuzz targets call pure decoders, and building the services in every
// worker would use up the fuzz time before the first input.
func fuzzOnly() bool {
	flag.Parse()
	value := func(name string) string {
		if f := flag.Lookup(name); f != nil {
			return f.Value.String()
		}
		return ""
	}
	return value("test.fuzzworker") == "true" || (value("test.fuzz") != "" && value("test.run") == "^$")
}

// commonVars are the variables every service reads.
func commonVars() map[string]bool {
	return Names(sharedVars(configuration).Vars)
}

func readRepoFile(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, rel))
	if err != nil {
		t.Fatalf("read %s: %v", rel, err)
	}
	return b
}
