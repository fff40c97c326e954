// Command signalcontrol turns predicted congestion into safe signal timing plans (Webster-style cycle and splits
// under each intersection's hard constraints, with fallbacks) and streams them to field controllers.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/greenwave-city/greenwave/pkg/app"
	"github.com/greenwave-city/greenwave/services/signalcontrol/internal/signalcontrol"
)

func main() {
	if handled, err := app.HandleFlags(os.Args[1:], os.Stdout, "signalcontrol", "turns predictions into safe signal timing plans", &signalcontrol.Config{}); handled {
		if err != nil {
			fmt.Fprintf(os.Stderr, "signalcontrol: %v\n", err)
			os.Exit(2)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := signalcontrol.Run(ctx, os.LookupEnv); err != nil {
		fmt.Fprintf(os.Stderr, "signalcontrol: %v\n", err)
		os.Exit(1)
	}
}
