// Command collector is Greenwave's ingestion endpoint: sensor gateways publish detector readings and weather over
// gRPC; it validates them, converts units and publishes them durably to Kafka, acknowledging only what Kafka has.
package main

import (
	"github.com/greenwave-city/greenwave/pkg/app"
	"github.com/greenwave-city/greenwave/services/collector/internal/collector"
)

func main() {
	app.Main("collector", "ingests sensor readings over gRPC and publishes them durably to Kafka", &collector.Config{}, collector.Run)
}
