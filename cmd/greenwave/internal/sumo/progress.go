package sumo

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progressBar draws one line on a terminal, redrawn in place: how far the run is (the share of the scenario's
// vehicles that have arrived, or of the simulated time to --end) and the simulated time. It draws nothing unless
// w is a terminal, so logs, pipes and --json output get the periodic progress lines only.
type progressBar struct {
	w     io.Writer
	on    bool
	drawn bool
	label string
	// total is the scenario's vehicles (0: unknown); end the run's --end (0: none). Without either the line
	// shows the counts and no bar.
	total int
	end   time.Duration
}

// newProgressBar returns a bar for w, on only when w is a terminal and the result is not JSON.
func newProgressBar(w io.Writer, label string, json bool, total int, end time.Duration) *progressBar {
	f, ok := w.(*os.File)
	on := false
	if ok && !json {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			on = true
		}
	}
	return &progressBar{w: w, on: on, label: label, total: total, end: end}
}

// routeVehicles counts the vehicles of a SUMO route file: its <vehicle> and <trip> elements. A file with flows
// (<flow>, whose count depends on their attributes) gives 0, unknown.
func routeVehicles(path string) int {
	b, err := os.ReadFile(path)
	if err != nil || bytes.Contains(b, []byte("<flow ")) {
		return 0
	}
	return bytes.Count(b, []byte("<vehicle ")) + bytes.Count(b, []byte("<trip "))
}

// barWidth is the bar's width in characters.
const barWidth = 30

// draw redraws the bar.
func (b *progressBar) draw(now time.Duration, arrived, expected int) {
	if !b.on {
		return
	}
	share := -1.0
	switch {
	case b.end > 0:
		share = min(1, now.Seconds()/b.end.Seconds())
	case b.total > 0:
		share = min(1, float64(arrived)/float64(b.total))
	}
	bar := ""
	if share >= 0 {
		full := int(share * barWidth)
		bar = fmt.Sprintf(" [%s%s] %3.0f%%", strings.Repeat("#", full), strings.Repeat(".", barWidth-full), 100*share)
	}
	fmt.Fprintf(b.w, "\r%s%s  %s simulated, %d vehicles arrived, %d expected ", b.label, bar, fmtSim(now), arrived, expected)
	b.drawn = true
}

// done ends the bar's line, so that what follows starts on a line of its own.
func (b *progressBar) done() {
	if b.drawn {
		fmt.Fprintln(b.w)
		b.drawn = false
	}
}
