package main

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/cli"
	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/dev"
	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/devstate"
)

const devSynopsis = "[flags]"

const devDescription = `
Runs the whole pipeline on this machine: an in-process Kafka broker (kfake) with the Greenwave topics, the five
services (collector, cleaner, trainer, predictor, signalcontrol) built from this checkout and run as child
processes, the built-in gateway simulator feeding the collector, and the signal plans as they are issued.

Steps: build the services (go build into the user cache dir; set GREENWAVE_BIN_DIR to use prebuilt binaries
instead), start the broker and create the topics (3 partitions; the broker keeps its log in a fresh directory
under ~/.cache/greenwave/dev-broker, removed on exit, and applies the topics' retention and compaction every 10 s,
so its memory stays flat), start the services (LOG_FORMAT=console,
COLLECTOR_ALLOW_ANONYMOUS=true, COLLECTOR_MAX_AGE large enough for historical replays), wait until every /readyz answers 200, then feed readings and print plans until
--for elapses (counted from readiness) or Ctrl-C / SIGTERM arrives. Stopping takes at most about 10 s (services
get SIGTERM, then SIGKILL after 8 s); a second Ctrl-C ends greenwave at once, and the services die with it.

External Kafka. --brokers host:port[,…] runs the services on that cluster instead of the embedded broker (no
broker is started; --broker-port does not apply). dev and the services connect with the security this process's
environment describes — KAFKA_TLS, KAFKA_TLS_CA_FILE, KAFKA_TLS_CERT_FILE/KAFKA_TLS_KEY_FILE,
KAFKA_TLS_SERVER_NAME, KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD_FILE (see
docs/configuration.md) — and every service inherits it. dev first checks that the brokers answer and accept the
credentials (a wrong password or an untrusted certificate stops it with the variable to fix), then that every
Greenwave topic (under --topic-prefix) exists: missing ones are an error naming them, unless --create-topics
creates them (3 partitions; the user needs the right to create topics). Plan counts then cover only the plans
issued by this run. Example, against the test broker of deploy/kafka/kafka.sh:
  bash deploy/kafka/kafka.sh start && eval "$(bash deploy/kafka/kafka.sh env)"
  greenwave dev --brokers "$KAFKA_BROKERS" --create-topics --for 2m
With the embedded broker, KAFKA_TLS* and KAFKA_SASL_* in the environment are cleared for the services.

Authentication. The collector's COLLECTOR_ALLOW_ANONYMOUS=true and COLLECTOR_MAX_AGE presets apply only when
dev's environment does not set them: COLLECTOR_ALLOW_ANONYMOUS=false with COLLECTOR_TOKENS_FILE runs the
collector with gateway tokens, and the simulator then sends $GREENWAVE_TOKEN (at least 16 characters).

Addresses. Once ready, dev writes the broker and every service's gRPC and HTTP address to --state-file
(default <user cache dir>/greenwave/dev.json, or $GREENWAVE_DEV_FILE) and removes it on exit. models, plans,
tail, topics, status and replay use them when no flag or environment variable names an address, so they work
against the running dev stack as they are.

Simulated time. The simulator starts --backfill before now (truncated to the hour) and runs --speed times faster
than the wall clock, one batch per simulated minute (IntervalS 60), over one CollectorService.StreamReadings
stream with at most 16 batches awaiting their ack. A minute is sent only once it is over on the wall clock, so
simulated time never passes now: after catching up (72 h at 600x take 7.2 min) the feed runs in real time.

Output. Service logs, prefixed "name | ", go to --log-file, and also to stderr with --logs; stdout carries only
greenwave's own lines:
  human (default): a ready block with the broker and service addresses; one line per plan,
    plan I-100 @2026-11-26T07:35Z cycle 86s  NS 42s EW 26s  predictive: <reason_detail>
    ("[initial]" marks the current plans sent when the watch starts); a summary line every --summary.
  --json: one JSON object per line, each with an "event" field:
    {"event":"ready","broker":"host:port","services":{"collector":{"grpc":"…","http":"…"},…},"log_file":"…"}
        always the first line;
    {"event":"plan","initial":false,"coalesced":0,"plan":{…}}  the SignalPlan in protojson with proto field
        names (intersection_id, valid_from, cycle_s, phases, reason, reason_detail, …);
    {"event":"summary","final":false,"uptime_s":…,"sim_time":"…","batches_sent":…,"batches_acked":…,
        "readings_sent":…,"readings_accepted":…,"weather_sent":…,"weather_accepted":…,
        "rejected":{"<reason>":n},"plans":{"<reason>":n}}  every --summary, and once more with
        "final":true when stopping. Plan counts are read from the plans topic (every plan published,
        once), not from the plan lines, which come from WatchPlans (current plans first, and a stream that
        may coalesce behind a slow terminal).
  Progress and errors go to stderr as text.

Exit status: 0 after --for or a signal with every service stopping cleanly; 1 when a service exits unexpectedly
(the message names it and quotes its last output), fails to become ready, or does not stop on SIGTERM; 2 for a
usage error. Run from make or go run on a terminal, dev moves into a process group of its own and takes the
terminal's foreground, so Ctrl-C reaches only it and "make run" exits with its status (0) rather than being
killed by the same SIGINT; Ctrl-Z is ignored meanwhile.`

// runDev is `greenwave dev`: its flags, run by internal/dev.
func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o := dev.Options{Speed: 600}
	fs := cli.NewFlagSet("dev", devSynopsis, devDescription, stderr)
	fs.StringVar(&o.Topology, "topology", "", "intersection topology file (default config/topology.yaml in the repository root)")
	fs.IntVar(&o.BrokerPort, "broker-port", 0, "port of the embedded Kafka broker on 127.0.0.1 (0 picks a free one)")
	brokers := fs.String("brokers", "", "run on this Kafka cluster (host:port, comma-separated) instead of the embedded broker, with the KAFKA_TLS*/KAFKA_SASL_* security of the environment")
	fs.BoolVar(&o.CreateTopics, "create-topics", false, "with --brokers: create the missing topics (otherwise missing topics are an error)")
	fs.StringVar(&o.TopicPrefix, "topic-prefix", "", "with --brokers: the services' TOPIC_PREFIX")
	fs.BoolVar(&o.JSON, "json", false, "print JSON lines on stdout instead of text (see Output)")
	fs.BoolVar(&o.Sample, "sample", true, "feed the collector from the built-in simulator (--sample=false: start the stack only)")
	fs.Var(&o.Speed, "speed", `simulated seconds per wall-clock second (600: 10 simulated minutes a second), or "max"`)
	fs.DurationVar(&o.Backfill, "backfill", 72*time.Hour, "how far before now simulated time starts (truncated to the hour)")
	fs.Uint64Var(&o.Seed, "seed", 1, "simulator seed")
	fs.DurationVar(&o.For, "for", 0, "stop by itself this long after the services are ready (0: run until interrupted)")
	fs.BoolVar(&o.Logs, "logs", false, "also copy the service logs to stderr")
	fs.StringVar(&o.LogFile, "log-file", filepath.Join(os.TempDir(), "greenwave-dev.log"), "file the service logs are written to (truncated at start)")
	fs.StringVar(&o.LogLevel, "log-level", "info", "LOG_LEVEL of the services")
	fs.DurationVar(&o.SummaryEvery, "summary", 10*time.Second, "interval of the summary line (0: none but the final one)")
	fs.DurationVar(&o.ReadyTimeout, "ready-timeout", 2*time.Minute, "how long the services may take to become ready")
	fs.StringVar(&o.StateFile, "state-file", devstate.Path(os.LookupEnv), "where the addresses are written for the other commands while dev runs (\"\": nowhere; default $"+devstate.EnvFile+", else the user cache dir)")
	if err := cli.ParseFlags(fs, args); err != nil {
		return err
	}
	if o.Backfill < 0 || o.For < 0 || o.SummaryEvery < 0 || o.ReadyTimeout <= 0 {
		return usagef("dev: --backfill, --for and --summary must not be negative, --ready-timeout must be positive")
	}
	if o.BrokerPort < 0 || o.BrokerPort > 65535 {
		return usagef("dev: --broker-port %d out of range", o.BrokerPort)
	}
	for b := range strings.SplitSeq(*brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			if _, _, err := net.SplitHostPort(b); err != nil {
				return usagef("dev: --brokers: %q is not host:port", b)
			}
			o.Brokers = append(o.Brokers, b)
		}
	}
	if len(o.Brokers) == 0 && (o.CreateTopics || o.TopicPrefix != "") {
		return usagef("dev: --create-topics and --topic-prefix need --brokers")
	}
	if len(o.Brokers) > 0 && o.BrokerPort != 0 {
		return usagef("dev: --broker-port is for the embedded broker: not with --brokers")
	}
	return dev.Run(ctx, o, stdout, stderr)
}
