// Command trainer learns an online linear regression per intersection approach and horizon (recursive least
// squares with forgetting), evaluates it test-then-train against baselines and snapshots it to a compacted topic.
package main

import (
	"github.com/greenwave-city/greenwave/pkg/app"
	"github.com/greenwave-city/greenwave/services/trainer/internal/trainer"
)

func main() {
	app.Main("trainer", "learns online regression models per approach and horizon", &trainer.Config{}, trainer.Run)
}
