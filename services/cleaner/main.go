// Command cleaner turns raw readings into trustworthy feature vectors: deduplication, plausibility and outlier
// checks, event-time windows, gap filling and the weather join (the rules live in pkg/clean).
package main

import (
	"github.com/greenwave-city/greenwave/pkg/app"
	"github.com/greenwave-city/greenwave/services/cleaner/internal/cleaner"
)

func main() {
	app.Main("cleaner", "cleans readings into event-time feature vectors", &cleaner.Config{}, cleaner.Run)
}
