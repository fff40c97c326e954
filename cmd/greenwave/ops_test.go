package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/cli"
)

// TestOpsExitStatus checks that the operator commands' outcomes map to the documented exit statuses through
// the CLI's dispatch: 0 for success and --help, 2 for a usage error, 1 for a failed operation.
func TestOpsExitStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		args       []string
		want       int
		wantStderr string
	}{
		{name: "tail help", args: []string{"tail", "--help"}, want: 0, wantStderr: "Usage: greenwave tail TOPIC [flags]"},
		{name: "help topics", args: []string{"help", "topics"}, want: 0, wantStderr: "Usage: greenwave topics COMMAND"},
		{name: "models list help", args: []string{"models", "list", "--help"}, want: 0, wantStderr: "-page-size"},
		{name: "tail without topic", args: []string{"tail"}, want: 2, wantStderr: "greenwave: tail: missing TOPIC"},
		{name: "plans unknown verb", args: []string{"plans", "set"}, want: 2, wantStderr: `unknown command "set"`},
		{name: "topics bad flag", args: []string{"topics", "ensure", "--partitions", "x"}, want: 2, wantStderr: "invalid value"},
		{name: "models unreachable", args: []string{"models", "list", "--addr", "127.0.0.1:1", "--timeout", "2s"}, want: 1, wantStderr: "trainer at 127.0.0.1:1 is unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			got := cli.ExitCode(run(t.Context(), tt.args, &stdout, &stderr), &stderr)
			if got != tt.want || !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", got, stderr.String(), tt.want, tt.wantStderr)
			}
		})
	}
}
