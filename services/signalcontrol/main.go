// Command signalcontrol turns predicted congestion into safe signal timing plans (Webster-style cycle and splits
// under each intersection's hard constraints, with fallbacks) and streams them to field controllers.
package main

import (
	"github.com/greenwave-city/greenwave/pkg/app"
	"github.com/greenwave-city/greenwave/services/signalcontrol/internal/signalcontrol"
)

func main() {
	app.Main("signalcontrol", "turns predictions into safe signal timing plans", &signalcontrol.Config{}, signalcontrol.Run)
}
