// Package cleaner wires the cleaning core (pkg/clean) to Kafka: raw readings in, feature frames and dead letters
// out, per-intersection state snapshotted to a compacted changelog before input offsets are committed.
//
// It serves nothing to clients but its health, readiness and metrics endpoints, so it has no api.go: run.go
// wires Kafka and the server, handler.go is the per-partition stream handler, restore.go rebuilds a partition
// from the changelog.
package cleaner
