package ntcip

import (
	"testing"

	"github.com/greenwave-city/greenwave/pkg/kafkatest"
)

// TestMain fails the package's tests when any goroutine (a controller loop, the watch, dev's stack) outlives them.
func TestMain(m *testing.M) {
	kafkatest.VerifyTestMain(m)
}
