package replay

import (
	"os"
	"testing"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/devstate"
	"github.com/greenwave-city/greenwave/pkg/kafkatest"
)

// TestMain fails the package when a replay leaves a goroutine behind (an ack reader, a gRPC stream, a Kafka
// connection), and keeps the tests away from the addresses of a `greenwave dev` running on this machine.
func TestMain(m *testing.M) {
	os.Setenv(devstate.EnvFile, "off")
	os.Exit(kafkatest.Main(m))
}
