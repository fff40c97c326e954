module github.com/greenwave-city/greenwave/cmd/greenwave

go 1.26.0

require (
	github.com/greenwave-city/greenwave/pkg v0.0.0
	github.com/greenwave-city/greenwave/proto v0.0.0
)

replace github.com/greenwave-city/greenwave/pkg => ../../pkg

replace github.com/greenwave-city/greenwave/proto => ../../proto
