// Package clip shortens client-supplied text before it is echoed: an id in an error message, an ack or a log
// line is cut to MaxID bytes, so a client sending megabyte ids cannot make the services repeat them whole.
package clip

import "unicode/utf8"

// MaxID is how many bytes of a client-supplied id the services repeat; it equals the longest id the collector
// accepts, so only ids that are refused anyway are ever cut.
const MaxID = 128

// ID cuts id to MaxID bytes, on a UTF-8 boundary, and marks the cut with an ellipsis; shorter ids are returned
// unchanged.
func ID(id string) string {
	if len(id) <= MaxID {
		return id
	}
	cut := MaxID
	for cut > 0 && !utf8.RuneStart(id[cut]) {
		cut--
	}
	return id[:cut] + "…"
}
