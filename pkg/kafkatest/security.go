package kafkatest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/greenwave-city/greenwave/pkg/config"
	"github.com/greenwave-city/greenwave/pkg/kafkaconn"
)

// Environment of the secure real broker (deploy/kafka/kafka.sh exports them with KAFKA_SECURITY=sasl_ssl).
const (
	// EnvSecretsDir is the directory holding USER.password for every SCRAM user of the broker.
	EnvSecretsDir = "KAFKA_SECRETS_DIR"
	// EnvUntrustedCA is a CA file that signed nothing the broker shows.
	EnvUntrustedCA = "KAFKA_UNTRUSTED_CA_FILE"
	// EnvRequireSecurity set to 1 makes the security tests fail, rather than skip, on a real broker that is not
	// kafka.sh's SASL_SSL one.
	EnvRequireSecurity = "GREENWAVE_REQUIRE_KAFKA_SECURITY"
)

// SecretsDir returns the secure broker's password directory, skipping the test when the tests do not run on
// kafka.sh's SASL_SSL broker: on the embedded kfake broker always, on another real broker unless
// GREENWAVE_REQUIRE_KAFKA_SECURITY=1 makes that a failure (CI: `make test-kafka` must run them).
func SecretsDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv(EnvSecretsDir)
	if Real() && dir != "" {
		return dir
	}
	msg := "needs the SASL_SSL broker of `make test-kafka` (KAFKA_BROKERS and " + EnvSecretsDir + " set by deploy/kafka/kafka.sh)"
	if Real() && os.Getenv(EnvRequireSecurity) == "1" {
		t.Fatalf("%s=1 but the test %s", EnvRequireSecurity, msg)
	}
	t.Skip("the test " + msg)
	return ""
}

// SettingsAs returns the real broker's settings (from the environment) with the SASL user and password file
// replaced by those of user from the secrets directory.
func SettingsAs(t testing.TB, user string) kafkaconn.Settings {
	t.Helper()
	dir := SecretsDir(t)
	var s kafkaconn.Settings
	if err := config.Load(&s, nil); err != nil {
		t.Fatal(err)
	}
	s.SASLUsername, s.SASLPasswordFile, s.SASLPassword = user, filepath.Join(dir, user+".password"), ""
	return s
}

// ConnAs returns a connection to the real broker as user, closing its idle connections when the test ends.
func ConnAs(t testing.TB, user string) kafkaconn.Conn {
	t.Helper()
	s := SettingsAs(t, user)
	c, err := s.Conn()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// GrantACLs creates acls through admin (a super user), failing the test on any refusal.
func GrantACLs(t testing.TB, admin kafkaconn.Conn, acls []kafka.ACLEntry) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := admin.Client(30*time.Second).CreateACLs(ctx, &kafka.CreateACLsRequest{ACLs: acls})
	if err != nil {
		t.Fatalf("create ACLs: %v", err)
	}
	if err := errors.Join(resp.Errors...); err != nil {
		t.Fatalf("create ACLs: %v", err)
	}
}
