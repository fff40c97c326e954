package signal

import (
	"fmt"
	"math"
)

// coordinationToleranceS is how close a plan's cycle and offset must be to the corridor's to count as running
// them: far below a displayable step, far above rounding in the offset arithmetic.
const coordinationToleranceS = 1e-6

// Coordinated reports whether plan p runs its corridor's common cycle cycleS at the green-wave offset offsetS
// (reduced into [0, cycleS) as Webster does).
func Coordinated(p Plan, cycleS, offsetS float64) bool {
	if !(cycleS > 0) {
		return false
	}
	want := wrapOffset(offsetS, cycleS)
	d := math.Abs(p.OffsetS - want)
	d = math.Min(d, math.Abs(cycleS-d)) // offsets are circular: 0 and a hair below the cycle are neighbours
	return math.Abs(p.CycleS-cycleS) <= coordinationToleranceS && d <= coordinationToleranceS
}

// CoordinationNote describes, for a plan's Detail, how plan p relates to the coordination of its corridor
// (named corridor, common cycle cycleS, green-wave offset offsetS). It states the common cycle and offset only
// when p applies them; otherwise it says the plan is not coordinated and what it runs instead — a fixed-time or
// minimum plan runs its own cycle at offset 0, the rate limit or the cycle bounds can hold a Webster plan away
// from the common cycle, a pinned plan has the operator's timing — so an operator reading the text never sees a
// cycle or offset the controller was not given.
func CoordinationNote(p Plan, corridor string, cycleS, offsetS float64) string {
	if Coordinated(p, cycleS, offsetS) {
		return fmt.Sprintf("corridor %s: common cycle %gs, offset %.4gs", corridor, cycleS, wrapOffset(offsetS, cycleS))
	}
	return fmt.Sprintf("corridor %s: not coordinated, this plan runs cycle %.4gs at offset %.4gs (the corridor's common cycle is %gs, this intersection's offset %.4gs)",
		corridor, p.CycleS, p.OffsetS, cycleS, wrapOffset(offsetS, cycleS))
}
