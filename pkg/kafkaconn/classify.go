package kafkaconn

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"github.com/segmentio/kafka-go"
)

// SecurityError is a failure that retrying cannot fix: the credentials, the certificates or the ACLs are wrong.
// Its message names the setting to fix; Unwrap gives kafka-go's error.
type SecurityError struct {
	// Hint says what to fix, naming the variable.
	Hint string
	Err  error
}

// Error implements error.
func (e *SecurityError) Error() string { return "kafka: " + e.Hint + ": " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *SecurityError) Unwrap() error { return e.Err }

// IsSecurity reports whether err is (or wraps) a SecurityError.
func IsSecurity(err error) bool {
	var se *SecurityError
	return errors.As(err, &se)
}

// Classify returns err as a *SecurityError naming the setting to fix when it is an authentication, certificate
// or authorization failure, and nil otherwise (a transient error worth retrying). Errors already classified are
// returned as they are.
func (c Conn) Classify(err error) error {
	if err == nil {
		return nil
	}
	if IsSecurity(err) {
		return err
	}
	var we kafka.WriteErrors
	if errors.As(err, &we) {
		for _, e := range we {
			if se := c.Classify(e); se != nil {
				return se
			}
		}
		return nil
	}
	hint := c.hint(err)
	if hint == "" {
		return nil
	}
	return &SecurityError{Hint: hint, Err: err}
}

func (c Conn) hint(err error) string {
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		header    tls.RecordHeaderError
		alert     tls.AlertError
	)
	switch {
	case errors.Is(err, kafka.SASLAuthenticationFailed):
		return fmt.Sprintf("SASL authentication failed for user %q (%s): check %s / %s", c.User, c.mechanism(), EnvSASLUsername, EnvSASLPasswordFile)
	case errors.Is(err, kafka.UnsupportedSASLMechanism):
		return fmt.Sprintf("the brokers do not enable SASL mechanism %s: check %s", c.mechanism(), EnvSASLMechanism)
	case errors.Is(err, kafka.IllegalSASLState):
		return fmt.Sprintf("the listener does not expect SASL: check %s and %s against the listener's security protocol", EnvSASLMechanism, EnvTLS)
	case errors.As(err, &unknownCA):
		return fmt.Sprintf("the brokers' TLS certificate is not signed by a trusted CA: check %s", EnvTLSCAFile)
	case errors.As(err, &hostname):
		return fmt.Sprintf("the brokers' TLS certificate is not valid for the name dialled: check %s / %s", EnvBrokers, EnvTLSServerName)
	case errors.As(err, &invalid):
		return fmt.Sprintf("the brokers' TLS certificate is invalid (expired or not for a server): check the brokers' certificate and %s", EnvTLSCAFile)
	case c.TLS == nil && strings.Contains(err.Error(), expectingTLS):
		return fmt.Sprintf("the brokers expect TLS: set %s=true (and %s)", EnvTLS, EnvTLSCAFile)
	case errors.As(err, &header):
		return fmt.Sprintf("the brokers did not answer the TLS handshake: check %s (is this a TLS listener?)", EnvTLS)
	case errors.As(err, &alert):
		return fmt.Sprintf("the brokers refused the TLS handshake (a client certificate required or refused?): check %s / %s", EnvTLSCertFile, EnvTLSKeyFile)
	case errors.Is(err, kafka.TopicAuthorizationFailed):
		return fmt.Sprintf("user %q is not authorized for a topic (TOPIC_AUTHORIZATION_FAILED): grant the ACLs docs/security-kafka.md lists for this service", c.User)
	case errors.Is(err, kafka.GroupAuthorizationFailed):
		return fmt.Sprintf("user %q is not authorized for its consumer group (GROUP_AUTHORIZATION_FAILED): grant the ACLs docs/security-kafka.md lists for this service", c.User)
	case errors.Is(err, kafka.ClusterAuthorizationFailed):
		return fmt.Sprintf("user %q is not authorized for this cluster operation (CLUSTER_AUTHORIZATION_FAILED): run it as the admin user", c.User)
	case errors.Is(err, kafka.TransactionalIDAuthorizationFailed):
		return fmt.Sprintf("user %q is not authorized for a transactional id (TRANSACTIONAL_ID_AUTHORIZATION_FAILED)", c.User)
	}
	return ""
}

// expectingTLS is how kafka-go words a plaintext request answered by a TLS listener (it has no error value).
const expectingTLS = "broker appears to be expecting TLS"

func (c Conn) mechanism() string {
	if c.SASL == nil {
		return "none"
	}
	return c.SASL.Name()
}
