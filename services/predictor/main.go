// Command predictor applies the latest models to the newest feature vectors and streams predicted congestion,
// with uncertainty and explanations, to Kafka and to gRPC subscribers.
package main

import (
	"github.com/greenwave-city/greenwave/pkg/app"
	"github.com/greenwave-city/greenwave/services/predictor/internal/predictor"
)

func main() {
	app.Main("predictor", "streams predicted congestion with uncertainty", &predictor.Config{}, predictor.Run)
}
