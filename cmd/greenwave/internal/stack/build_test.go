package stack_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/stack"
)

// fakeRepo writes a workspace with one module holding a main package per name under services/.
func fakeRepo(t *testing.T, names ...string) string {
	t.Helper()
	root := t.TempDir()
	write := func(rel, text string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.work", "go 1.26.0\n\nuse ./services\n")
	write("services/go.mod", "module example.com/services\n\ngo 1.26.0\n")
	for _, n := range names {
		write("services/"+n+"/main.go", "package main\n\nfunc main() { println(\""+n+"\") }\n")
	}
	return root
}

func TestBuild(t *testing.T) {
	t.Parallel()
	root := fakeRepo(t, "alpha", "beta")
	out := filepath.Join(t.TempDir(), "bin")
	if err := stack.Build(context.Background(), root, out, "alpha", "beta"); err != nil {
		t.Fatalf("Build: %v", err)
	}
	for _, n := range []string{"alpha", "beta"} {
		b, err := exec.Command(filepath.Join(out, n)).CombinedOutput()
		if err != nil || strings.TrimSpace(string(b)) != n {
			t.Errorf("%s printed %q, %v", n, b, err)
		}
	}
	err := stack.Build(context.Background(), root, out, "gamma")
	if err == nil || !strings.Contains(err.Error(), "services/gamma") {
		t.Fatalf("Build of a missing service = %v, want the go command's complaint", err)
	}
}

func TestFindRepoRoot(t *testing.T) {
	t.Parallel()
	root := fakeRepo(t, "alpha")
	got, err := stack.FindRepoRoot(filepath.Join(root, "services", "alpha"))
	if err != nil || got != root {
		t.Fatalf("FindRepoRoot = %q, %v; want %q", got, err, root)
	}
	if _, err := stack.FindRepoRoot(t.TempDir()); err == nil {
		t.Fatal("FindRepoRoot outside a workspace succeeded")
	}
}

// Not parallel: it sets the environment.
func TestBinariesUsesPrebuiltDir(t *testing.T) {
	t.Setenv(stack.EnvBinDir, binDir)
	got, err := stack.Binaries(context.Background(), "/nonexistent")
	if err != nil || got != binDir {
		t.Fatalf("Binaries = %q, %v; want %q without building", got, err, binDir)
	}
	t.Setenv(stack.EnvBinDir, t.TempDir())
	if _, err := stack.Binaries(context.Background(), "/nonexistent"); err == nil || !strings.Contains(err.Error(), "lacks binaries for collector") {
		t.Fatalf("Binaries with an empty dir = %v", err)
	}
}
