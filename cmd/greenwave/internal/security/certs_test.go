package security

import (
	"os"
	"path/filepath"
	"testing"
)

// writeFile writes b to dir/name, readable by the owner only, and returns the path.
func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
