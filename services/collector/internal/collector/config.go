// Package collector wires the ingestion APIs to Kafka. Validation lives in pkg/ingest.
package collector

import (
	"time"

	"github.com/greenwave-city/greenwave/pkg/app"
)

// Config is the collector's configuration, read from the environment.
type Config struct {
	app.Common
	AllowAnonymous bool          `env:"COLLECTOR_ALLOW_ANONYMOUS" default:"false" help:"accept readings without a gateway token (development only; greenwave dev sets it)"`
	MaxBatch       int           `env:"COLLECTOR_MAX_BATCH" default:"5000" help:"maximum readings plus weather observations in one batch"`
	MaxFutureSkew  time.Duration `env:"COLLECTOR_MAX_FUTURE_SKEW" default:"2m" help:"how far ahead of the collector's clock an observation may be"`
	MaxAge         time.Duration `env:"COLLECTOR_MAX_AGE" default:"720h" help:"oldest observation accepted (backfill horizon)"`
}

// Validate reports every problem.
func (c *Config) Validate() []string {
	p := c.Common.Validate()
	if c.MaxBatch < 1 {
		p = append(p, "COLLECTOR_MAX_BATCH must be at least 1")
	}
	if !c.AllowAnonymous {
		p = append(p, "no gateway authentication is configured: set COLLECTOR_ALLOW_ANONYMOUS=true (development only)")
	}
	return p
}
