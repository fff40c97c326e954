package collector

import (
	"time"

	"github.com/greenwave-city/greenwave/pkg/app"
)

// Config is the collector's configuration, read from the environment.
type Config struct {
	app.Common
	TokensFile      string        `env:"COLLECTOR_TOKENS_FILE" default:"" help:"gateway registry (YAML, read at start): gateway ids, SHA-256 of their API tokens (and of the next token while rotating), allowed intersections/detectors/stations, rate limits"`
	AllowAnonymous  bool          `env:"COLLECTOR_ALLOW_ANONYMOUS" default:"false" help:"accept readings without a gateway token (development only; greenwave dev sets it)"`
	MaxBatch        int           `env:"COLLECTOR_MAX_BATCH" default:"5000" help:"maximum readings plus weather observations in one batch"`
	MaxMessageBytes int           `env:"COLLECTOR_MAX_MESSAGE_BYTES" default:"4194304" help:"maximum size of one gRPC message or HTTP request body, in bytes"`
	StreamInFlight  int           `env:"COLLECTOR_STREAM_IN_FLIGHT" default:"8" help:"batches one StreamReadings stream may have in flight (published concurrently, acknowledged in order)"`
	StreamIdle      time.Duration `env:"COLLECTOR_STREAM_IDLE_TIMEOUT" default:"30m" help:"a StreamReadings stream that receives no batch and has none in flight for this long is ended with UNAVAILABLE (the gateway opens a new one when it has data), so idle streams cannot pile up; keep it above the gateways' sending interval. 0 never ends idle streams"`
	MaxInFlight     int           `env:"COLLECTOR_MAX_IN_FLIGHT" default:"256" help:"batches in flight across the whole collector; beyond it requests get RESOURCE_EXHAUSTED / 503"`
	MaxFutureSkew   time.Duration `env:"COLLECTOR_MAX_FUTURE_SKEW" default:"2m" help:"how far ahead of the collector's clock an observation may be"`
	MaxAge          time.Duration `env:"COLLECTOR_MAX_AGE" default:"720h" help:"oldest observation accepted (backfill horizon)"`
}

// Validate reports every problem.
func (c *Config) Validate() []string {
	p := c.Common.Validate()
	if c.MaxBatch < 1 {
		p = append(p, "COLLECTOR_MAX_BATCH must be at least 1")
	}
	if c.MaxMessageBytes < 1024 {
		p = append(p, "COLLECTOR_MAX_MESSAGE_BYTES must be at least 1024")
	}
	if c.StreamInFlight < 1 {
		p = append(p, "COLLECTOR_STREAM_IN_FLIGHT must be at least 1")
	}
	if c.StreamIdle < 0 {
		p = append(p, "COLLECTOR_STREAM_IDLE_TIMEOUT must not be negative")
	}
	if c.MaxInFlight < 1 {
		p = append(p, "COLLECTOR_MAX_IN_FLIGHT must be at least 1")
	}
	if c.MaxFutureSkew < 0 || c.MaxAge <= 0 {
		p = append(p, "COLLECTOR_MAX_FUTURE_SKEW must be ≥ 0 and COLLECTOR_MAX_AGE positive")
	}
	if c.TokensFile == "" && !c.AllowAnonymous {
		p = append(p, "no gateway authentication is configured: set COLLECTOR_TOKENS_FILE to a gateway registry, or COLLECTOR_ALLOW_ANONYMOUS=true (development only)")
	}
	return p
}
