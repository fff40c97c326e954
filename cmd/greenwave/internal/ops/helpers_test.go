package ops

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"testing"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/cli"
	"github.com/greenwave-city/greenwave/pkg/kafkatest"
)

// TestMain fails the package when a command leaves a goroutine behind (a reader, a connection, a gRPC stream).
func TestMain(m *testing.M) { os.Exit(kafkatest.Main(m)) }

// command is the signature of every operator command with its environment lookup.
type command func(ctx context.Context, args []string, stdout, stderr io.Writer, lookup lookupFunc) error

// env is a fake environment.
type env map[string]string

func (e env) lookup(k string) (string, bool) { v, ok := e[k]; return v, ok }

// runCmd runs cmd with an empty environment and returns its stdout, stderr and error.
func runCmd(t *testing.T, cmd command, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := cmd(t.Context(), args, &stdout, &stderr, env{}.lookup)
	return stdout.String(), stderr.String(), err
}

// exitStatus maps an error to the status the CLI exits with (cli.go's exitCode, for the errors ops returns).
func exitStatus(err error) int {
	var ue *cli.UsageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		return 2
	}
	return 1
}
