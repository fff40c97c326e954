package ops

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/greenwave-city/greenwave/pkg/kafkaconn"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/topics"
	"github.com/greenwave-city/greenwave/pkg/wire"
	// The greenwave.v1 messages register themselves with protoregistry.GlobalTypes, where tail finds them by
	// the name in the topic spec or the greenwave-payload header.
	_ "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// protoPackage is the package of every Greenwave topic payload; tail decodes no other messages.
const protoPackage = "greenwave.v1"

// standardPrefix starts every Greenwave topic name after the deployment's --topic-prefix.
const standardPrefix = "greenwave."

const tailSynopsis = "TOPIC [flags]"

const tailDescription = `
Prints the records of a Greenwave topic as JSON lines, one object per record:

  {"topic":"greenwave.features","partition":0,"offset":41,"time":"2026-11-26T07:35:00.123Z","key":"I-100",
   "headers":{"greenwave-event-id":"…","greenwave-payload":"greenwave.v1.IntersectionFeatures",…},
   "payload":"greenwave.v1.IntersectionFeatures","value":{…}}

"value" is the payload in protojson with proto field names; its type is the record's greenwave-payload header
when that names a greenwave.v1 message, otherwise the topic's payload in pkg/topics. The internal state topics
(cleaner.state, signal-control.state, trainer.state) are private to their service: a record whose header names
its message (cleaner.state: greenwave.v1.CleanerSnapshot, the state inside it compressed; trainer.state:
greenwave.v1.ModelSnapshot) is decoded like any other, JSON is printed as is, with a "note". A value compressed
as a whole (header greenwave-content-encoding: deflate, as on models and trainer.state) is decompressed first.
A key that is not UTF-8 is printed as "key_base64"; a value that cannot be decoded as "value_base64" beside an
"error" (and counted on stderr at the end); a tombstone has "value":null.

TOPIC is a short name (readings.raw, weather.raw, features, readings.dlq, models, predictions, signal-plans,
detector-health, overrides, cleaner.state, signal-control.state, trainer.state), the standard name (greenwave.features) or the
full name including --topic-prefix.

tail reads the partitions directly: it never joins a consumer group and never commits offsets, so it cannot
disturb the services. Without --from-beginning it starts at the end of every partition (records written after
it started); it stops after --max records, at the end with --no-follow, or on Ctrl-C. Records of different
partitions are interleaved; within a partition they are in offset order.`

// Tail runs `greenwave tail`.
func Tail(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return tailCmd(ctx, args, stdout, stderr, os.LookupEnv, nil)
}

// tailOptions are the parsed flags of `greenwave tail`.
type tailOptions struct {
	spec          topics.Spec
	fromBeginning bool
	// key, when set, keeps only records with exactly this key.
	key       *string
	max       int
	partition int // -1: every partition
	follow    bool
	timeout   time.Duration
}

// tailCmd is Tail with the environment lookup, and positioned: called (if not nil) once the start offsets are
// fixed, so a test knows that a record it writes afterwards will be printed.
func tailCmd(ctx context.Context, args []string, stdout, stderr io.Writer, lookup lookupFunc, positioned func()) error {
	fs := newFlagSet("tail", tailSynopsis, tailDescription, stderr)
	kf := addKafkaFlags(fs, lookup)
	var o tailOptions
	fs.BoolVar(&o.fromBeginning, "from-beginning", false, "start at the first record still held instead of the end")
	fs.Func("key", "print only records with this key (an intersection id on most topics, a model id on models)", func(v string) error {
		o.key = &v
		return nil
	})
	fs.IntVar(&o.max, "max", 0, "stop after this many records (0: no limit)")
	fs.IntVar(&o.partition, "partition", -1, "read only this partition (-1: all)")
	noFollow := fs.Bool("no-follow", false, "stop at the end offsets as of the start instead of waiting for new records")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(fs, pos, "TOPIC"); err != nil {
		return err
	}
	conn, err := kf.conn("tail")
	if err != nil {
		return err
	}
	if o.max < 0 {
		return usagef("tail: --max must not be negative, got %d", o.max)
	}
	if o.partition < -1 {
		return usagef("tail: --partition must be a partition number or -1 for all, got %d", o.partition)
	}
	if o.spec, err = resolveTopic(pos[0], kf.prefix); err != nil {
		return err
	}
	o.follow, o.timeout = !*noFollow, kf.timeout
	defer conn.CloseIdleConnections()
	return tail(ctx, conn, o, stdout, stderr, positioned)
}

// resolveTopic maps a TOPIC argument to the spec of a Greenwave topic under prefix.
func resolveTopic(arg, prefix string) (topics.Spec, error) {
	specs := wire.Specs(topics.DefaultNames(prefix), defaultPartitions)
	shorts := make([]string, len(specs))
	for i, s := range specs {
		short := strings.TrimPrefix(s.Name, prefix+standardPrefix)
		shorts[i] = short
		if arg == s.Name || arg == short || arg == standardPrefix+short {
			return s, nil
		}
	}
	return topics.Spec{}, usagef("tail: unknown topic %q (with --topic-prefix %q): want one of %s, or a full topic name",
		arg, prefix, strings.Join(shorts, ", "))
}

// partitionStart is where tail reads one partition: from start, and (without following) up to end.
type partitionStart struct {
	partition  int
	start, end int64
}

func tail(ctx context.Context, conn kafkaconn.Conn, o tailOptions, stdout, stderr io.Writer, positioned func()) error {
	starts, err := startOffsets(ctx, conn, o)
	if err != nil {
		return err
	}
	if positioned != nil {
		positioned()
	}
	// stop ends the readers once --max is reached; Ctrl-C ends them through the parent ctx.
	readCtx, stop := context.WithCancel(ctx)
	defer stop()
	g, gctx := errgroup.WithContext(readCtx)
	msgs := make(chan kafka.Message, 64)
	for _, ps := range starts {
		if !o.follow && ps.start >= ps.end {
			continue
		}
		g.Go(func() error { return readPartition(gctx, conn, o.spec.Name, ps, o.follow, msgs) })
	}
	var readErr error
	go func() {
		readErr = g.Wait()
		close(msgs)
	}()
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	printed, undecodable := 0, 0
	var writeErr error
	for m := range msgs {
		if writeErr != nil || (o.max > 0 && printed >= o.max) {
			continue // drain until the readers have stopped
		}
		if o.key != nil && string(m.Key) != *o.key {
			continue
		}
		rec := decodeRecord(m, o.spec)
		if rec.Error != "" {
			undecodable++
		}
		if writeErr = enc.Encode(rec); writeErr != nil {
			stop()
			continue
		}
		if printed++; o.max > 0 && printed >= o.max {
			stop()
		}
	}
	if undecodable > 0 {
		fmt.Fprintf(stderr, "greenwave: tail: %d of %d records printed could not be decoded (see their \"error\" field)\n", undecodable, printed)
	}
	switch {
	case writeErr != nil:
		return fmt.Errorf("tail: write output: %w", writeErr)
	case readCtx.Err() != nil:
		return nil // --max reached or Ctrl-C: a normal end
	case readErr != nil:
		return fmt.Errorf("tail %s: %w", o.spec.Name, readErr)
	}
	return nil
}

// startOffsets fixes the first offset to read in every selected partition (and its current end).
func startOffsets(ctx context.Context, conn kafkaconn.Conn, o tailOptions) ([]partitionStart, error) {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	client := newKafkaClient(conn, o.timeout)
	defer closeClient(client)
	have, err := topics.Existing(ctx, client, []string{o.spec.Name})
	if err != nil {
		return nil, fmt.Errorf("tail %s: brokers %s: %w", o.spec.Name, strings.Join(conn.Brokers, ","), explain(conn, err))
	}
	n, ok := have[o.spec.Name]
	if !ok {
		return nil, fmt.Errorf("tail: topic %s does not exist (check --topic-prefix, or run `greenwave topics ensure`)", o.spec.Name)
	}
	parts := make([]int, 0, n)
	switch {
	case o.partition >= n:
		return nil, usagef("tail: --partition %d out of range: %s has %d partitions (0..%d)", o.partition, o.spec.Name, n, n-1)
	case o.partition >= 0:
		parts = append(parts, o.partition)
	default:
		for p := range n {
			parts = append(parts, p)
		}
	}
	req := make([]kafka.OffsetRequest, 0, 2*len(parts))
	for _, p := range parts {
		req = append(req, kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p))
	}
	offsets, err := stream.ListOffsets(ctx, client, map[string][]kafka.OffsetRequest{o.spec.Name: req})
	if err != nil {
		return nil, fmt.Errorf("tail %s: %w", o.spec.Name, err)
	}
	var out []partitionStart
	for _, po := range offsets[o.spec.Name] {
		ps := partitionStart{partition: po.Partition, start: po.LastOffset, end: po.LastOffset}
		if o.fromBeginning {
			ps.start = po.FirstOffset
		}
		out = append(out, ps)
	}
	if len(out) != len(parts) {
		return nil, fmt.Errorf("tail %s: list offsets answered for %d of %d partitions", o.spec.Name, len(out), len(parts))
	}
	return out, nil
}

// readPartition sends the records of one partition from ps.start to msgs until ctx ends or, when not following,
// the partition's end as of the start has been read. It reads without a consumer group: nothing is committed.
func readPartition(ctx context.Context, conn kafkaconn.Conn, topic string, ps partitionStart, follow bool, msgs chan<- kafka.Message) error {
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: conn.Brokers, Dialer: conn.Dialer(), Topic: topic, Partition: ps.partition,
		MinBytes: 1, MaxBytes: 8 << 20,
		// kafka-go's default MaxWait of 10 s would hold back a live record that long.
		MaxWait: 250 * time.Millisecond,
	})
	defer r.Close()
	if err := r.SetOffset(ps.start); err != nil {
		return fmt.Errorf("seek partition %d to %d: %w", ps.partition, ps.start, err)
	}
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("read partition %d: %w", ps.partition, err)
		}
		select {
		case msgs <- m:
		case <-ctx.Done():
			return nil
		}
		if !follow && m.Offset >= ps.end-1 {
			return nil
		}
	}
}

// tailRecord is one record as tail prints it.
type tailRecord struct {
	Topic     string            `json:"topic"`
	Partition int               `json:"partition"`
	Offset    int64             `json:"offset"`
	Time      string            `json:"time,omitempty"`
	Key       *string           `json:"key"`
	KeyBase64 string            `json:"key_base64,omitempty"`
	Headers   map[string]string `json:"headers,omitempty"`
	// Payload is the message type Value was decoded as; empty for internal state and undecodable values.
	Payload     string          `json:"payload,omitempty"`
	Value       json.RawMessage `json:"value"`
	ValueBase64 string          `json:"value_base64,omitempty"`
	Note        string          `json:"note,omitempty"`
	Error       string          `json:"error,omitempty"`
}

// payloadJSON renders payloads with the proto field names, like the rest of the CLI's JSON.
var payloadJSON = protojson.MarshalOptions{UseProtoNames: true}

// decodeRecord renders m, a record of the topic of spec. It never fails: what cannot be decoded is printed
// in base64 with the reason in Error, so one bad record neither stops tail nor hides its neighbours.
func decodeRecord(m kafka.Message, spec topics.Spec) tailRecord {
	rec := tailRecord{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset}
	if !m.Time.IsZero() {
		rec.Time = m.Time.UTC().Format(time.RFC3339Nano)
	}
	switch {
	case m.Key == nil:
	case utf8.Valid(m.Key):
		k := string(m.Key)
		rec.Key = &k
	default:
		rec.KeyBase64 = base64.StdEncoding.EncodeToString(m.Key)
	}
	if len(m.Headers) > 0 {
		rec.Headers = make(map[string]string, len(m.Headers))
		for _, h := range m.Headers {
			v := string(h.Value)
			if !utf8.Valid(h.Value) {
				v = "base64:" + base64.StdEncoding.EncodeToString(h.Value)
			}
			rec.Headers[h.Key] = v
		}
	}
	if m.Value == nil {
		rec.Value = json.RawMessage("null")
		rec.Note = "tombstone: deletes the key from a compacted topic"
		return rec
	}
	value, verr := stream.Value(m, maxTailValue)
	if verr != nil {
		rec.Error = verr.Error()
		rec.Value = json.RawMessage("null")
		rec.ValueBase64 = base64.StdEncoding.EncodeToString(m.Value)
		return rec
	}
	mt, err := payloadType(m, spec)
	switch {
	case err != nil:
		rec.Error = err.Error()
	case mt == nil:
		// An internal state topic: JSON private to its service.
		rec.Note = "internal state of its service; the format is private and may change between versions"
		if json.Valid(value) {
			rec.Value = json.RawMessage(value)
			return rec
		}
	default:
		msg := mt.New().Interface()
		if err := proto.Unmarshal(value, msg); err != nil {
			rec.Error = fmt.Sprintf("decode %s: %v", mt.Descriptor().FullName(), err)
			break
		}
		b, err := payloadJSON.Marshal(msg)
		if err != nil {
			rec.Error = fmt.Sprintf("encode %s as JSON: %v", mt.Descriptor().FullName(), err)
			break
		}
		rec.Payload, rec.Value = string(mt.Descriptor().FullName()), b
		return rec
	}
	rec.Value = json.RawMessage("null")
	rec.ValueBase64 = base64.StdEncoding.EncodeToString(m.Value)
	return rec
}

// maxTailValue bounds a decompressed value tail prints (a model snapshot is about 100 KB).
const maxTailValue = 64 << 20

// payloadType finds the message type of m: its greenwave-payload header when that names a greenwave.v1
// message, otherwise the spec's payload. It returns nil for internal state topics, whose payload is no message.
func payloadType(m kafka.Message, spec topics.Spec) (protoreflect.MessageType, error) {
	if h := stream.Header(m, stream.HeaderPayload); h != nil {
		if mt, ok := greenwaveType(string(h)); ok {
			return mt, nil
		}
	}
	if !isProtoPayload(spec.Payload) {
		return nil, nil
	}
	mt, ok := greenwaveType(spec.Payload)
	if !ok {
		return nil, fmt.Errorf("payload type %s of %s is not compiled into this greenwave", spec.Payload, spec.Name)
	}
	return mt, nil
}

func isProtoPayload(name string) bool { return strings.HasPrefix(name, protoPackage+".") }

func greenwaveType(name string) (protoreflect.MessageType, bool) {
	if !isProtoPayload(name) || !protoreflect.FullName(name).IsValid() {
		return nil, false
	}
	mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(name))
	return mt, err == nil
}
