// Command collector is Greenwave's ingestion endpoint: sensor gateways publish detector readings and weather over
// gRPC; it validates them, converts units and publishes them durably to Kafka, acknowledging only what Kafka has.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/greenwave-city/greenwave/pkg/app"
	"github.com/greenwave-city/greenwave/services/collector/internal/collector"
)

func main() {
	if handled, err := app.HandleFlags(os.Args[1:], os.Stdout, "collector", "ingests sensor readings over gRPC and publishes them durably to Kafka", &collector.Config{}); handled {
		if err != nil {
			fmt.Fprintf(os.Stderr, "collector: %v\n", err)
			os.Exit(2)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := collector.Run(ctx, os.LookupEnv); err != nil {
		fmt.Fprintf(os.Stderr, "collector: %v\n", err)
		os.Exit(1)
	}
}
