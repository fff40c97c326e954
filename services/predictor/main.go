// Command predictor applies the latest models to the newest feature vectors and streams predicted congestion,
// with uncertainty and explanations, to Kafka and to gRPC subscribers.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/greenwave-city/greenwave/pkg/app"
	"github.com/greenwave-city/greenwave/services/predictor/internal/predictor"
)

func main() {
	if handled, err := app.HandleFlags(os.Args[1:], os.Stdout, "predictor", "streams predicted congestion with uncertainty", &predictor.Config{}); handled {
		if err != nil {
			fmt.Fprintf(os.Stderr, "predictor: %v\n", err)
			os.Exit(2)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := predictor.Run(ctx, os.LookupEnv); err != nil {
		fmt.Fprintf(os.Stderr, "predictor: %v\n", err)
		os.Exit(1)
	}
}
