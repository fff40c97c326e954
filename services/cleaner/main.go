// Command cleaner turns raw readings into trustworthy feature vectors: deduplication, plausibility and outlier
// checks, event-time windows, gap filling and the weather join (the rules live in pkg/clean).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/greenwave-city/greenwave/pkg/app"
	"github.com/greenwave-city/greenwave/services/cleaner/internal/cleaner"
)

func main() {
	if handled, err := app.HandleFlags(os.Args[1:], os.Stdout, "cleaner", "cleans readings into event-time feature vectors", &cleaner.Config{}); handled {
		if err != nil {
			fmt.Fprintf(os.Stderr, "cleaner: %v\n", err)
			os.Exit(2)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := cleaner.Run(ctx, os.LookupEnv); err != nil {
		fmt.Fprintf(os.Stderr, "cleaner: %v\n", err)
		os.Exit(1)
	}
}
