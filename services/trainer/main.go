// Command trainer learns an online linear regression per intersection approach and horizon (recursive least
// squares with forgetting), evaluates it test-then-train against baselines and snapshots it to a compacted topic.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/greenwave-city/greenwave/pkg/app"
	"github.com/greenwave-city/greenwave/services/trainer/internal/trainer"
)

func main() {
	if handled, err := app.HandleFlags(os.Args[1:], os.Stdout, "trainer", "learns online regression models per approach and horizon", &trainer.Config{}); handled {
		if err != nil {
			fmt.Fprintf(os.Stderr, "trainer: %v\n", err)
			os.Exit(2)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := trainer.Run(ctx, os.LookupEnv); err != nil {
		fmt.Fprintf(os.Stderr, "trainer: %v\n", err)
		os.Exit(1)
	}
}
