// Package ops implements the operator commands of the greenwave CLI: `topics`, `tail`, `models` and `plans`.
// They are clients: the Kafka commands read partitions directly (never joining a consumer group, never
// committing), the gRPC commands call the trainer's ModelService and signal-control's SignalControlService.
//
// Every command has the signature of the CLI's dispatch table, func(ctx, args, stdout, stderr) error, so the
// CLI registers it and tests call it in-process with a buffer. A command returns nil on success, flag.ErrHelp
// after printing its help, a *cli.UsageError for a command-line mistake (exit status 2) and any other error when
// the operation failed (exit status 1). Ctrl-C (ctx ending) stops the streaming commands normally: nil.
//
// The flags that reach a broker or a service are the same on every command (see addKafkaFlags, addGRPCFlags).
// Their defaults, in order: the flag, the environment ($KAFKA_BROKERS), a running `greenwave dev`'s addresses
// (internal/devstate), the ports docker-compose.yml publishes.
package ops

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/cli"
	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/devstate"
	"github.com/greenwave-city/greenwave/pkg/config"
	"github.com/greenwave-city/greenwave/pkg/kafkaconn"
)

// Environment variables the flags take their defaults from.
const (
	// EnvBrokers is the services' own variable for the Kafka bootstrap brokers.
	EnvBrokers = "KAFKA_BROKERS"
	// EnvTopicPrefix is the services' own variable for the topic prefix.
	EnvTopicPrefix = "TOPIC_PREFIX"
	// EnvToken is the bearer token sent when neither --token nor --token-file is given. An environment
	// variable keeps the token out of the process list, where --token is visible.
	EnvToken = "GREENWAVE_TOKEN"
)

// defaultBrokers is the services' default KAFKA_BROKERS.
const defaultBrokers = "127.0.0.1:9092"

// Default gRPC addresses: the host ports docker-compose.yml publishes each service's gRPC port on.
const (
	defaultTrainerAddr       = "127.0.0.1:9091"
	defaultSignalControlAddr = "127.0.0.1:9094"
)

// defaultTimeout bounds each request to a broker or service.
const defaultTimeout = 10 * time.Second

// usagef is cli.Usagef, short for the many call sites.
func usagef(format string, args ...any) error { return cli.Usagef(format, args...) }

// lookupFunc reads an environment variable; tests inject one instead of os.LookupEnv.
type lookupFunc func(string) (string, bool)

func envOr(lookup lookupFunc, key, def string) string {
	if v, ok := lookup(key); ok && v != "" {
		return v
	}
	return def
}

// exitStatusHelp is the exit-status paragraph every command's help ends with.
const exitStatusHelp = `Exit status: 0 on success (and when stopped with Ctrl-C), 1 when the operation failed (broker or service
unreachable, not found, refused), 2 for a usage error (bad flag or argument, unreadable --token-file or TLS file).`

// newFlagSet returns a FlagSet whose --help prints "Usage: greenwave NAME SYNOPSIS", the description, the exit
// statuses and the flags to stderr, in the format of the CLI's other commands.
func newFlagSet(name, synopsis, description string, stderr io.Writer) *flag.FlagSet {
	return cli.NewFlagSet(name, synopsis, strings.TrimSpace(description)+"\n\n"+exitStatusHelp, stderr)
}

// parseArgs parses flags and positional arguments in any order ("tail features --max 3" as well as "tail --max 3
// features"): the standard flag package stops at the first positional argument. Everything after "--" is
// positional. It returns the positional arguments; --help prints the usage and yields flag.ErrHelp; a mistake
// yields a *cli.UsageError pointing at --help.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := cli.ParseFlagsAllowArgs(fs, args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

// wantArgs checks the number of positional arguments, naming them in the message.
func wantArgs(fs *flag.FlagSet, pos []string, names ...string) error {
	if len(pos) == len(names) {
		return nil
	}
	if len(pos) < len(names) {
		return usagef("%s: missing %s (see greenwave %s --help)", fs.Name(), strings.Join(names[len(pos):], " and "), fs.Name())
	}
	return usagef("%s: unexpected arguments %q (see greenwave %s --help)", fs.Name(), pos[len(names):], fs.Name())
}

// subcommand is one verb of a command group such as `topics ensure`.
type subcommand struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// dispatch runs the subcommand named by args[0]; `GROUP`, `GROUP --help` and unknown verbs print the group's
// verbs.
func dispatch(ctx context.Context, group, description string, subs []subcommand, args []string, stdout, stderr io.Writer) error {
	usage := func(w io.Writer) {
		fmt.Fprintf(w, "Usage: greenwave %s COMMAND [flags]\n\n%s\n\nCommands:\n", group, strings.TrimSpace(description))
		for _, s := range subs {
			fmt.Fprintf(w, "  %-9s %s\n", s.name, s.summary)
		}
		fmt.Fprintf(w, "\nRun `greenwave %s COMMAND --help` for a command's flags.\n", group)
	}
	names := make([]string, len(subs))
	for i, s := range subs {
		names[i] = s.name
	}
	if len(args) == 0 {
		usage(stderr)
		return usagef("%s: missing command: one of %s", group, strings.Join(names, ", "))
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		usage(stderr)
		return flag.ErrHelp
	}
	for _, s := range subs {
		if s.name == args[0] {
			return s.run(ctx, args[1:], stdout, stderr)
		}
	}
	usage(stderr)
	return usagef("%s: unknown command %q: want one of %s", group, args[0], strings.Join(names, ", "))
}

// kafkaFlags are the flags of the commands that talk to Kafka.
type kafkaFlags struct {
	lookup  lookupFunc
	brokers string
	prefix  string
	timeout time.Duration
}

func addKafkaFlags(fs *flag.FlagSet, lookup lookupFunc) *kafkaFlags {
	k := &kafkaFlags{lookup: lookup}
	brokers := defaultBrokers
	if dev := devstate.Load(devstate.Lookup(lookup)); dev != nil && len(dev.Brokers) > 0 {
		brokers = strings.Join(dev.Brokers, ",")
	}
	fs.StringVar(&k.brokers, "brokers", envOr(lookup, EnvBrokers, brokers), "Kafka bootstrap brokers, comma-separated host:port; $"+EnvBrokers+" when set, else a running `greenwave dev`'s broker")
	fs.StringVar(&k.prefix, "topic-prefix", envOr(lookup, EnvTopicPrefix, ""), "prefix of every topic name, as the services' TOPIC_PREFIX; $"+EnvTopicPrefix+" when set")
	fs.DurationVar(&k.timeout, "timeout", defaultTimeout, "how long each request to the brokers may take")
	return k
}

// parse parses the arguments of a Kafka command that takes no positional arguments and returns the connection.
func (k *kafkaFlags) parse(fs *flag.FlagSet, args []string) (kafkaconn.Conn, error) {
	pos, err := parseArgs(fs, args)
	if err != nil {
		return kafkaconn.Conn{}, err
	}
	if err := wantArgs(fs, pos); err != nil {
		return kafkaconn.Conn{}, err
	}
	return k.conn(fs.Name())
}

// conn validates --brokers and --timeout and returns the connection: the brokers with the security the
// services' KAFKA_TLS* and KAFKA_SASL_* variables describe.
func (k *kafkaFlags) conn(cmd string) (kafkaconn.Conn, error) {
	brokers, err := k.brokerList(cmd)
	if err != nil {
		return kafkaconn.Conn{}, err
	}
	return KafkaConn(cmd, brokers, k.lookup)
}

// KafkaConn returns the connection to brokers with the security read from the KAFKA_TLS* and KAFKA_SASL_*
// variables (lookup; os.LookupEnv when nil), as the services read them. A bad setting is a usage error naming it.
func KafkaConn(cmd string, brokers []string, lookup func(string) (string, bool)) (kafkaconn.Conn, error) {
	var s kafkaconn.Settings
	if err := config.Load(&s, lookup); err != nil {
		return kafkaconn.Conn{}, usagef("%s: %v", cmd, err)
	}
	s.Brokers = brokers
	if p := s.Validate(); len(p) > 0 {
		return kafkaconn.Conn{}, usagef("%s: %s", cmd, strings.Join(p, "; "))
	}
	c, err := s.Conn()
	if err != nil {
		return kafkaconn.Conn{}, fmt.Errorf("%s: %w", cmd, err)
	}
	return c, nil
}

// explain returns err as the connection's classified security error when it is one (naming the setting to fix).
func explain(conn kafkaconn.Conn, err error) error {
	if fatal := conn.Classify(err); fatal != nil {
		return fatal
	}
	return err
}

// brokerList validates --brokers and --timeout and returns the broker addresses.
func (k *kafkaFlags) brokerList(cmd string) ([]string, error) {
	if k.timeout <= 0 {
		return nil, usagef("%s: --timeout must be positive, got %v", cmd, k.timeout)
	}
	var out []string
	for b := range strings.SplitSeq(k.brokers, ",") {
		b = strings.TrimSpace(b)
		if b == "" {
			continue
		}
		if err := checkHostPort(b); err != nil {
			return nil, usagef("%s: --brokers: %v", cmd, err)
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, usagef("%s: --brokers is empty", cmd)
	}
	return out, nil
}

// checkHostPort accepts host:port with a port in 1..65535.
func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port %q is not a number in 1..65535", addr, port)
	}
	if host == "" {
		return fmt.Errorf("%q has no host", addr)
	}
	return nil
}

// newKafkaClient returns a client with a transport of its own, which closeClient closes: kafka-go's default
// transport keeps its connections open for the life of the process, and the commands also run in-process (in
// tests, and in whatever embeds them).
func newKafkaClient(conn kafkaconn.Conn, timeout time.Duration) *kafka.Client {
	return &kafka.Client{Addr: conn.Addr(), Timeout: timeout, Transport: conn.NewTransport(timeout)}
}

func closeClient(c *kafka.Client) {
	if t, ok := c.Transport.(*kafka.Transport); ok {
		t.CloseIdleConnections()
	}
}

// grpcFlags are the flags of the commands that call a Greenwave gRPC service.
type grpcFlags struct {
	addr      string
	token     string
	tokenFile string
	tls       bool
	tlsCA     string
	tlsCert   string
	tlsKey    string
	timeout   time.Duration
	lookup    lookupFunc
}

// addGRPCFlags adds the flags of a command calling service (its display name, "signal-control"). --addr defaults
// to the service's address in a running `greenwave dev` (internal/devstate), else to defaultAddr (compose).
func addGRPCFlags(fs *flag.FlagSet, service, defaultAddr string, lookup lookupFunc) *grpcFlags {
	g := &grpcFlags{lookup: lookup}
	addr := devstate.Load(devstate.Lookup(lookup)).GRPC(strings.ReplaceAll(service, "-", ""), defaultAddr)
	fs.StringVar(&g.addr, "addr", addr, service+" gRPC address, host:port (default: a running `greenwave dev`'s, else the compose port)")
	fs.StringVar(&g.token, "token", "", "bearer token, sent as the header \"authorization: Bearer TOKEN\" (visible in the process list: prefer --token-file or $"+EnvToken+")")
	fs.StringVar(&g.tokenFile, "token-file", "", "file holding the bearer token (surrounding whitespace ignored)")
	fs.BoolVar(&g.tls, "tls", false, "use TLS, verifying the server with the system roots (implied by the other --tls-* flags)")
	fs.StringVar(&g.tlsCA, "tls-ca", "", "PEM CA bundle that verifies the server's certificate (turns TLS on)")
	fs.StringVar(&g.tlsCert, "tls-cert", "", "PEM client certificate for mutual TLS (with --tls-key)")
	fs.StringVar(&g.tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	fs.DurationVar(&g.timeout, "timeout", defaultTimeout, "how long each request may take (streams run until stopped)")
	return g
}

// dialOptions validates the flags, reads the token and TLS files they name, and returns the dial options.
// Every problem is a *cli.UsageError naming the flag and the file.
func (g *grpcFlags) dialOptions(cmd string) ([]grpc.DialOption, error) {
	if err := checkHostPort(g.addr); err != nil {
		return nil, usagef("%s: --addr: %v", cmd, err)
	}
	if g.timeout <= 0 {
		return nil, usagef("%s: --timeout must be positive, got %v", cmd, g.timeout)
	}
	token, err := g.bearerToken()
	if err != nil {
		return nil, usagef("%s: %v", cmd, err)
	}
	creds, err := cli.TLS{On: g.tls, CA: g.tlsCA, Cert: g.tlsCert, Key: g.tlsKey}.Credentials()
	if err != nil {
		return nil, usagef("%s: %v", cmd, err)
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(token)))
	}
	return opts, nil
}

// bearerToken returns the token of --token, --token-file or $GREENWAVE_TOKEN, in that order ("" for none),
// refusing one shorter than cli.MinTokenLength.
func (g *grpcFlags) bearerToken() (string, error) {
	if g.token != "" && g.tokenFile != "" {
		return "", errors.New("give --token or --token-file, not both")
	}
	token, from := g.token, "--token"
	if g.tokenFile != "" {
		return cli.ReadTokenFile("--token-file", g.tokenFile)
	}
	if token == "" {
		token, from = envOr(g.lookup, EnvToken, ""), "$"+EnvToken
	}
	if token == "" {
		return "", nil
	}
	if err := cli.CheckToken(from, token); err != nil {
		return "", err
	}
	return token, nil
}

// dial validates the flags and returns a client connection to --addr; the caller closes it. gRPC connects
// lazily, so an unreachable service shows up as the first call's UNAVAILABLE error.
func (g *grpcFlags) dial(cmd string) (*grpc.ClientConn, error) {
	opts, err := g.dialOptions(cmd)
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(g.addr, opts...)
	if err != nil {
		return nil, usagef("%s: --addr %s: %v", cmd, g.addr, err)
	}
	return conn, nil
}

// bearer sends a token as `authorization: Bearer <token>` on every call. It does not insist on TLS: the
// collector's demo setup takes tokens over plaintext on loopback, and refusing would only push operators to
// worse workarounds; docs/cli.md says to use TLS across machines.
type bearer string

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials.
func (b bearer) RequireTransportSecurity() bool { return false }

// repeated is a flag that may be given several times, and also takes comma-separated values.
type repeated []string

func (r *repeated) String() string { return strings.Join(*r, ",") }

func (r *repeated) Set(v string) error {
	for s := range strings.SplitSeq(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*r = append(*r, s)
		}
	}
	return nil
}

// rpcError turns a failed call into an error that says what to do about it: an unreachable service names the
// address, a refused token points at the token flags, a rejected argument lists the server's field violations.
func rpcError(op, service, addr string, err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%s: %w", op, err)
	}
	switch st.Code() {
	case codes.Unavailable:
		return fmt.Errorf("%s: %s at %s is unavailable (is it running? check --addr and the TLS flags): %s", op, service, addr, st.Message())
	case codes.DeadlineExceeded:
		return fmt.Errorf("%s: no answer from %s at %s within --timeout", op, service, addr)
	case codes.Unauthenticated, codes.PermissionDenied:
		return fmt.Errorf("%s: %s refused the call (check --token, --token-file or $%s): %s", op, service, EnvToken, st.Message())
	}
	msg := st.Message()
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				msg += fmt.Sprintf("; %s: %s", v.GetField(), v.GetDescription())
			}
		}
	}
	return fmt.Errorf("%s: %s (%s)", op, msg, st.Code())
}
