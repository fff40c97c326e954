package kafkaconn

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"
)

// TestValidateNamesTheVariable: every bad combination is refused with the variable to fix, PLAIN without TLS
// included.
func TestValidateNamesTheVariable(t *testing.T) {
	t.Parallel()
	ok := Settings{Brokers: []string{"k:9093"}, TLS: true, SASLMechanism: ScramSHA512, SASLUsername: "u", SASLPasswordFile: "/p"}
	for _, tc := range []struct {
		name string
		edit func(*Settings)
		want string // "" = valid
	}{
		{"valid", func(*Settings) {}, ""},
		{"plaintext", func(s *Settings) { *s = Settings{Brokers: []string{"k:9092"}} }, ""},
		{"no brokers", func(s *Settings) { s.Brokers = nil }, "KAFKA_BROKERS is empty"},
		{"broker without port", func(s *Settings) { s.Brokers = []string{"k"} }, `KAFKA_BROKERS: "k" is not host:port`},
		{"plain without tls", func(s *Settings) { s.SASLMechanism, s.TLS = Plain, false }, "KAFKA_SASL_MECHANISM=PLAIN sends the password in clear and is refused without TLS: set KAFKA_TLS=true"},
		{"plain with tls", func(s *Settings) { s.SASLMechanism = Plain }, ""},
		{"scram without tls", func(s *Settings) { s.TLS = false }, ""},
		{"unknown mechanism", func(s *Settings) { s.SASLMechanism = "GSSAPI" }, `KAFKA_SASL_MECHANISM="GSSAPI": want SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN`},
		{"no user", func(s *Settings) { s.SASLUsername = "" }, "KAFKA_SASL_USERNAME is empty"},
		{"no password", func(s *Settings) { s.SASLPasswordFile = "" }, "neither KAFKA_SASL_PASSWORD_FILE nor KAFKA_SASL_PASSWORD"},
		{"two passwords", func(s *Settings) { s.SASLPassword = "x" }, "both KAFKA_SASL_PASSWORD_FILE and KAFKA_SASL_PASSWORD"},
		{"credentials without mechanism", func(s *Settings) { s.SASLMechanism = "" }, "KAFKA_SASL_MECHANISM is empty"},
		{"ca without tls", func(s *Settings) { s.TLS, s.TLSCAFile = false, "/ca" }, "KAFKA_TLS_CA_FILE is set but KAFKA_TLS is false"},
		{"cert without key", func(s *Settings) { s.TLSCertFile = "/c" }, "KAFKA_TLS_CERT_FILE and KAFKA_TLS_KEY_FILE go together"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := ok
			tc.edit(&s)
			got := strings.Join(s.Validate(), "; ")
			if tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
				t.Fatalf("Validate() = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestConnReadsTheFiles: the password comes from its file without its newline and never shows in the
// description; a missing file names its variable.
func TestConnReadsTheFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("s3cret-value\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := Settings{Brokers: []string{"k:9093"}, SASLMechanism: ScramSHA256, SASLUsername: "cleaner", SASLPasswordFile: pw}
	c, err := s.Conn()
	if err != nil {
		t.Fatal(err)
	}
	if c.SASL == nil || c.SASL.Name() != ScramSHA256 || c.TLS != nil || c.Protocol() != "SASL_PLAINTEXT" {
		t.Fatalf("conn %v: want SCRAM-SHA-256 without TLS", c)
	}
	if d := fmt.Sprint(c); strings.Contains(d, "s3cret") || !strings.Contains(d, "cleaner") {
		t.Fatalf("description %q: want the user, never the password", d)
	}
	if c.Transport() != c.Transport() {
		t.Fatal("a secure Conn must share one transport")
	}
	for _, tc := range []struct {
		name string
		s    Settings
		want string
	}{
		{"missing password file", Settings{Brokers: []string{"k:1"}, SASLMechanism: ScramSHA512, SASLUsername: "u", SASLPasswordFile: filepath.Join(dir, "nope")}, "KAFKA_SASL_PASSWORD_FILE"},
		{"missing ca", Settings{Brokers: []string{"k:1"}, TLS: true, TLSCAFile: filepath.Join(dir, "nope")}, "KAFKA_TLS_CA_FILE"},
		{"ca not pem", Settings{Brokers: []string{"k:1"}, TLS: true, TLSCAFile: pw}, "KAFKA_TLS_CA_FILE: no PEM certificate"},
		{"invalid", Settings{Brokers: []string{"k:1"}, SASLMechanism: Plain, SASLUsername: "u", SASLPassword: "p"}, "refused without TLS"},
	} {
		if _, err := tc.s.Conn(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Conn() error %v, want %q", tc.name, err, tc.want)
		}
	}
	plain, err := (&Settings{Brokers: []string{"k:9092"}}).Conn()
	if err != nil || plain.Secure() || plain.Transport() != kafka.DefaultTransport {
		t.Fatalf("plaintext conn %v (%v): want kafka-go's default transport", plain, err)
	}
}

// TestClassify: authentication, certificate and authorization failures become security errors naming the
// setting; anything else is left for the caller to retry.
func TestClassify(t *testing.T) {
	t.Parallel()
	c := Conn{User: "predictor"}
	for _, tc := range []struct {
		name string
		err  error
		want string // "" = not a security error
	}{
		{"sasl", fmt.Errorf("dial: %w", kafka.SASLAuthenticationFailed), `SASL authentication failed for user "predictor"`},
		{"unknown ca", &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, "KAFKA_TLS_CA_FILE"},
		{"hostname", x509.HostnameError{Certificate: &x509.Certificate{}, Host: "kafka"}, "KAFKA_TLS_SERVER_NAME"},
		{"expects tls", fmt.Errorf("%w: broker appears to be expecting TLS", io.ErrUnexpectedEOF), "set KAFKA_TLS=true"},
		{"not tls", tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, "KAFKA_TLS"},
		{"topic acl", kafka.WriteErrors{nil, kafka.TopicAuthorizationFailed}, "TOPIC_AUTHORIZATION_FAILED"},
		{"group acl", kafka.GroupAuthorizationFailed, "GROUP_AUTHORIZATION_FAILED"},
		{"transient", kafka.LeaderNotAvailable, ""},
		{"io", errors.New("connection refused"), ""},
		{"nil", nil, ""},
	} {
		got := c.Classify(tc.err)
		switch {
		case tc.want == "" && got != nil:
			t.Errorf("%s: Classify = %v, want nil", tc.name, got)
		case tc.want != "" && (got == nil || !strings.Contains(got.Error(), tc.want) || !IsSecurity(got)):
			t.Errorf("%s: Classify = %v, want a security error with %q", tc.name, got, tc.want)
		}
	}
}
