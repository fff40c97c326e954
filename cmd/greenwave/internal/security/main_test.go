package security

import (
	"testing"

	"github.com/greenwave-city/greenwave/pkg/kafkatest"
)

// TestMain fails the package's tests when any goroutine outlives them.
func TestMain(m *testing.M) {
	kafkatest.VerifyTestMain(m)
}
