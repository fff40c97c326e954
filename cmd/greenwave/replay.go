package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/term"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/cli"
	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/devstate"
	"github.com/greenwave-city/greenwave/pkg/dataset"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

const replaySynopsis = "[--format csv|metro|scats] [--weather FILE] --collector HOST:PORT [flags] FILE"

const replayDescription = `
Reads a data file with pkg/dataset and sends its readings (and weather) to a collector over one long-lived
CollectorService.StreamReadings stream, paced on event time.

Formats: csv (the canonical readings CSV; --weather adds a canonical weather CSV, merged by time), metro (UCI
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

// replayOptions are the flags of `greenwave replay`.
type replayOptions struct {
	file, format, weather string
	collector             string
	token, tokenFile      string
	tlsCA, tlsCert        string
	tlsKey                string
	speed                 cli.Speed
	batch, window         int
	maxRetries            int
	json, dryRun          bool
	// wait: after the last ack, wait until the pipeline has processed everything (replay_wait.go).
	wait        bool
	waitTimeout time.Duration
	brokers     string
	topicPrefix string
}

func runReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o := replayOptions{speed: 0}
	fs := cli.NewFlagSet("replay", replaySynopsis, replayDescription, stderr)
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
		return usagef("replay: FILE is required (see greenwave replay --help)")
	case len(files) > 1:
		return usagef("replay: one FILE expected, got %q (see greenwave replay --help)", files)
	}
	file := files[0]
	o.file = file
	if o.collector == "" && !o.dryRun {
		o.collector = devstate.Load(os.LookupEnv).GRPC("collector", "")
	}
	if err := o.validate(); err != nil {
		return err
	}
	return replay(ctx, o, stdout, stderr)
}

func (o *replayOptions) validate() error {
	switch {
	case !slices.Contains(dataset.Formats(), o.format):
		return usagef("replay: --format %q: want one of %s", o.format, strings.Join(dataset.Formats(), ", "))
	case o.batch < 1 || o.batch > 100000:
		return usagef("replay: --batch %d: want 1..100000", o.batch)
	case o.window < 1 || o.window > 1024:
		return usagef("replay: --window %d: want 1..1024", o.window)
	case o.maxRetries < 0:
		return usagef("replay: --max-retries must not be negative")
	case o.wait && o.dryRun:
		return usagef("replay: --wait sends nothing with --dry-run: give one of them")
	case o.wait && (o.waitTimeout <= 0 || strings.TrimSpace(o.brokers) == ""):
		return usagef("replay: --wait needs --brokers and a positive --wait-timeout")
	case o.dryRun:
		return nil
	case o.collector == "":
		return usagef("replay: --collector HOST:PORT is required (or --dry-run), unless `greenwave dev` is running")
	case o.token != "" && o.tokenFile != "":
		return usagef("replay: give --token or --token-file, not both")
	case (o.tlsCert == "") != (o.tlsKey == ""):
		return usagef("replay: --tls-cert and --tls-key go together")
	}
	return nil
}

// replayInput is the opened file(s): the merged source and the readers for their stats and problems.
type replayInput struct {
	src     dataset.Source
	readers []*dataset.Reader
	files   []*os.File
	read    atomic.Int64 // bytes read, for the progress bar
	size    int64
}

func (in *replayInput) Close() {
	for _, f := range in.files {
		_ = f.Close()
	}
}

// replayByteCounter counts the bytes read through it.
type replayByteCounter struct {
	r io.Reader
	n *atomic.Int64
}

func (c replayByteCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func openReplayInput(o replayOptions, onProblem func(dataset.Problem)) (*replayInput, error) {
	in := &replayInput{}
	open := func(path string) (io.Reader, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("replay: %w", err)
		}
		in.files = append(in.files, f)
		if st, err := f.Stat(); err == nil {
			in.size += st.Size()
		}
		return replayByteCounter{r: f, n: &in.read}, nil
	}
	opts := dataset.Options{OnProblem: onProblem}
	r, err := open(o.file)
	if err != nil {
		return nil, err
	}
	main, err := dataset.Open(o.format, r, o.file, opts)
	if err != nil {
		in.Close()
		return nil, fmt.Errorf("replay: %w", err)
	}
	in.readers = append(in.readers, main)
	in.src = main
	if o.weather != "" {
		wr, err := open(o.weather)
		if err != nil {
			in.Close()
			return nil, err
		}
		w, err := dataset.OpenWeather(wr, o.weather, opts)
		if err != nil {
			in.Close()
			return nil, fmt.Errorf("replay: %w", err)
		}
		in.readers = append(in.readers, w)
		in.src = dataset.Merge(main, w)
	}
	return in, nil
}

// replaySummary is what a replay did. Its JSON form is the --json output.
type replaySummary struct {
	Files          []string       `json:"files"`
	Format         string         `json:"format"`
	DryRun         bool           `json:"dry_run"`
	Rows           int            `json:"rows"`
	ReadingsRead   int            `json:"readings_read"`
	WeatherRead    int            `json:"weather_read"`
	Problems       map[string]int `json:"problems"`
	SkippedRecords int            `json:"skipped_records"`
	EventStart     *time.Time     `json:"event_start,omitempty"`
	EventEnd       *time.Time     `json:"event_end,omitempty"`
	// Detectors and Stations are counted by --dry-run only.
	Detectors int `json:"detectors,omitempty"`
	Stations  int `json:"stations,omitempty"`

	BatchesSent      int            `json:"batches_sent"`
	BatchesAcked     int            `json:"batches_acked"`
	ReadingsSent     int            `json:"readings_sent"`
	WeatherSent      int            `json:"weather_sent"`
	ReadingsAccepted int            `json:"readings_accepted"`
	WeatherAccepted  int            `json:"weather_accepted"`
	ReadingsRejected int            `json:"readings_rejected"`
	WeatherRejected  int            `json:"weather_rejected"`
	Rejected         map[string]int `json:"rejected"`
	// Unaccounted are records sent but neither accepted nor rejected (their batch was never acknowledged).
	Unaccounted    int     `json:"unaccounted"`
	RetriedBatches int     `json:"retried_batches"`
	Reconnects     int     `json:"reconnects"`
	DurationS      float64 `json:"duration_s"`
	// RatePerS is acknowledged records (accepted plus rejected) per second of wall-clock time.
	RatePerS float64 `json:"rate_per_s"`
	// SendS and PipelineS are set by --wait: seconds from the start to the last ack, and to the pipeline having
	// processed everything down to the plans (the end-to-end time).
	SendS     float64 `json:"send_s,omitempty"`
	PipelineS float64 `json:"pipeline_s,omitempty"`
	Error     string  `json:"error,omitempty"`
}

func newReplaySummary(o replayOptions) *replaySummary {
	s := &replaySummary{Files: []string{o.file}, Format: o.format, DryRun: o.dryRun, Problems: map[string]int{}, Rejected: map[string]int{}}
	if o.weather != "" {
		s.Files = append(s.Files, o.weather)
	}
	return s
}

// fromReaders copies the readers' statistics.
func (s *replaySummary) fromReaders(readers []*dataset.Reader) {
	s.Rows, s.ReadingsRead, s.WeatherRead, s.SkippedRecords = 0, 0, 0, 0
	s.Problems = map[string]int{}
	for _, r := range readers {
		st := r.Stats()
		s.Rows += st.Rows
		s.ReadingsRead += st.Readings
		s.WeatherRead += st.Weather
		s.SkippedRecords += st.SkippedRecords
		for k, v := range st.Problems {
			s.Problems[string(k)] += v
		}
	}
}

// replayPrinter prints the first problems and rejections to stderr and counts the rest.
type replayPrinter struct {
	w        io.Writer
	limit    int
	problems int
	rejects  int
}

const replayPrintLimit = 10

func (p *replayPrinter) problem(pr dataset.Problem) {
	p.problems++
	if p.problems <= p.limit {
		fmt.Fprintf(p.w, "greenwave replay: skipped %s\n", pr)
	}
}

func (p *replayPrinter) reject(batchID string, rj *greenwavev1.RejectedReading) {
	p.rejects++
	if p.rejects <= p.limit {
		id := ""
		if rj.GetReadingId() != "" {
			id = " " + rj.GetReadingId()
		}
		fmt.Fprintf(p.w, "greenwave replay: rejected %s%s (batch %s): %s: %s\n", rj.GetField(), id, batchID,
			replayReason(rj.GetReason()), rj.GetDescription())
	}
}

func (p *replayPrinter) finish() {
	if n := p.problems - p.limit; n > 0 {
		fmt.Fprintf(p.w, "greenwave replay: … and %d more skipped rows or values (counted by reason in the summary)\n", n)
	}
	if n := p.rejects - p.limit; n > 0 {
		fmt.Fprintf(p.w, "greenwave replay: … and %d more rejected readings (counted by reason in the summary)\n", n)
	}
}

// replayReason turns REJECT_REASON_UNKNOWN_DETECTOR into unknown_detector.
func replayReason(r greenwavev1.RejectReason) string {
	return strings.ToLower(strings.TrimPrefix(r.String(), "REJECT_REASON_"))
}

func replay(ctx context.Context, o replayOptions, stdout, stderr io.Writer) error {
	pp := &replayPrinter{w: stderr, limit: replayPrintLimit}
	in, err := openReplayInput(o, pp.problem)
	if err != nil {
		return err
	}
	defer in.Close()
	sum := newReplaySummary(o)
	started := time.Now()
	if o.dryRun {
		err = replayDryRun(in, o, sum)
	} else {
		err = replaySend(ctx, in, o, sum, stderr, pp)
		sum.DurationS = time.Since(started).Seconds()
		if err == nil && o.wait {
			sum.SendS = sum.DurationS
			err = replayWait(ctx, o, stderr)
			if err == nil {
				sum.PipelineS = time.Since(started).Seconds()
			}
		}
	}
	pp.finish()
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
		printReplaySummary(stdout, sum)
	}
	return err
}

// replayDryRun reads every record, as a replay would, and counts it.
func replayDryRun(in *replayInput, o replayOptions, sum *replaySummary) error {
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

// observe widens the event-time range.
func (s *replaySummary) observe(rec dataset.Record) {
	t := rec.Time()
	if s.EventStart == nil || t.Before(*s.EventStart) {
		s.EventStart = &t
	}
	if s.EventEnd == nil || t.After(*s.EventEnd) {
		s.EventEnd = &t
	}
}

func printReplaySummary(w io.Writer, s *replaySummary) {
	fmt.Fprintf(w, "%s (%s): %d rows, %d readings and %d weather observations read", strings.Join(s.Files, " + "), s.Format,
		s.Rows, s.ReadingsRead, s.WeatherRead)
	if s.EventStart != nil {
		fmt.Fprintf(w, ", event time %s … %s", s.EventStart.Format(time.RFC3339), s.EventEnd.Format(time.RFC3339))
	}
	fmt.Fprintln(w)
	if len(s.Problems) > 0 {
		fmt.Fprintf(w, "  skipped: %d records (%s)\n", s.SkippedRecords, replayCounts(s.Problems))
	}
	if s.DryRun {
		fmt.Fprintf(w, "  would send %d readings of %d detectors and %d weather observations of %d stations in %d batches\n",
			s.ReadingsRead, s.Detectors, s.WeatherRead, s.Stations, s.BatchesSent)
		return
	}
	fmt.Fprintf(w, "  sent:     %d readings, %d weather in %d batches (%d acknowledged; %d batches resent over %d reconnects)\n",
		s.ReadingsSent, s.WeatherSent, s.BatchesSent, s.BatchesAcked, s.RetriedBatches, s.Reconnects)
	fmt.Fprintf(w, "  accepted: %d readings, %d weather\n", s.ReadingsAccepted, s.WeatherAccepted)
	fmt.Fprintf(w, "  rejected: %d readings, %d weather", s.ReadingsRejected, s.WeatherRejected)
	if len(s.Rejected) > 0 {
		fmt.Fprintf(w, " (%s)", replayCounts(s.Rejected))
	}
	fmt.Fprintln(w)
	if s.Unaccounted > 0 {
		fmt.Fprintf(w, "  UNACCOUNTED: %d records sent without an ack\n", s.Unaccounted)
	}
	fmt.Fprintf(w, "  took %.1fs, %.0f records/s acknowledged\n", s.DurationS, s.RatePerS)
	if s.PipelineS > 0 {
		fmt.Fprintf(w, "  processed down to the plans %.1fs after the start (sent and acked in %.1fs, pipeline drained %.1fs later)\n",
			s.PipelineS, s.SendS, s.PipelineS-s.SendS)
	}
}

func replayCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] || (m[keys[i]] == m[keys[j]] && keys[i] < keys[j]) })
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// replaySend dials the collector and runs the replayer.
func replaySend(ctx context.Context, in *replayInput, o replayOptions, sum *replaySummary, stderr io.Writer, pp *replayPrinter) error {
	creds, err := replayCredentials(o)
	if err != nil {
		return err
	}
	token := o.token
	if o.tokenFile != "" {
		b, err := os.ReadFile(o.tokenFile)
		if err != nil {
			return fmt.Errorf("replay: read token: %w", err)
		}
		if token = strings.TrimSpace(string(b)); token == "" {
			return fmt.Errorf("replay: token file %s is empty", o.tokenFile)
		}
	}
	cc, err := grpc.NewClient(o.collector, grpc.WithTransportCredentials(creds))
	if err != nil {
		return fmt.Errorf("replay: dial %s: %w", o.collector, err)
	}
	defer cc.Close()
	rp := &replayer{
		client: greenwavev1.NewCollectorServiceClient(cc), src: in.src, token: token, sum: sum, printer: pp,
		batch: o.batch, window: o.window, speed: float64(o.speed), maxRetries: o.maxRetries,
		backoffMin: 200 * time.Millisecond, backoffMax: 10 * time.Second, drain: 5 * time.Second,
		progress: newReplayProgress(stderr, in),
	}
	return rp.run(ctx)
}

func replayCredentials(o replayOptions) (credentials.TransportCredentials, error) {
	if o.tlsCA == "" && o.tlsCert == "" {
		return insecure.NewCredentials(), nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.tlsCA != "" {
		pem, err := os.ReadFile(o.tlsCA)
		if err != nil {
			return nil, fmt.Errorf("replay: read --tls-ca: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("replay: --tls-ca %s holds no PEM certificate", o.tlsCA)
		}
	}
	if o.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
		if err != nil {
			return nil, fmt.Errorf("replay: load client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return credentials.NewTLS(cfg), nil
}

// replayer sends a source's records over one StreamReadings stream at a time, reconnecting on transient
// failures. It is used by one goroutine; its stream's acks are read by a second.
type replayer struct {
	client  greenwavev1.CollectorServiceClient
	src     dataset.Source
	token   string
	sum     *replaySummary
	printer *replayPrinter

	batch, window int
	speed         float64 // event seconds per wall second; 0 for as fast as acks allow
	maxRetries    int
	// backoffMin doubles per failure in a row up to backoffMax (with ±20 % jitter so many replays do not
	// reconnect in step); a RetryInfo delay from the collector replaces it.
	backoffMin, backoffMax time.Duration
	// drain bounds the wait for outstanding acks after ctx ends.
	drain    time.Duration
	progress func(s *replaySummary, final bool)

	seq        int
	unacked    []*replayBatch // sent, not acknowledged, in send order
	pending    *dataset.Record
	srcDone    bool
	wallStart  time.Time
	eventStart time.Time
}

// replayBatch is a batch sent at least once.
type replayBatch struct {
	msg               *greenwavev1.ReadingBatch
	readings, weather int
}

// replayStream is one open stream and its ack reader.
type replayStream struct {
	stream greenwavev1.CollectorService_StreamReadingsClient
	cancel context.CancelFunc
	acks   chan *greenwavev1.BatchAck
	done   chan error // the receive loop's end: nil for a clean end of stream
}

func (r *replayer) open(ctx context.Context) (*replayStream, error) {
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	if r.token != "" {
		sctx = metadata.AppendToOutgoingContext(sctx, "authorization", "Bearer "+r.token)
	}
	stream, err := r.client.StreamReadings(sctx)
	if err != nil {
		cancel()
		return nil, err
	}
	// acks holds every ack the window allows, so the receive loop never blocks while the sender waits in Send.
	c := &replayStream{stream: stream, cancel: cancel, acks: make(chan *greenwavev1.BatchAck, r.window+1), done: make(chan error, 1)}
	go func() {
		for {
			resp, err := stream.Recv()
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				c.done <- err
				return
			}
			c.acks <- resp.GetAck()
		}
	}()
	return c, nil
}

// run replays the whole source. It returns nil when every batch sent was acknowledged.
func (r *replayer) run(ctx context.Context) error {
	defer func() {
		for _, b := range r.unacked {
			r.sum.Unaccounted += b.readings + b.weather
		}
		r.progress(r.sum, true)
	}()
	failures := 0
	for {
		c, err := r.open(ctx)
		if err == nil {
			err = r.serve(ctx, c, &failures)
			r.close(c)
		}
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("replay: interrupted: %w", err)
		}
		delay, transient := r.retryable(err)
		if !transient {
			return fmt.Errorf("replay: %w", err)
		}
		failures++
		if failures > r.maxRetries {
			return fmt.Errorf("replay: giving up after %d failures in a row without an ack: %w", failures, err)
		}
		if delay == 0 {
			delay = r.backoff(failures)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("replay: interrupted while waiting to reconnect after: %w", err)
		case <-t.C:
		}
		r.sum.Reconnects++
	}
}

// close ends a stream and waits for its receive loop, accounting for acks it still delivers: they are real.
func (r *replayer) close(c *replayStream) {
	c.cancel()
	for {
		select {
		case ack := <-c.acks:
			_ = r.acked(ack)
		case <-c.done:
			for {
				select {
				case ack := <-c.acks:
					_ = r.acked(ack)
				default:
					return
				}
			}
		}
	}
}

// ended handles the end of the receive loop: the acks it delivered before ending are accounted first (select
// does not prefer them), then the stream's error is returned.
func (r *replayer) ended(c *replayStream, err error) error {
	c.done <- err // for close
	for {
		select {
		case ack := <-c.acks:
			if aerr := r.acked(ack); aerr != nil {
				return aerr
			}
		default:
			if err == nil {
				if len(r.unacked) == 0 && r.srcDone && r.pending == nil {
					return nil
				}
				return errReplayStreamEnded
			}
			return err
		}
	}
}

// retryable classifies a stream failure: transient ones are retried after the returned delay (the collector's
// RetryInfo, or 0 for the caller's backoff).
func (r *replayer) retryable(err error) (time.Duration, bool) {
	if errors.Is(err, errReplayStreamEnded) {
		return 0, true
	}
	st, ok := status.FromError(err)
	if !ok {
		return 0, false
	}
	switch st.Code() {
	case codes.Unavailable, codes.ResourceExhausted, codes.Aborted, codes.Internal, codes.DeadlineExceeded:
	default:
		return 0, false
	}
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
			return ri.GetRetryDelay().AsDuration(), true
		}
	}
	return 0, true
}

func (r *replayer) backoff(failures int) time.Duration {
	d := float64(r.backoffMin) * math.Pow(2, float64(failures-1))
	d = math.Min(d, float64(r.backoffMax))
	return time.Duration(d * (0.8 + 0.4*rand.Float64()))
}

// errReplayStreamEnded is a stream the collector closed cleanly while batches still awaited their ack.
var errReplayStreamEnded = errors.New("the collector ended the stream with batches unacknowledged")

// serve sends on one stream until the source is exhausted and every batch acknowledged (nil), or the stream
// fails (its error). It first resends every unacknowledged batch, in order.
func (r *replayer) serve(ctx context.Context, c *replayStream, failures *int) error {
	// Send reports io.EOF when the stream broke; the receive loop has the status. Acks keep arriving until then.
	sendFailed := func() error {
		for {
			select {
			case ack := <-c.acks:
				if err := r.acked(ack); err != nil {
					return err
				}
			case err := <-c.done:
				return r.ended(c, err)
			}
		}
	}
	for _, b := range r.unacked {
		if err := c.stream.Send(&greenwavev1.StreamReadingsRequest{Batch: b.msg}); err != nil {
			return sendFailed()
		}
		r.sum.RetriedBatches++
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		// Send while the window has room and a record is due.
		var wait time.Duration
		for len(r.unacked) < r.window {
			b, due, err := r.nextBatch()
			if err != nil {
				return err
			}
			if b == nil {
				wait = due
				break
			}
			r.unacked = append(r.unacked, b)
			r.count(b)
			if err := c.stream.Send(&greenwavev1.StreamReadingsRequest{Batch: b.msg}); err != nil {
				return sendFailed()
			}
		}
		if r.srcDone && r.pending == nil && len(r.unacked) == 0 {
			_ = c.stream.CloseSend()
			return nil
		}
		var timerC <-chan time.Time
		if wait > 0 {
			timer.Reset(wait)
			timerC = timer.C
		}
		select {
		case <-ctx.Done():
			// Stop sending; give the batches in flight a bounded time to be acknowledged.
			_ = c.stream.CloseSend()
			return r.drainAcks(c)
		case ack := <-c.acks:
			if err := r.acked(ack); err != nil {
				return err
			}
			*failures = 0
		case err := <-c.done:
			return r.ended(c, err)
		case <-timerC:
		}
		if wait > 0 && !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// drainAcks waits up to r.drain for the acks of the batches in flight after an interrupt.
func (r *replayer) drainAcks(c *replayStream) error {
	deadline := time.NewTimer(r.drain)
	defer deadline.Stop()
	for len(r.unacked) > 0 {
		select {
		case ack := <-c.acks:
			if err := r.acked(ack); err != nil {
				return err
			}
		case err := <-c.done:
			if err = r.ended(c, err); len(r.unacked) > 0 {
				return fmt.Errorf("%d batches unacknowledged when the stream ended: %v", len(r.unacked), err)
			}
		case <-deadline.C:
			return fmt.Errorf("%d batches unacknowledged after waiting %s", len(r.unacked), r.drain)
		}
	}
	return errors.New("stopped before the end of the file")
}

func (r *replayer) count(b *replayBatch) {
	r.sum.BatchesSent++
	r.sum.ReadingsSent += b.readings
	r.sum.WeatherSent += b.weather
}

// acked accounts for an ack. The collector acks in order; an ack for a batch not in flight is a protocol
// violation and ends the replay (its accounting could not be trusted).
func (r *replayer) acked(ack *greenwavev1.BatchAck) error {
	i := 0
	for i < len(r.unacked) && r.unacked[i].msg.GetBatchId() != ack.GetBatchId() {
		i++
	}
	if i == len(r.unacked) {
		return fmt.Errorf("%w: the collector acknowledged batch %q, which is not in flight", errReplayProtocol, ack.GetBatchId())
	}
	b := r.unacked[i]
	r.unacked = append(r.unacked[:i], r.unacked[i+1:]...)
	s := r.sum
	s.BatchesAcked++
	s.ReadingsAccepted += int(ack.GetAcceptedReadings())
	s.WeatherAccepted += int(ack.GetAcceptedWeather())
	rejR, rejW := 0, 0
	for _, rj := range ack.GetRejected() {
		if rj.GetKind() == greenwavev1.ReadingKind_READING_KIND_WEATHER {
			rejW++
		} else {
			rejR++
		}
		s.Rejected[replayReason(rj.GetReason())]++
		r.printer.reject(ack.GetBatchId(), rj)
	}
	s.ReadingsRejected += rejR
	s.WeatherRejected += rejW
	// An ack whose counts do not cover its batch leaves the difference unaccounted, so it shows.
	if miss := b.readings - int(ack.GetAcceptedReadings()) - rejR; miss > 0 {
		s.Unaccounted += miss
	}
	if miss := b.weather - int(ack.GetAcceptedWeather()) - rejW; miss > 0 {
		s.Unaccounted += miss
	}
	r.progress(s, false)
	return nil
}

var errReplayProtocol = errors.New("protocol violation")

// nextBatch returns the next batch to send, or nil and how long to wait before a record is due (0 when the
// source is exhausted). A batch is cut when full, at the end of the source, or before a record that is not due
// yet, so paced replays never hold back due records.
func (r *replayer) nextBatch() (*replayBatch, time.Duration, error) {
	var b *replayBatch
	for b == nil || b.readings+b.weather < r.batch {
		if r.pending == nil && !r.srcDone {
			rec, err := r.src.Next()
			switch {
			case errors.Is(err, io.EOF):
				r.srcDone = true
			case err != nil:
				return nil, 0, err
			default:
				r.pending = &rec
				r.sum.observe(rec)
			}
		}
		if r.pending == nil {
			break
		}
		if wait := r.due(r.pending.Time()); wait > 0 {
			if b != nil {
				break
			}
			return nil, wait, nil
		}
		if b == nil {
			r.seq++
			b = &replayBatch{msg: &greenwavev1.ReadingBatch{BatchId: fmt.Sprintf("replay-%d", r.seq)}}
		}
		if rd := r.pending.Reading; rd != nil {
			b.msg.Readings = append(b.msg.Readings, wire.ReadingProto(*rd))
			b.readings++
		} else {
			b.msg.Weather = append(b.msg.Weather, wire.WeatherProto(*r.pending.Weather))
			b.weather++
		}
		r.pending = nil
	}
	return b, 0, nil
}

// due returns how long until event time t may be sent: (t − first event time) / speed after the first send.
func (r *replayer) due(t time.Time) time.Duration {
	if r.speed == 0 {
		return 0
	}
	now := time.Now()
	if r.wallStart.IsZero() {
		r.wallStart, r.eventStart = now, t
	}
	return time.Until(r.wallStart.Add(time.Duration(float64(t.Sub(r.eventStart)) / r.speed)))
}

// newReplayProgress returns the progress reporter: a bar redrawn in place on a terminal, otherwise a line every 10 s.
func newReplayProgress(w io.Writer, in *replayInput) func(*replaySummary, bool) {
	tty := false
	if f, ok := w.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	every := 10 * time.Second
	if tty {
		every = 200 * time.Millisecond
	}
	start := time.Now()
	last := start
	return func(s *replaySummary, final bool) {
		now := time.Now()
		if !final && now.Sub(last) < every {
			return
		}
		last = now
		acked := s.ReadingsAccepted + s.WeatherAccepted + s.ReadingsRejected + s.WeatherRejected
		rate := float64(acked) / math.Max(now.Sub(start).Seconds(), 1e-3)
		frac := 0.0
		if in.size > 0 {
			frac = math.Min(1, float64(in.read.Load())/float64(in.size))
		}
		at := ""
		if s.EventEnd != nil {
			at = " event " + s.EventEnd.UTC().Format("2006-01-02T15:04Z")
		}
		if !tty {
			if !final {
				fmt.Fprintf(w, "greenwave replay: %3.0f%% %d acknowledged (%d rejected), %.0f/s%s\n", 100*frac, acked,
					s.ReadingsRejected+s.WeatherRejected, rate, at)
			}
			return
		}
		const width = 30
		n := int(frac * width)
		fmt.Fprintf(w, "\r[%s%s] %3.0f%% %d acked, %.0f/s%s ", strings.Repeat("=", n), strings.Repeat(" ", width-n), 100*frac, acked, rate, at)
		if final {
			fmt.Fprintln(w)
		}
	}
}
