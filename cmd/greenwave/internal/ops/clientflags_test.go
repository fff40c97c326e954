package ops

import (
	"context"
	"flag"
	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/devstate"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseArgs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		wantPos []string
		wantMax int
		wantB   bool
		status  int
	}{
		{name: "flags after the positional", args: []string{"features", "--max", "3", "--from-beginning"}, wantPos: []string{"features"}, wantMax: 3, wantB: true},
		{name: "flags before the positional", args: []string{"--max=3", "features"}, wantPos: []string{"features"}, wantMax: 3},
		{name: "interleaved", args: []string{"a", "--max", "2", "b", "--from-beginning", "c"}, wantPos: []string{"a", "b", "c"}, wantMax: 2, wantB: true},
		{name: "double dash ends flags", args: []string{"--max", "1", "--", "--from-beginning"}, wantPos: []string{"--from-beginning"}, wantMax: 1},
		{name: "no args", args: nil, wantPos: nil},
		{name: "unknown flag", args: []string{"features", "--nope"}, status: 2},
		{name: "bad value", args: []string{"--max", "many"}, status: 2},
		{name: "help", args: []string{"features", "--help"}, status: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var help strings.Builder
			fs := newFlagSet("tail", "TOPIC", "Tails.", &help)
			maxN := fs.Int("max", 0, "")
			b := fs.Bool("from-beginning", false, "")
			pos, err := parseArgs(fs, tt.args)
			if got := exitStatus(err); got != tt.status {
				t.Fatalf("status %d (%v), want %d", got, err, tt.status)
			}
			if err != nil {
				if tt.name == "help" && (err != flag.ErrHelp || !strings.Contains(help.String(), "Usage: greenwave tail TOPIC")) {
					t.Errorf("help: err %v, printed %q", err, help.String())
				}
				if tt.status == 2 && !strings.Contains(err.Error(), "see greenwave tail --help") {
					t.Errorf("usage error %q does not point at --help", err)
				}
				return
			}
			if !slices.Equal(pos, tt.wantPos) || *maxN != tt.wantMax || *b != tt.wantB {
				t.Errorf("got pos %q max %d from-beginning %v, want %q %d %v", pos, *maxN, *b, tt.wantPos, tt.wantMax, tt.wantB)
			}
		})
	}
}

func TestKafkaFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		env         env
		args        []string
		wantBrokers []string
		wantPrefix  string
		wantErr     string
	}{
		{name: "default", wantBrokers: []string{"127.0.0.1:9092"}},
		{name: "from the environment", env: env{EnvBrokers: "k1:9092,k2:9093", EnvTopicPrefix: "staging."}, wantBrokers: []string{"k1:9092", "k2:9093"}, wantPrefix: "staging."},
		{name: "flag beats environment", env: env{EnvBrokers: "k1:9092"}, args: []string{"--brokers", " a:1 , b:2 ,"}, wantBrokers: []string{"a:1", "b:2"}},
		{name: "no port", args: []string{"--brokers", "localhost"}, wantErr: `"localhost" is not host:port`},
		{name: "bad port", args: []string{"--brokers", "h:99999"}, wantErr: "port \"99999\" is not a number in 1..65535"},
		{name: "empty", args: []string{"--brokers", ","}, wantErr: "--brokers is empty"},
		{name: "zero timeout", args: []string{"--timeout", "0s"}, wantErr: "--timeout must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fs := newFlagSet("x", "", "", io.Discard)
			kf := addKafkaFlags(fs, tt.env.lookup)
			if _, err := parseArgs(fs, tt.args); err != nil {
				t.Fatal(err)
			}
			brokers, err := kf.brokerList("x")
			if tt.wantErr != "" {
				if exitStatus(err) != 2 || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want a usage error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(brokers, tt.wantBrokers) || kf.prefix != tt.wantPrefix {
				t.Fatalf("got %q prefix %q err %v, want %q prefix %q", brokers, kf.prefix, err, tt.wantBrokers, tt.wantPrefix)
			}
		})
	}
}

func TestGRPCFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tokenFile := write("token", "\n  s3cret-0123456789abcdef\n")
	emptyFile := write("empty", "\n")
	spaceFile := write("space", "two words\n")
	shortFile := write("short", "\n\nshort\n")
	twoFile := write("two", "first-token-0123456789\nsecond-token-0123456789\n")
	notPEM := write("ca.pem", "not a certificate")
	tests := []struct {
		name      string
		env       env
		args      []string
		wantToken string
		wantErr   string
	}{
		{name: "plaintext, no token"},
		{name: "token flag", args: []string{"--token", "abc-0123456789abcdef"}, wantToken: "abc-0123456789abcdef"},
		{name: "token file trimmed", args: []string{"--token-file", tokenFile}, wantToken: "s3cret-0123456789abcdef"},
		{name: "token from the environment", env: env{EnvToken: "envtok-0123456789abcdef"}, wantToken: "envtok-0123456789abcdef"},
		{name: "flag beats environment", env: env{EnvToken: "envtok-0123456789abcdef"}, args: []string{"--token", "abc-0123456789abcdef"}, wantToken: "abc-0123456789abcdef"},
		{name: "short token flag", args: []string{"--token", "abc"}, wantErr: "--token: the token is 3 characters long, shorter than the minimum 16"},
		{name: "short token in the environment", env: env{EnvToken: "envtok"}, wantErr: "$GREENWAVE_TOKEN: the token is 6 characters long"},
		{name: "short token file", args: []string{"--token-file", shortFile}, wantErr: "--token-file " + shortFile + ":3: the token is 5 characters long"},
		{name: "token file of two lines", args: []string{"--token-file", twoFile}, wantErr: "--token-file " + twoFile + ":2: a second non-blank line"},
		{name: "both token flags", args: []string{"--token", "a", "--token-file", tokenFile}, wantErr: "not both"},
		{name: "missing token file", args: []string{"--token-file", filepath.Join(dir, "nope")}, wantErr: "--token-file: open"},
		{name: "empty token file", args: []string{"--token-file", emptyFile}, wantErr: "is empty"},
		{name: "token with a space", args: []string{"--token-file", spaceFile}, wantErr: "whitespace or a control character"},
		{name: "bad addr", args: []string{"--addr", "trainer"}, wantErr: "--addr"},
		{name: "cert without key", args: []string{"--tls-cert", "c.pem"}, wantErr: "--tls-cert and --tls-key must be given together"},
		{name: "CA without PEM", args: []string{"--tls-ca", notPEM}, wantErr: "holds no PEM certificate"},
		{name: "missing key pair", args: []string{"--tls-cert", notPEM, "--tls-key", notPEM}, wantErr: "--tls-cert " + notPEM},
		{name: "system roots", args: []string{"--tls"}},
		{name: "negative timeout", args: []string{"--timeout", "-1s"}, wantErr: "--timeout must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fs := newFlagSet("x", "", "", io.Discard)
			gf := addGRPCFlags(fs, "trainer", defaultTrainerAddr, tt.env.lookup)
			if _, err := parseArgs(fs, tt.args); err != nil {
				t.Fatal(err)
			}
			_, err := gf.dialOptions("x")
			if tt.wantErr != "" {
				if exitStatus(err) != 2 || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want a usage error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			token, _ := gf.bearerToken()
			if token != tt.wantToken {
				t.Errorf("token %q, want %q", token, tt.wantToken)
			}
		})
	}
}

func TestBearerMetadata(t *testing.T) {
	t.Parallel()
	md, err := bearer("abc").GetRequestMetadata(context.Background())
	if err != nil || md["authorization"] != "Bearer abc" {
		t.Fatalf("got %v, %v", md, err)
	}
}

func TestGroupsAndExitStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		cmd        command
		args       []string
		status     int
		wantStderr string
		wantErr    string
	}{
		{name: "topics without a command", cmd: topicsCmd, status: 2, wantErr: "missing command: one of ensure, describe", wantStderr: "Usage: greenwave topics COMMAND"},
		{name: "topics help", cmd: topicsCmd, args: []string{"--help"}, status: 0, wantStderr: "describe"},
		{name: "topics unknown", cmd: topicsCmd, args: []string{"create"}, status: 2, wantErr: `unknown command "create"`},
		{name: "topics ensure help", cmd: topicsCmd, args: []string{"ensure", "--help"}, status: 0, wantStderr: "-partitions int"},
		{name: "topics ensure bad partitions", cmd: topicsCmd, args: []string{"ensure", "--partitions", "0"}, status: 2, wantErr: "--partitions must be in 1..10000"},
		{name: "topics describe extra arg", cmd: topicsCmd, args: []string{"describe", "features"}, status: 2, wantErr: "unexpected arguments"},
		{name: "tail without topic", cmd: tailCmdNoHook, status: 2, wantErr: "missing TOPIC"},
		{name: "tail unknown topic", cmd: tailCmdNoHook, args: []string{"feature"}, status: 2, wantErr: `unknown topic "feature"`},
		{name: "tail negative max", cmd: tailCmdNoHook, args: []string{"features", "--max", "-1"}, status: 2, wantErr: "--max must not be negative"},
		{name: "tail help lists exit status", cmd: tailCmdNoHook, args: []string{"--help"}, status: 0, wantStderr: "Exit status: 0"},
		{name: "models list bad page size", cmd: modelsCmd, args: []string{"list", "--page-size", "5000"}, status: 2, wantErr: "--page-size must be in 1..1000"},
		{name: "models list bad horizon", cmd: modelsCmd, args: []string{"list", "--horizon", "1.5s"}, status: 2, wantErr: "positive whole number of seconds"},
		{name: "models list bad target", cmd: modelsCmd, args: []string{"list", "--target", "volume"}, status: 2, wantErr: "want flow, occupancy or speed"},
		{name: "models show without id", cmd: modelsCmd, args: []string{"show"}, status: 2, wantErr: "missing MODEL_ID"},
		{name: "models show malformed id", cmd: modelsCmd, args: []string{"show", "I-100"}, status: 2, wantErr: "is not intersection/approach/horizon_s/target"},
		{name: "plans get without intersection", cmd: plansCmd, args: []string{"get"}, status: 2, wantErr: "missing INTERSECTION"},
		{name: "plans watch negative max", cmd: plansCmd, args: []string{"watch", "--max=-2"}, status: 2, wantErr: "--max must not be negative"},
		// Nothing listens on port 1: the call fails (status 1), and the message names the address.
		{name: "plans get unreachable", cmd: plansCmd, args: []string{"get", "I-100", "--addr", "127.0.0.1:1", "--timeout", "2s"}, status: 1, wantErr: "127.0.0.1:1"},
		{name: "tail unreachable broker", cmd: tailCmdNoHook, args: []string{"features", "--brokers", "127.0.0.1:1", "--timeout", "2s"}, status: 1, wantErr: "127.0.0.1:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, stderr, err := runCmd(t, tt.cmd, tt.args...)
			if got := exitStatus(err); got != tt.status {
				t.Fatalf("exit status %d (%v), want %d", got, err, tt.status)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("error %v, want it to contain %q", err, tt.wantErr)
			}
			if !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("stderr %q, want it to contain %q", stderr, tt.wantStderr)
			}
		})
	}
}

func tailCmdNoHook(ctx context.Context, args []string, stdout, stderr io.Writer, lookup lookupFunc) error {
	return tailCmd(ctx, args, stdout, stderr, lookup, nil)
}

func TestFormatRetention(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		7 * 24 * time.Hour: "7d", 36 * time.Hour: "36h", 90 * time.Minute: "1h30m0s", -time.Millisecond: "forever",
	} {
		if got := formatRetention(d); got != want {
			t.Errorf("formatRetention(%v) = %q, want %q", d, got, want)
		}
	}
}

// TestDevStateDefaults: with a running `greenwave dev` (its state file, this process standing in for it), the
// broker and gRPC addresses default to the dev stack's; the environment and the flags still win.
func TestDevStateDefaults(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "dev.json")
	err := devstate.Write(path, devstate.State{PID: os.Getpid(), Brokers: []string{"127.0.0.1:40001"},
		Services: map[string]devstate.Addrs{"trainer": {GRPC: "127.0.0.1:40002"}, "signalcontrol": {GRPC: "127.0.0.1:40003"}}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name                 string
		env                  env
		args                 []string
		service, def         string
		wantBrokers, wantAdr string
	}{
		{name: "dev state", env: env{devstate.EnvFile: path}, service: "trainer", def: defaultTrainerAddr, wantBrokers: "127.0.0.1:40001", wantAdr: "127.0.0.1:40002"},
		{name: "display name", env: env{devstate.EnvFile: path}, service: "signal-control", def: defaultSignalControlAddr, wantBrokers: "127.0.0.1:40001", wantAdr: "127.0.0.1:40003"},
		{name: "environment wins", env: env{devstate.EnvFile: path, EnvBrokers: "k:1"}, service: "trainer", def: defaultTrainerAddr, wantBrokers: "k:1", wantAdr: "127.0.0.1:40002"},
		{name: "flags win", env: env{devstate.EnvFile: path}, args: []string{"--brokers", "f:1", "--addr", "f:2"}, service: "trainer", def: defaultTrainerAddr, wantBrokers: "f:1", wantAdr: "f:2"},
		{name: "no dev running", env: env{devstate.EnvFile: filepath.Join(t.TempDir(), "none.json")}, service: "trainer", def: defaultTrainerAddr, wantBrokers: defaultBrokers, wantAdr: defaultTrainerAddr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			kfs, gfs := newFlagSet("k", "", "", io.Discard), newFlagSet("g", "", "", io.Discard)
			kf := addKafkaFlags(kfs, tt.env.lookup)
			gf := addGRPCFlags(gfs, tt.service, tt.def, tt.env.lookup)
			var kargs, gargs []string
			for i := 0; i+1 < len(tt.args); i += 2 {
				if tt.args[i] == "--brokers" {
					kargs = append(kargs, tt.args[i:i+2]...)
				} else {
					gargs = append(gargs, tt.args[i:i+2]...)
				}
			}
			if _, err := parseArgs(kfs, kargs); err != nil {
				t.Fatal(err)
			}
			if _, err := parseArgs(gfs, gargs); err != nil {
				t.Fatal(err)
			}
			if kf.brokers != tt.wantBrokers || gf.addr != tt.wantAdr {
				t.Errorf("brokers %q addr %q, want %q and %q", kf.brokers, gf.addr, tt.wantBrokers, tt.wantAdr)
			}
		})
	}
}
