// Package replay implements `greenwave replay`: it reads a data file with pkg/dataset and sends its readings and
// weather to a collector over one long-lived StreamReadings stream (internal/gateway), paced on event time,
// reconnecting on transient failures; --wait then follows the pipeline's consumer groups until they have
// processed what was sent.
package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/cli"
	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/devstate"
	"github.com/greenwave-city/greenwave/pkg/dataset"
	"github.com/greenwave-city/greenwave/pkg/topology"
)

const synopsis = "[--format csv|metro|scats] [--weather FILE] --collector HOST:PORT [flags] FILE"

const description = `
Reads a data file with pkg/dataset and sends its readings (and weather) to a collector over one long-lived
CollectorService.StreamReadings stream, paced on event time.

Formats: csv (the canonical readings CSV; --weather adds a canonical weather CSV, merged by time; the collector must
know its detectors: greenwave topology import --format csv derives a topology, which --dry-run reports), metro (UCI
Metro Interstate Traffic Volume: hourly readings and weather of one site), scats (VicRoads SCATS volumes: 96
fifteen-minute readings per row). Rows that cannot be read are reported with file and line and skipped.

Sending. Records are grouped into batches of at most --batch; at most --window batches await their ack at
once (acks are matched by batch_id). --speed N replays N seconds of event time per wall-clock second;
--speed max sends as fast as the acks allow. UNAVAILABLE, RESOURCE_EXHAUSTED (after its RetryInfo delay) and a
broken stream reconnect with exponential backoff and resend every unacknowledged batch (readings keep their
derived ids, so resends are harmless); after --max-retries failures in a row without an ack, replay gives up.
Any other status (UNAUTHENTICATED, INVALID_ARGUMENT, …) stops the replay at once.

Output. Progress on stderr (a bar on a terminal, a line every 10 s otherwise), the first rejections and
problems, then a summary: sent, accepted, rejected by reason, retried batches, duration and rate. --json prints
the summary as one JSON object on stdout. --dry-run reads and validates the file and prints what would be sent,
without a collector.

Waiting. --wait, after the last ack, waits until the pipeline has processed everything sent: the cleaner's
consumer group has committed the readings topic up to its end offsets as they were after the last ack, then the
trainer's and predictor's groups the features topic up to its ends as they were at that point, then
signal-control's the predictions topic; it prints the end-to-end time. Windows the cleaner still holds open by
event time (the last ones of the file) are not waited for. It needs the broker: --brokers (default
$KAFKA_BROKERS, else a running greenwave dev's).

Exit status: 0 when every record sent was acknowledged (accepted or rejected with a reason); 1 when anything
sent was neither (the collector failed, gave up, or Ctrl-C); 2 for a usage error.`

// options are the flags of `greenwave replay`.
type options struct {
	file, format, weather string
	collector             string
	token, tokenFile      string
	tlsCA, tlsCert        string
	tlsKey                string
	speed                 cli.Speed
	batch, window         int
	maxRetries            int
	json, dryRun          bool
	// wait: after the last ack, wait until the pipeline has processed everything (wait.go).
	wait        bool
	waitTimeout time.Duration
	brokers     string
	topicPrefix string
}

// Run is `greenwave replay`: it parses args, sends the file and prints the summary. It returns a
// *cli.UsageError for a command-line mistake and flag.ErrHelp after --help.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o := options{speed: 0}
	fs := cli.NewFlagSet("replay", synopsis, description, stderr)
	fs.StringVar(&o.format, "format", dataset.FormatCSV, "file format: "+strings.Join(dataset.Formats(), ", "))
	fs.StringVar(&o.weather, "weather", "", "canonical weather CSV to send with the readings, merged by event time")
	fs.StringVar(&o.collector, "collector", "", "collector gRPC address HOST:PORT (default: a running `greenwave dev`'s collector; required otherwise, unless --dry-run)")
	fs.StringVar(&o.token, "token", "", "gateway token sent as \"authorization: Bearer\" (prefer --token-file: flags show in ps)")
	fs.StringVar(&o.tokenFile, "token-file", "", "file holding the gateway token")
	fs.StringVar(&o.tlsCA, "tls-ca", "", "CA certificate (PEM) to verify the collector; any --tls-* flag turns TLS on")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "client certificate (PEM) for mutual TLS, with --tls-key")
	fs.StringVar(&o.tlsKey, "tls-key", "", "client private key (PEM) for mutual TLS, with --tls-cert")
	fs.Var(&o.speed, "speed", `event-time seconds per wall-clock second (3600: an hour a second), or "max"`)
	fs.IntVar(&o.batch, "batch", 1000, "most records per batch (the collector allows COLLECTOR_MAX_BATCH, default 5000)")
	fs.IntVar(&o.window, "window", 8, "most batches awaiting their ack (the collector keeps their order on Kafka)")
	fs.IntVar(&o.maxRetries, "max-retries", 10, "give up after this many stream failures in a row without an ack")
	fs.BoolVar(&o.json, "json", false, "print the summary as one JSON object on stdout")
	fs.BoolVar(&o.dryRun, "dry-run", false, "read and validate the file, print what would be sent, send nothing")
	fs.BoolVar(&o.wait, "wait", false, "after the last ack, wait until every consumer group down to signal-control has committed what was sent, and print the end-to-end time")
	fs.DurationVar(&o.waitTimeout, "wait-timeout", 30*time.Minute, "give up --wait after this long (exit 1)")
	defBrokers := envOr("KAFKA_BROKERS", "127.0.0.1:9092")
	if dev := devstate.Load(os.LookupEnv); dev != nil && os.Getenv("KAFKA_BROKERS") == "" && len(dev.Brokers) > 0 {
		defBrokers = strings.Join(dev.Brokers, ",")
	}
	fs.StringVar(&o.brokers, "brokers", defBrokers, "Kafka brokers for --wait, comma-separated; $KAFKA_BROKERS, else a running `greenwave dev`'s")
	fs.StringVar(&o.topicPrefix, "topic-prefix", os.Getenv("TOPIC_PREFIX"), "the services' TOPIC_PREFIX, for --wait; $TOPIC_PREFIX when set")
	flagArgs, files := cli.SeparateFileArgs(args, "json", "dry-run", "wait")
	if err := cli.ParseFlags(fs, flagArgs); err != nil {
		return err
	}
	switch {
	case len(files) == 0:
		return cli.Usagef("replay: FILE is required (see greenwave replay --help)")
	case len(files) > 1:
		return cli.Usagef("replay: one FILE expected, got %q (see greenwave replay --help)", files)
	}
	file := files[0]
	o.file = file
	if o.collector == "" && !o.dryRun {
		o.collector = devstate.Load(os.LookupEnv).GRPC("collector", "")
	}
	if err := o.validate(); err != nil {
		return err
	}
	return run(ctx, o, stdout, stderr)
}

func (o *options) validate() error {
	switch {
	case !slices.Contains(dataset.Formats(), o.format):
		return cli.Usagef("replay: --format %q: want one of %s", o.format, strings.Join(dataset.Formats(), ", "))
	case o.batch < 1 || o.batch > 100000:
		return cli.Usagef("replay: --batch %d: want 1..100000", o.batch)
	case o.window < 1 || o.window > 1024:
		return cli.Usagef("replay: --window %d: want 1..1024", o.window)
	case o.maxRetries < 0:
		return cli.Usagef("replay: --max-retries must not be negative")
	case o.wait && o.dryRun:
		return cli.Usagef("replay: --wait sends nothing with --dry-run: give one of them")
	case o.wait && (o.waitTimeout <= 0 || strings.TrimSpace(o.brokers) == ""):
		return cli.Usagef("replay: --wait needs --brokers and a positive --wait-timeout")
	case o.dryRun:
		return nil
	case o.collector == "":
		return cli.Usagef("replay: --collector HOST:PORT is required (or --dry-run), unless `greenwave dev` is running")
	case o.token != "" && o.tokenFile != "":
		return cli.Usagef("replay: give --token or --token-file, not both")
	case (o.tlsCert == "") != (o.tlsKey == ""):
		return cli.Usagef("replay: --tls-cert and --tls-key go together")
	}
	return nil
}

func run(ctx context.Context, o options, stdout, stderr io.Writer) error {
	pp := &printer{w: stderr, limit: printLimit}
	in, err := openInput(o, pp.problem)
	if err != nil {
		return err
	}
	defer in.Close()
	sum := newSummary(o)
	started := time.Now()
	if o.dryRun {
		err = dryRun(in, o, sum)
		if err == nil && o.format == dataset.FormatCSV {
			noteDerivedTopology(o.file, stderr)
		}
	} else {
		err = send(ctx, in, o, sum, stderr, pp)
		sum.DurationS = time.Since(started).Seconds()
		if err == nil && o.wait {
			sum.SendS = sum.DurationS
			err = waitForPipeline(ctx, o, stderr)
			if err == nil {
				sum.PipelineS = time.Since(started).Seconds()
			}
		}
	}
	pp.finish()
	if n := sum.Rejected["unknown_detector"]; n > 0 && o.format == dataset.FormatCSV {
		fmt.Fprintf(stderr, "greenwave replay: %d readings name detectors the collector's topology lacks: derive one from the file (greenwave topology import --format csv %s -o topology.yaml) and run the stack on it (greenwave dev --topology topology.yaml --sample=false)\n", n, o.file)
	}
	sum.fromReaders(in.readers)
	if sum.DurationS == 0 {
		sum.DurationS = time.Since(started).Seconds()
	}
	if sum.DurationS > 0 {
		sum.RatePerS = float64(sum.ReadingsAccepted+sum.WeatherAccepted+sum.ReadingsRejected+sum.WeatherRejected) / sum.DurationS
	}
	if err != nil {
		sum.Error = err.Error()
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		if encErr := enc.Encode(sum); encErr != nil && err == nil {
			err = fmt.Errorf("replay: write summary: %w", encErr)
		}
	} else {
		printSummary(stdout, sum)
	}
	return err
}

// dryRun reads every record, as a replay would, and counts it.
func dryRun(in *input, o options, sum *Summary) error {
	detectors, stations := map[string]bool{}, map[string]bool{}
	n := 0
	for {
		rec, err := in.src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		n++
		sum.observe(rec)
		if rec.Reading != nil {
			detectors[rec.Reading.DetectorID] = true
		} else {
			stations[rec.Weather.StationID] = true
		}
	}
	sum.Detectors, sum.Stations = len(detectors), len(stations)
	sum.BatchesSent = (n + o.batch - 1) / o.batch // would be sent
	return nil
}

// envOr returns the environment variable key, or def when it is unset or empty.
func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// noteDerivedTopology tells, for --dry-run of a canonical CSV, which topology the file implies: the collector
// rejects readings of detectors its topology lacks, and replay has no topology of its own to check against.
// It is a note: a file whose rows place a detector inconsistently is still replayable, so a failure is one too.
func noteDerivedTopology(file string, stderr io.Writer) {
	f, err := os.Open(file)
	if err != nil {
		return
	}
	defer f.Close()
	b := topology.NewReadingsBuilder(topology.ReadingsOptions{})
	if _, err := dataset.AddCSVDetectors(b, f, file, dataset.Options{}); err != nil {
		return
	}
	t, _, err := b.Topology(nil, "")
	if err != nil {
		fmt.Fprintf(stderr, "greenwave replay: note: no topology can be derived from %s: %v\n", file, err)
		return
	}
	fmt.Fprintf(stderr, "greenwave replay: no --topology: derived %d intersections from %s (greenwave topology import); the collector's topology must hold them\n",
		len(t.Intersections), file)
}
