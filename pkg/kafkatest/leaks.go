package kafkatest

import (
	"fmt"
	"os"
	"testing"

	"github.com/segmentio/kafka-go"
	"go.uber.org/goleak"
)

// VerifyTestMain runs a package's tests and exits, failing them if any goroutine outlives them: see [Main].
func VerifyTestMain(m *testing.M, opts ...goleak.Option) {
	os.Exit(Main(m, opts...))
}

// Main runs a package's tests and returns the exit code for os.Exit: 1 when a goroutine outlived them. Call it
// (or [VerifyTestMain]) from TestMain in every package whose code starts goroutines.
//
// kafka-go's shared DefaultTransport (used by every kafka.Client and Writer without a Transport of their own)
// keeps its idle broker connections, each with a goroutine, for reuse; they belong to the process, not to the
// test that dialled them, so they are closed before the check rather than ignored by name. A dial the transport
// started for a caller that has since given up still completes and then goes idle, so the check closes idle
// connections and looks again a few times (goleak itself waits between its looks) before it reports a leak.
func Main(m *testing.M, opts ...goleak.Option) int {
	code := m.Run()
	if code != 0 {
		return code
	}
	opts = append(opts, goleak.IgnoreAnyFunction(transportDial))
	var err error
	for range idleRounds {
		CloseIdleConnections()
		if err = goleak.Find(opts...); err == nil {
			return 0
		}
	}
	fmt.Fprintf(os.Stderr, "goleak: goroutines outlived the tests: %v\n", err)
	return 1
}

// transportDial is the shared transport's dial, which outlives a caller that gave up on it. Seen in the trainer's
// tests: after a test's kfake cluster closed, a dial was still decoding a torn metadata response (an array length
// of 57 million read from garbage) when the check ran. It ends with an error by itself and belongs to the process.
const transportDial = "github.com/segmentio/kafka-go.(*connGroup).connect"

// idleRounds is how many times Main closes the transport's idle connections and looks for leaked goroutines.
const idleRounds = 5

// CloseIdleConnections closes the idle connections of kafka-go's DefaultTransport and of the real broker's
// secure transport.
func CloseIdleConnections() {
	if t, ok := kafka.DefaultTransport.(*kafka.Transport); ok {
		t.CloseIdleConnections()
	}
	if Real() {
		if c, err := realConn(); err == nil {
			c.CloseIdleConnections()
		}
	}
}
