package replay

import (
	"fmt"
	"os"
	"testing"

	"github.com/segmentio/kafka-go"
	"go.uber.org/goleak"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/devstate"
)

// TestMain fails the package when a replay leaves a goroutine behind (an ack reader, a gRPC stream, a Kafka
// connection), and keeps the tests away from the addresses of a `greenwave dev` running on this machine.
func TestMain(m *testing.M) {
	os.Setenv(devstate.EnvFile, "off")
	code := m.Run()
	// pkg/kafkatest uses kafka-go's process-wide default transport, which keeps its connections until told
	// otherwise.
	if t, ok := kafka.DefaultTransport.(*kafka.Transport); ok {
		t.CloseIdleConnections()
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutine leak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
