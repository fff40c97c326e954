package ops

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// TestKafkaSecuritySettings: the Kafka commands read the services' KAFKA_TLS*/KAFKA_SASL_* variables, and a
// bad combination is a usage error naming the variable, before anything is dialled.
func TestKafkaSecuritySettings(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "nope")
	for _, tc := range []struct {
		name   string
		env    env
		status int
		want   string
	}{
		{"plain without tls", env{"KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_SASL_USERNAME": "ops", "KAFKA_SASL_PASSWORD": "x"}, 2,
			"KAFKA_SASL_MECHANISM=PLAIN sends the password in clear and is refused without TLS: set KAFKA_TLS=true"},
		{"unknown mechanism", env{"KAFKA_SASL_MECHANISM": "GSSAPI"}, 2, `KAFKA_SASL_MECHANISM="GSSAPI"`},
		{"bad bool", env{"KAFKA_TLS": "maybe"}, 2, `KAFKA_TLS="maybe"`},
		{"missing password file", env{"KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "KAFKA_SASL_USERNAME": "ops", "KAFKA_SASL_PASSWORD_FILE": missing}, 1,
			"KAFKA_SASL_PASSWORD_FILE: open " + missing},
		{"missing ca", env{"KAFKA_TLS": "true", "KAFKA_TLS_CA_FILE": missing}, 1, "KAFKA_TLS_CA_FILE: open " + missing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			err := topicsCmd(t.Context(), []string{"describe", "--brokers", "127.0.0.1:1"}, &stdout, &stderr, tc.env.lookup)
			if err == nil || exitStatus(err) != tc.status || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("topics describe: %v (status %d), want status %d and %q", err, exitStatus(err), tc.status, tc.want)
			}
		})
	}
}
