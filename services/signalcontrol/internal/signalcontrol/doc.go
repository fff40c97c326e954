// Package signalcontrol wires the plan decision (pkg/signal) to Kafka and gRPC: predictions in, validated plans
// out on the plans topic and to WatchPlans subscribers. Per intersection it keeps the last plan (rate limiting),
// the last planned window (replays) and an hour-of-week flow profile (the time-of-day fallback) in the compacted
// changelog; operator overrides are authenticated, audited to the overrides topic and read back from it.
// docs/signal-control.md describes the behaviour for operators.
package signalcontrol
