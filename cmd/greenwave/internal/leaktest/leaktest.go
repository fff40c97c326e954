// Package leaktest is the TestMain of the CLI's packages that start goroutines (readers, streams, child
// processes' pipes): a test run that leaves one behind fails.
package leaktest

import (
	"fmt"
	"os"
	"testing"

	"github.com/segmentio/kafka-go"
	"go.uber.org/goleak"
)

// Main runs the tests and returns the exit code for os.Exit: 1 when a goroutine is left behind. kafka-go's
// process-wide default transport (pkg/topics and pkg/kafkatest use it) keeps its connections until told
// otherwise; Main closes them first, so only the code's own clients have to close theirs.
func Main(m *testing.M) int {
	code := m.Run()
	if t, ok := kafka.DefaultTransport.(*kafka.Transport); ok {
		t.CloseIdleConnections()
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutine leak:", err)
			code = 1
		}
	}
	return code
}
