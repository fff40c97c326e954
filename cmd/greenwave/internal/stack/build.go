package stack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// EnvBinDir names the environment variable that points at prebuilt service binaries; when it is set,
// Binaries uses them and builds nothing.
const EnvBinDir = "GREENWAVE_BIN_DIR"

// FindRepoRoot walks up from dir to the first directory holding go.work, the root of the Greenwave checkout.
func FindRepoRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for d := dir; ; {
		if fi, err := os.Stat(filepath.Join(d, "go.work")); err == nil && !fi.IsDir() {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("find repository root: no go.work in %s or any parent (run from the Greenwave checkout, or set %s)", dir, EnvBinDir)
		}
		d = parent
	}
}

// DefaultBinDir is where Binaries builds for a checkout: the user's cache directory, under
// greenwave/bin/<hash of repoRoot>, so two checkouts never overwrite each other's binaries and rebuilds of an
// unchanged checkout relink nothing.
func DefaultBinDir(repoRoot string) (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("default binary directory: %w", err)
	}
	sum := sha256.Sum256([]byte(repoRoot))
	return filepath.Join(cache, "greenwave", "bin", hex.EncodeToString(sum[:6])), nil
}

// Binaries returns a directory holding a binary for each named service (all of Services when none are named):
// $GREENWAVE_BIN_DIR when it is set (checked, not built), otherwise DefaultBinDir(repoRoot) after Build.
func Binaries(ctx context.Context, repoRoot string, services ...string) (string, error) {
	if len(services) == 0 {
		services = Services
	}
	if dir := os.Getenv(EnvBinDir); dir != "" {
		var missing []string
		for _, s := range services {
			if _, err := os.Stat(filepath.Join(dir, s)); err != nil {
				missing = append(missing, s)
			}
		}
		if len(missing) > 0 {
			return "", fmt.Errorf("%s=%s lacks binaries for %s", EnvBinDir, dir, strings.Join(missing, ", "))
		}
		return dir, nil
	}
	dir, err := DefaultBinDir(repoRoot)
	if err != nil {
		return "", err
	}
	if err := Build(ctx, repoRoot, dir, services...); err != nil {
		return "", err
	}
	return dir, nil
}

// Build runs `go build -o outDir/ ./services/NAME...` in repoRoot for the named services (all of Services when
// none are named), in one go command so the packages build in parallel. The Go build cache keeps rebuilds
// fast, and go build leaves an up-to-date binary in outDir untouched. Concurrent Builds into the same outDir
// are serialised by a lock file. The error carries the compiler's output.
func Build(ctx context.Context, repoRoot, outDir string, services ...string) error {
	if len(services) == 0 {
		services = Services
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return fmt.Errorf("build services: %w", err)
	}
	unlock, err := lockDir(outDir)
	if err != nil {
		return fmt.Errorf("build services: %w", err)
	}
	defer unlock()
	args := []string{"build", "-o", outDir + string(filepath.Separator)}
	for _, s := range services {
		args = append(args, "./services/"+s)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = repoRoot
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(out.String())
		if msg == "" {
			msg = "(no output)"
		}
		return fmt.Errorf("build services (go %s in %s): %w\n%s", strings.Join(args, " "), repoRoot, err, msg)
	}
	return nil
}

// lockDir takes an exclusive advisory lock on dir/.lock, waiting for it; the returned function releases it.
func lockDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return func() { f.Close() }, nil
}
