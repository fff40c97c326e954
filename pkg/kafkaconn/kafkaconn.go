// Package kafkaconn is how every Greenwave process connects to Kafka: the bootstrap brokers plus, when the
// cluster asks for them, TLS (with an optional client certificate) and SASL (SCRAM-SHA-512, SCRAM-SHA-256, or
// PLAIN over TLS only). Settings is read from the KAFKA_* environment variables (by the services through
// app.Common, by the CLI directly); Settings.Conn turns it into a Conn whose Dialer, Transport, Client and
// ReaderConfig carry the security to every kafka-go reader, writer and client.
//
// Decisions: passwords come preferably from a file (KAFKA_SASL_PASSWORD_FILE, a mounted secret) and are never
// logged or put in an error; PLAIN without TLS is refused as a configuration error, because it sends the password
// in clear; authentication, certificate and authorization failures are classified by Conn.Classify into errors
// that name the variable to fix, so a process stops at start instead of retrying what cannot succeed.
package kafkaconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// The environment variables Settings reads, named in configuration errors.
const (
	EnvBrokers          = "KAFKA_BROKERS"
	EnvTLS              = "KAFKA_TLS"
	EnvTLSCAFile        = "KAFKA_TLS_CA_FILE"
	EnvTLSCertFile      = "KAFKA_TLS_CERT_FILE"
	EnvTLSKeyFile       = "KAFKA_TLS_KEY_FILE"
	EnvTLSServerName    = "KAFKA_TLS_SERVER_NAME"
	EnvSASLMechanism    = "KAFKA_SASL_MECHANISM"
	EnvSASLUsername     = "KAFKA_SASL_USERNAME"
	EnvSASLPasswordFile = "KAFKA_SASL_PASSWORD_FILE"
	EnvSASLPassword     = "KAFKA_SASL_PASSWORD"
)

// The SASL mechanisms KAFKA_SASL_MECHANISM accepts.
const (
	ScramSHA512 = "SCRAM-SHA-512"
	ScramSHA256 = "SCRAM-SHA-256"
	Plain       = "PLAIN"
)

// Settings is the Kafka connection configuration as read from the environment (pkg/config tags).
type Settings struct {
	Brokers          []string `env:"KAFKA_BROKERS" default:"127.0.0.1:9092" help:"Kafka bootstrap brokers, comma-separated"`
	TLS              bool     `env:"KAFKA_TLS" default:"false" help:"connect to Kafka over TLS (a SSL or SASL_SSL listener)"`
	TLSCAFile        string   `env:"KAFKA_TLS_CA_FILE" default:"" help:"PEM file of the CA(s) that sign the brokers' certificates; empty: the system roots"`
	TLSCertFile      string   `env:"KAFKA_TLS_CERT_FILE" default:"" help:"PEM client certificate for mutual TLS (with KAFKA_TLS_KEY_FILE); empty: none"`
	TLSKeyFile       string   `env:"KAFKA_TLS_KEY_FILE" default:"" help:"PEM private key of KAFKA_TLS_CERT_FILE"`
	TLSServerName    string   `env:"KAFKA_TLS_SERVER_NAME" default:"" help:"name the brokers' certificates must carry; empty: the host of each broker address"`
	SASLMechanism    string   `env:"KAFKA_SASL_MECHANISM" default:"" help:"SASL mechanism: SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN (PLAIN only with KAFKA_TLS=true); empty: no SASL"`
	SASLUsername     string   `env:"KAFKA_SASL_USERNAME" default:"" help:"SASL user name"`
	SASLPasswordFile string   `env:"KAFKA_SASL_PASSWORD_FILE" default:"" help:"file holding the SASL password (trailing newline ignored); preferred over KAFKA_SASL_PASSWORD"`
	SASLPassword     string   `env:"KAFKA_SASL_PASSWORD" default:"" help:"SASL password itself (visible in the process environment: prefer KAFKA_SASL_PASSWORD_FILE)"`
}

// Validate returns every problem with the settings, each naming the variable to fix. It reads no file.
func (s *Settings) Validate() []string {
	var p []string
	if len(s.Brokers) == 0 {
		p = append(p, EnvBrokers+" is empty")
	}
	for _, b := range s.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			p = append(p, fmt.Sprintf("%s: %q is not host:port", EnvBrokers, b))
		}
	}
	if !s.TLS {
		for _, v := range []struct{ name, value string }{
			{EnvTLSCAFile, s.TLSCAFile}, {EnvTLSCertFile, s.TLSCertFile}, {EnvTLSKeyFile, s.TLSKeyFile}, {EnvTLSServerName, s.TLSServerName},
		} {
			if v.value != "" {
				p = append(p, fmt.Sprintf("%s is set but %s is false: set %s=true or unset %s", v.name, EnvTLS, EnvTLS, v.name))
			}
		}
	}
	if (s.TLSCertFile == "") != (s.TLSKeyFile == "") {
		p = append(p, fmt.Sprintf("%s and %s go together: set both or neither", EnvTLSCertFile, EnvTLSKeyFile))
	}
	switch s.SASLMechanism {
	case "":
		if s.SASLUsername != "" || s.SASLPasswordFile != "" || s.SASLPassword != "" {
			p = append(p, fmt.Sprintf("SASL credentials are set but %s is empty: set it to %s, %s or %s", EnvSASLMechanism, ScramSHA512, ScramSHA256, Plain))
		}
		return p
	case ScramSHA512, ScramSHA256:
	case Plain:
		if !s.TLS {
			p = append(p, fmt.Sprintf("%s=%s sends the password in clear and is refused without TLS: set %s=true (or use %s)", EnvSASLMechanism, Plain, EnvTLS, ScramSHA512))
		}
	default:
		p = append(p, fmt.Sprintf("%s=%q: want %s, %s or %s", EnvSASLMechanism, s.SASLMechanism, ScramSHA512, ScramSHA256, Plain))
	}
	if s.SASLUsername == "" {
		p = append(p, fmt.Sprintf("%s is set but %s is empty", EnvSASLMechanism, EnvSASLUsername))
	}
	switch {
	case s.SASLPasswordFile == "" && s.SASLPassword == "":
		p = append(p, fmt.Sprintf("%s is set but neither %s nor %s is", EnvSASLMechanism, EnvSASLPasswordFile, EnvSASLPassword))
	case s.SASLPasswordFile != "" && s.SASLPassword != "":
		p = append(p, fmt.Sprintf("both %s and %s are set: keep one (preferably the file)", EnvSASLPasswordFile, EnvSASLPassword))
	}
	return p
}

// Conn validates the settings, reads the CA, certificate and password files, and returns the Conn. Errors name
// the variable to fix and never carry the password.
func (s *Settings) Conn() (Conn, error) {
	if p := s.Validate(); len(p) > 0 {
		return Conn{}, fmt.Errorf("kafka settings: %s", strings.Join(p, "; "))
	}
	c := Conn{Brokers: append([]string(nil), s.Brokers...)}
	if s.TLS {
		cfg, err := s.tlsConfig()
		if err != nil {
			return Conn{}, err
		}
		c.TLS = cfg
	}
	if s.SASLMechanism != "" {
		password := s.SASLPassword
		if s.SASLPasswordFile != "" {
			b, err := os.ReadFile(s.SASLPasswordFile)
			if err != nil {
				return Conn{}, fmt.Errorf("kafka settings: %s: %w", EnvSASLPasswordFile, err)
			}
			password = strings.TrimRight(string(b), "\r\n")
			if password == "" {
				return Conn{}, fmt.Errorf("kafka settings: %s: %s is empty", EnvSASLPasswordFile, s.SASLPasswordFile)
			}
		}
		mech, err := Mechanism(s.SASLMechanism, s.SASLUsername, password)
		if err != nil {
			return Conn{}, err
		}
		c.SASL, c.User = mech, s.SASLUsername
	}
	return New(c.Brokers, c.TLS, c.SASL, c.User), nil
}

func (s *Settings) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: s.TLSServerName}
	if s.TLSCAFile != "" {
		pem, err := os.ReadFile(s.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("kafka settings: %s: %w", EnvTLSCAFile, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka settings: %s: no PEM certificate in %s", EnvTLSCAFile, s.TLSCAFile)
		}
		cfg.RootCAs = pool
	}
	if s.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(s.TLSCertFile, s.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("kafka settings: %s / %s: %w", EnvTLSCertFile, EnvTLSKeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// Mechanism returns the kafka-go SASL mechanism named as KAFKA_SASL_MECHANISM names it.
func Mechanism(name, username, password string) (sasl.Mechanism, error) {
	switch name {
	case ScramSHA512, ScramSHA256:
		algo := scram.SHA512
		if name == ScramSHA256 {
			algo = scram.SHA256
		}
		m, err := scram.Mechanism(algo, username, password)
		if err != nil {
			return nil, fmt.Errorf("kafka settings: %s / %s: %w", EnvSASLUsername, EnvSASLPasswordFile, err)
		}
		return m, nil
	case Plain:
		return plain.Mechanism{Username: username, Password: password}, nil
	default:
		return nil, fmt.Errorf("kafka settings: %s=%q: want %s, %s or %s", EnvSASLMechanism, name, ScramSHA512, ScramSHA256, Plain)
	}
}

// Conn is a ready Kafka connection configuration: the bootstrap brokers, the TLS configuration (nil: plaintext)
// and the SASL mechanism (nil: no authentication). Build it with New, Plaintext or Settings.Conn, so the secure
// transport (and its pooled connections) is shared by every client and writer made from it.
type Conn struct {
	Brokers []string
	TLS     *tls.Config
	SASL    sasl.Mechanism
	// User is the SASL user name, for messages only.
	User string

	transport *kafka.Transport // shared secure transport; nil for plaintext (kafka-go's DefaultTransport)
	health    *Health          // where retries are reported (nil: nowhere); see WithHealth
}

// New returns a Conn for brokers with the given security (nil TLS and SASL: plaintext).
func New(brokers []string, tlsConfig *tls.Config, mech sasl.Mechanism, user string) Conn {
	c := Conn{Brokers: brokers, TLS: tlsConfig, SASL: mech, User: user}
	if c.Secure() {
		c.transport = c.NewTransport(0)
	}
	return c
}

// Plaintext returns a Conn for brokers without TLS or SASL (the embedded dev broker, kfake in tests).
func Plaintext(brokers ...string) Conn { return Conn{Brokers: brokers} }

// Secure reports whether the connection uses TLS or SASL.
func (c Conn) Secure() bool { return c.TLS != nil || c.SASL != nil }

// Protocol names the Kafka listener security protocol the Conn speaks (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL).
func (c Conn) Protocol() string {
	switch {
	case c.TLS != nil && c.SASL != nil:
		return "SASL_SSL"
	case c.TLS != nil:
		return "SSL"
	case c.SASL != nil:
		return "SASL_PLAINTEXT"
	}
	return "PLAINTEXT"
}

// String describes the connection for logs: brokers, protocol, mechanism and user; never a password.
func (c Conn) String() string {
	s := strings.Join(c.Brokers, ",") + " (" + c.Protocol()
	if c.SASL != nil {
		s += " " + c.SASL.Name() + " user " + c.User
	}
	return s + ")"
}

// Addr returns the bootstrap brokers as a kafka-go address.
func (c Conn) Addr() net.Addr { return kafka.TCP(c.Brokers...) }

// Dialer returns a dialer for readers and consumer groups, with kafka-go's default timeout.
func (c Conn) Dialer() *kafka.Dialer {
	return &kafka.Dialer{Timeout: 10 * time.Second, DualStack: true, TLS: c.TLS, SASLMechanism: c.SASL}
}

// Transport returns the round tripper for clients and writers: the Conn's shared secure transport, or kafka-go's
// DefaultTransport for plaintext (whose idle connections kafkatest closes between tests).
func (c Conn) Transport() kafka.RoundTripper {
	switch {
	case c.transport != nil:
		return c.transport
	case c.Secure():
		return c.NewTransport(0)
	}
	return kafka.DefaultTransport
}

// NewTransport returns a transport of its own (dialTimeout 0: kafka-go's default), for a caller that closes its
// idle connections when done, as the CLI does.
func (c Conn) NewTransport(dialTimeout time.Duration) *kafka.Transport {
	return &kafka.Transport{DialTimeout: dialTimeout, TLS: c.TLS, SASL: c.SASL}
}

// CloseIdleConnections closes the idle connections of the Conn's own secure transport, ending its pooled
// connections' goroutines; a process calls it once done with Kafka. kafka-go's DefaultTransport (plaintext) is
// the process's and left alone.
func (c Conn) CloseIdleConnections() {
	if c.transport != nil {
		c.transport.CloseIdleConnections()
	}
}

// Client returns a client on the shared transport whose requests each may take timeout.
func (c Conn) Client(timeout time.Duration) *kafka.Client {
	return &kafka.Client{Addr: c.Addr(), Timeout: timeout, Transport: c.Transport()}
}

// ReaderConfig returns the configuration of a reader of one partition as Greenwave reads state and tables: from
// the first byte available, up to 8 MiB per fetch, waiting at most 250ms for new data.
func (c Conn) ReaderConfig(topic string, partition int) kafka.ReaderConfig {
	return kafka.ReaderConfig{Brokers: c.Brokers, Dialer: c.Dialer(), Topic: topic, Partition: partition,
		MinBytes: 1, MaxBytes: 8 << 20, MaxWait: 250 * time.Millisecond}
}

// TopicDenied returns the classified security error when the user may not describe topic, and nil when it may
// (or the broker cannot be asked). kafka-go's clients answer metadata from a cache that leaves such a topic out,
// so it looks missing; a connection of its own gets the broker's TOPIC_AUTHORIZATION_FAILED.
func (c Conn) TopicDenied(ctx context.Context, topic string) error {
	for _, b := range c.Brokers {
		conn, err := c.Dialer().DialContext(ctx, "tcp", b)
		if err != nil {
			if fatal := c.Classify(err); fatal != nil {
				return fatal
			}
			continue
		}
		_, err = conn.ReadPartitions(topic)
		_ = conn.Close()
		if errors.Is(err, kafka.TopicAuthorizationFailed) {
			return c.Classify(fmt.Errorf("topic %s: %w", topic, err))
		}
		return nil
	}
	return nil
}

// Probe asks the brokers for the cluster metadata once: the start-up check that the brokers answer, accept the
// TLS handshake and the SASL credentials. A security failure comes back classified (see Classify).
func (c Conn) Probe(ctx context.Context, timeout time.Duration) error {
	_, err := c.Client(timeout).Metadata(ctx, &kafka.MetadataRequest{Topics: []string{}})
	if err == nil {
		return nil
	}
	if fatal := c.Classify(err); fatal != nil {
		return fatal
	}
	hint := ""
	if !c.Secure() {
		hint = fmt.Sprintf(" (if the listener needs TLS or SASL, set %s / %s)", EnvTLS, EnvSASLMechanism)
	}
	return fmt.Errorf("kafka: brokers %s do not answer: %w%s", c, err, hint)
}
