package clip

import (
	"strings"
	"testing"
)

func TestID(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 1<<20)
	for _, tt := range []struct {
		name, in, want string
	}{
		{"short", "det-1", "det-1"},
		{"exactly the limit", strings.Repeat("a", MaxID), strings.Repeat("a", MaxID)},
		{"1 MiB", long, strings.Repeat("x", MaxID) + "…"},
		{"cut inside a rune", strings.Repeat("a", MaxID-1) + "é" + "bbb", strings.Repeat("a", MaxID-1) + "…"},
	} {
		if got := ID(tt.in); got != tt.want {
			t.Errorf("%s: ID() = %q (%d bytes), want %q", tt.name, got[:min(len(got), 40)], len(got), tt.want[:min(len(tt.want), 40)])
		}
	}
}
