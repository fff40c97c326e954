package signalcontrol

import "github.com/greenwave-city/greenwave/pkg/wire"

// intersectionState is what signal-control remembers per intersection, snapshotted to the compacted
// greenwave.signal-control.state changelog (keyed by intersection, encoded by wire.EncodeSignalState) at the
// event-time checkpoint cadence (SIGNAL_CHECKPOINT_INTERVAL); the plans topic holds what was issued since (see
// partition and restorePartition).
type intersectionState = wire.SignalState
