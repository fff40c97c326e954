// Command greenwave is the operator and developer CLI of Greenwave. Run `greenwave help` for its subcommands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, restore the default handling: a second Ctrl-C ends greenwave at once (its
		// children die with it through their parent-death signal).
		<-ctx.Done()
		stop()
	}()
	restore := func() {}
	if len(os.Args) > 1 && os.Args[1] == "dev" {
		restore = takeTerminal() // so `make run` stopped with Ctrl-C exits 0: see takeTerminal
	}
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	restore()
	stop()
	os.Exit(cli.ExitCode(err, os.Stderr))
}
