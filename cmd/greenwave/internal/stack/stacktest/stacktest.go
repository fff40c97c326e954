// Package stacktest builds the fake service binary (internal/stack/testdata/fakesvc) that tests of the stack and
// of `greenwave dev` run in place of the real services. See fakesvc's doc comment for its behaviour switches.
package stacktest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/greenwave-city/greenwave/pkg/kafkatest"
)

// BuildFake builds the fake service into dir once per name of names, as dir/NAME (hard links of one binary:
// the fake takes its role from the name it was started as).
func BuildFake(dir string, names ...string) error {
	if len(names) == 0 {
		return errors.New("build fake: no names")
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return errors.New("build fake: cannot locate source")
	}
	src := filepath.Join(filepath.Dir(file), "..", "testdata", "fakesvc")
	first := filepath.Join(dir, names[0])
	cmd := exec.Command("go", "build", "-o", first, ".")
	cmd.Dir = src
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build fake: %w\n%s", err, out.Bytes())
	}
	for _, n := range names[1:] {
		if err := os.Link(first, filepath.Join(dir, n)); err != nil {
			return fmt.Errorf("build fake: %w", err)
		}
	}
	return nil
}

// Main is the TestMain of packages that run fake services: it builds the fake under every name of names into a
// temporary directory, stores that directory in *dir, runs the tests, removes it, and fails the run on leaked
// goroutines. It returns the exit code for os.Exit.
func Main(m *testing.M, dir *string, names ...string) int {
	d, err := os.MkdirTemp("", "greenwave-fakesvc-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(d)
	if err := BuildFake(d, names...); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	*dir = d
	return kafkatest.Main(m)
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers and readers: what a stack's children print
// (Config.Stdout), read while they still run.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
