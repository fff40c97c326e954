// Package clean is the cleaner's functional core: deduplication, plausibility checks, outlier filtering,
// event-time windows with a watermark, gap filling, the weather join and feature frames, per intersection.
//
// The package is pure and deterministic: no I/O, no logging, no clocks (processing time enters only through
// Intersection.CloseIdle's argument), no randomness, no map-order dependence. The service converts protobuf
// messages to Reading and Weather, calls Intersection.Add in partition order, and converts Result back.
//
// # Pipeline per reading (Intersection.Add)
//
//  1. Structure: the reading's intersection must be this one ("inconsistent"), its detector must be known here
//     ("unknown_detector"), the approach, if given, must be the detector's ("inconsistent"), the reading id or
//     detector id and the start must be set ("missing_field").
//  2. Physical bounds ("out_of_range"): start in 2000..2200, interval 1..3600 s and at most the window, count ≥ 0,
//     flow 0..3000 veh/h per lane the detector covers (lanes/detectors, at least 1), occupancy 0..1, speed
//     0..200 km/h, every number finite. Count and FlowVPH must agree within 1 % ("inconsistent"); when only one
//     is given (the other 0) the other is derived. A reading whose interval straddles a window boundary is
//     "inconsistent" (windows are aligned to the Unix epoch; configure the intersection's window to the data).
//  3. Deduplication: a reading's identity is its detector and interval start (the collector's reading id,
//     "<detector>@<start>", says the same). The same detector and start as a reading held back or buffered in
//     an open window, with identical values, is dropped silently (Result.Dropped); with different values it is
//     "duplicate_conflict". A reading that overlaps an accepted interval of the same detector is
//     "duplicate_conflict" too. No separate memory of ids is kept: the open windows are it.
//  4. Lateness: a reading whose window already ended at or before the watermark is "late" — also the resend of
//     a reading already applied, which is then in the window's frame: nothing is lost.
//  5. Clock jumps: a reading starting more than Config.ClockJumpTolerance (at least three windows) ahead of the
//     intersection's event time is held back (see "Clock jumps").
//  6. Capacity and the fundamental diagram: see Config.MaxCapacityMultiple, ImplausibleMinFlowVPH, JamOccupancy.
//  7. The reading is buffered in its open window; the watermark advances and closes windows.
//
// # Event time and clock jumps
//
// Each Intersection has its own event time: its progress is the highest accepted reading start (or the
// watermark plus the allowed lateness once CloseIdle or Flush moved it further), its watermark that minus
// Config.AllowedLateness. A window closes when its own intersection's watermark passes its end, so one gateway's
// clock can only make its own intersection's readings late. Within an intersection, a reading that starts more
// than the tolerance ahead of the progress is a clock-jump candidate: it is held back (at most max(8, 2 ×
// detectors) readings, part of the state). It is applied — with the other held readings near its time, in
// arrival order, exactly as if they had never been held — once the held readings at its time or later (down to
// the tolerance before it) come from a majority of the intersection's active detectors (those with an accepted
// reading within Config.MaxSilence of the progress; at least one) and from at least two interval starts: the
// sources came back after an outage, or their clock was corrected, and time goes on at the new clock. Otherwise
// it is rejected as "clock_jump" once the progress moved on by more than the tolerance since it was held, or
// when the held readings overflow (oldest first). Flush applies what a majority holds and rejects the rest. A detector coming back after an outage resumes at the current event
// time and is no candidate at all. The rule is a function of the input order only, so replays and live runs
// agree.
//
// Checks that depend on a detector's sequence (stuck detector, Hampel outlier filter) run when the window
// closes, over the window's readings in event-time order, so that any arrival order within the allowed
// lateness gives the same result. Their rejections ("stuck_detector") are therefore reported in the Result of
// the call that closed the window, not of the call that added the reading. Both look at flow, speed and
// occupancy separately: a reading is stuck when any of them repeats the same non-zero value Config.StuckRun
// times, and flagged (once) when any of them is an outlier. The outlier filter compares residuals from the
// detector's own hour-of-week profile of the quantity once the profile covers them (Config.HampelSeasonal),
// the raw recent values before.
//
// # Windows and aggregation
//
// Windows are tumbling, topology.Intersection.Window() seconds long and aligned to the Unix epoch. Readings
// shorter than the window are aggregated per detector: flow = Σcount·3600 / covered seconds (a rate over the
// part of the window the detector reported); the uncovered share counts as imputed. Approach flow is the sum
// over its detectors. Occupancy is time-weighted over every reading with occupancy; speed is count-weighted over
// every reading with speed and a non-zero count (absent when no vehicle was counted), or, when no counted reading
// has a speed, time-weighted over the non-zero speeds of readings without counts. Occupancy and speed are never
// imputed. Readings longer than the window are rejected: configure the window to the data step.
//
// # Partial readings (speed- or occupancy-only sensors)
//
// A reading needs at least one of count, occupancy and speed (Reading.NoCount marks one without a count). Flow is
// aggregated over the readings with counts only, and the flow rules (bounds, count/flow agreement, over-capacity,
// stuck count, flow outliers) skip readings without one; the speed and occupancy rules apply to what is present,
// and the fundamental-diagram checks only where their quantities are: occupancy with speed, or all three. A
// detector with readings but no counts in a window has its flow filled like a detector without readings, but is
// not missing. An approach with no known flow that measured a speed or an occupancy is no gap: its vector has
// Observed.NoFlow, feature gap = 1 with flow_ratio 0 (the gap feature is flow_ratio's presence indicator), its
// speed and occupancy features set, and no lag history entry, so later flow lags are absent rather than zero.
//
// # Gap filling (per detector, when it has no reading in a window)
//
// A detector missing for at most InterpolateMaxGap (counting windows since its last observed window) carries
// its last observed flow forward: true linear interpolation needs the next value, which is not known when the
// watermark closes the window, and waiting for it would break "emit once when the watermark passes". Missing for
// at most ProfileFillMaxGap: its hour-of-week profile value (exponentially updated from fully observed windows,
// local time). Otherwise, if another detector of the approach has a value, the missing one gets their mean
// (lane-share fill). Otherwise the approach vector is a gap (Vector.Gap, flow features 0 with gap = 1).
//
// # State, restarts and memory
//
// Intersection.State is everything that changes (see StateFormat): a restored Intersection fed the
// remaining readings gives frames, rejections and drops identical (reflect.DeepEqual, bit-exact floats) to an
// uninterrupted run. Memory is bounded: open windows span at most AllowedLateness plus one window behind the
// highest event time (they are the dedup memory too); at most max(8, 2 × detectors) held-back readings; per
// detector and quantity (flow, speed, occupancy) a Hampel history of HampelWindow values and 168 hour-of-week
// profile buckets in float32 (the speed and occupancy ones only once the detector reported them), plus the
// gap-filling flow profile; per approach a 7-day ring of flow ratios in 1/10000 steps (2 bytes a window); the
// input positions of the windows emitted since the last checkpoint. The encoding is deflate-compressed
// protobuf: an eight-approach intersection with one-minute detectors stays under 36 KB (TestStateSize).
//
// # Weather join
//
// A window [start, end) joins its intersection's station's latest observation stamped strictly before end and
// no more than WeatherMaxAge before it (end − observed_at ≤ WeatherMaxAge); otherwise WeatherContext.Missing.
// The window is half-open for weather as for readings: an observation made during the window, or the latest one
// before it, describes it; one stamped exactly at end belongs to the next window, like a reading starting there.
// For hourly data with the weather in the same rows (Metro I-94) the window of hour h joins hour h's own row.
//
// The rule is what makes the join independent of arrival order. A window closes only when a reading starting at
// or after its end is applied (the watermark is a reading start minus a non-negative lateness), or at Flush and
// CloseIdle; every observation it may join is stamped strictly before that reading. So when the observations
// are delivered in event-time order with the readings — greenwave eval sorts its input by event time, gateways
// and greenwave replay publish in event-time order and the cleaner waits for its weather follower to read what
// was published before the closing reading — the frame is the same whichever way ties at the window end fall:
// an observation and the reading that closes the window, both stamped at its end. With "at or before end",
// the tie decided the frame when CLEANER_ALLOWED_LATENESS is 0 (the closing reading starts at the end itself).
// Both the cleaner service and pkg/evaluate call the same WeatherTable.Lookup through Intersection, so the rule
// has one implementation. Observations published after their window closed (a station that reports late) are
// not in that frame; see docs/cleaner.md, "Weather determinism".
//
// # Upstream features
//
// An approach whose topology names upstream approaches ("intersection/approach", parsed once by
// NewIntersection; duplicates count once) gets, when its window t closes, the mean flow_ratio of those upstream
// approaches in window t-1 (the window ending where t starts), over the ones whose window t-1 is known: emitted
// and not a gap. The values come from an UpstreamLookup attached with Intersection.SetUpstream; the owner holds
// every intersection of the partition in a States, which reads each member's lag history (Intersection.FlowRatio),
// and attaches it to every member. Without a lookup, or when none is known, the features are absent. An approach
// may name its own intersection's approaches, itself included: the lookup then reads this history at t-1, which
// the close of window t does not change. The upstream occupancy and speed features are the same means of the
// upstream approaches' occupancy and speed ratios at t-1 (Intersection.Recent), each over the approaches that
// measured it. They come from a shorter history, RecentHistory (6 h) of each approach's windows, since only t-1
// is ever read.
//
// Determinism: intersections linked by upstream references are keyed to one partition and fed in its order. An
// upstream intersection's state at a given input offset is a function of its own readings up to that offset
// (its frames are, and so is its lag history), so the value read when this window closes, and with it the frame,
// is a deterministic function of the partition's input sequence. A restore may bring the members back from
// different checkpoints (each member's state is its own changelog record, and a crash can land some of them and
// not others), so an upstream member can return knowing windows that, at the offsets being replayed, it had not
// emitted yet. Every emitted window is therefore stamped with the input position that emitted it
// (Intersection.SetPosition, the Kafka offset in the cleaner), and a lookup sees only windows stamped at or
// before the reader's position: the replay reads exactly what the uninterrupted run read. Restart equivalence
// holds as long as the owner restores every member before feeding readings (a member absent from States and a
// member without state both answer "unknown"), sets each reading's position, and calls Flush and CloseIdle on
// the members in a fixed order (States.IDs gives one), and as long as no member comes back further ahead of a
// reader than the history the reader's lookups need: 7 days for flow, RecentHistory for occupancy and speed
// (a window that has left the ring is unknown, though the uninterrupted run knew it). Upstream window t, not
// t-1, would usually still be open when window t closes here, so only lag 1 is used.
package clean
