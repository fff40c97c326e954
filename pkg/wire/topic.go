package wire

import (
	"fmt"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/topics"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// SchemaVersion is the version of every message Greenwave writes to a topic (model snapshots carry pkg/train's
// own versions).
const SchemaVersion = 1

// Message is a topic payload: a protobuf message with a schema_version field.
type Message interface {
	proto.Message
	GetSchemaVersion() uint32
}

// Topic declares one topic's contract: its name in topics.Names, the protobuf message it carries (whose full
// name is the greenwave-payload header), how a record is keyed and identified, and how its value is encoded.
// Producers build records with Encode and consumers read them with Decode, so no service repeats the decoding,
// the schema-version check or the headers. A Topic is immutable and safe for concurrent use.
type Topic[M Message] struct {
	name    func(topics.Names) string
	newMsg  func() M
	payload string
	// noun names the payload in decode errors ("decode reading: …").
	noun    string
	key     func(M) string
	eventID func(M) string
	// ownVersions topics carry a schema version of their own (model snapshots: pkg/train checks it), so
	// Decode does not check it against SchemaVersion and Encode does not stamp it.
	ownVersions bool
	// deflate compresses values (EncodingDeflate), whose decompressed size Decode bounds to limit.
	deflate bool
	limit   int
	// deterministic marshals with deterministic map order (model snapshots are compared byte for byte).
	deterministic bool
}

// declare returns the Topic of a message type; the payload name is the message's full protobuf name.
func declare[M Message](newMsg func() M, name func(topics.Names) string, noun string, key, eventID func(M) string) Topic[M] {
	return Topic[M]{name: name, newMsg: newMsg, payload: string(newMsg().ProtoReflect().Descriptor().FullName()),
		noun: noun, key: key, eventID: eventID}
}

// The topics whose payloads are protobuf messages.
var (
	// TopicReadings carries validated traffic readings, keyed by intersection id (the collector adds the partition
	// key of the intersection's feature group).
	TopicReadings = declare(func() *greenwavev1.TrafficReading { return &greenwavev1.TrafficReading{} },
		func(n topics.Names) string { return n.Readings }, "reading",
		(*greenwavev1.TrafficReading).GetIntersectionId, (*greenwavev1.TrafficReading).GetReadingId)
	// TopicWeather carries weather observations, keyed by station id.
	TopicWeather = declare(func() *greenwavev1.WeatherReading { return &greenwavev1.WeatherReading{} },
		func(n topics.Names) string { return n.Weather }, "weather",
		(*greenwavev1.WeatherReading).GetStationId, (*greenwavev1.WeatherReading).GetReadingId)
	// TopicFeatures carries the cleaner's closed windows, keyed by intersection id.
	TopicFeatures = declare(func() *greenwavev1.IntersectionFeatures { return &greenwavev1.IntersectionFeatures{} },
		func(n topics.Names) string { return n.Features }, "features",
		(*greenwavev1.IntersectionFeatures).GetIntersectionId, (*greenwavev1.IntersectionFeatures).GetEventId)
	// TopicPredictions carries the predictor's forecasts, keyed by intersection id.
	TopicPredictions = declare(func() *greenwavev1.IntersectionPrediction { return &greenwavev1.IntersectionPrediction{} },
		func(n topics.Names) string { return n.Predictions }, "prediction",
		(*greenwavev1.IntersectionPrediction).GetIntersectionId, (*greenwavev1.IntersectionPrediction).GetEventId)
	// TopicPlans carries the signal plans, keyed by intersection id.
	TopicPlans = declare(func() *greenwavev1.SignalPlan { return &greenwavev1.SignalPlan{} },
		func(n topics.Names) string { return n.Plans }, "plan",
		(*greenwavev1.SignalPlan).GetIntersectionId, (*greenwavev1.SignalPlan).GetPlanId)
	// TopicDetectorHealth carries the cleaner's detector health per window, keyed by intersection id.
	TopicDetectorHealth = declare(func() *greenwavev1.DetectorHealth { return &greenwavev1.DetectorHealth{} },
		func(n topics.Names) string { return n.DetectorHealth }, "detector health",
		(*greenwavev1.DetectorHealth).GetIntersectionId, (*greenwavev1.DetectorHealth).GetEventId)
	// TopicOverrides carries the audit of operator overrides, keyed by intersection id.
	TopicOverrides = declare(func() *greenwavev1.OverrideAudit { return &greenwavev1.OverrideAudit{} },
		func(n topics.Names) string { return n.Overrides }, "override audit",
		func(a *greenwavev1.OverrideAudit) string { return a.GetOverride().GetIntersectionId() }, (*greenwavev1.OverrideAudit).GetEventId)
	// TopicDeadLetters carries rejected input records; the key is the source record's (see DeadLetter).
	TopicDeadLetters = declare(func() *greenwavev1.DeadLetter { return &greenwavev1.DeadLetter{} },
		func(n topics.Names) string { return n.DeadLetters }, "dead letter",
		nil, (*greenwavev1.DeadLetter).GetEventId)
	// TopicModels carries the served model snapshots, keyed by model id, deflated, with the event id
	// "model_id@version".
	TopicModels = modelTopic(func(n topics.Names) string { return n.Models })
	// TopicTrainerState is the trainer's changelog: complete model snapshots, encoded like TopicModels.
	TopicTrainerState = modelTopic(func(n topics.Names) string { return n.TrainerState })
)

// MaxModelBytes bounds a decompressed model snapshot: far above any model (a complete snapshot of 64 inputs at
// one-minute windows is under 1 MB), and a limit on what a corrupt record can allocate.
const MaxModelBytes = 32 << 20

func modelTopic(name func(topics.Names) string) Topic[*greenwavev1.ModelSnapshot] {
	t := declare(func() *greenwavev1.ModelSnapshot { return &greenwavev1.ModelSnapshot{} }, name, "model snapshot",
		(*greenwavev1.ModelSnapshot).GetModelId,
		func(s *greenwavev1.ModelSnapshot) string { return fmt.Sprintf("%s@%d", s.GetModelId(), s.GetVersion()) })
	t.ownVersions, t.deflate, t.limit, t.deterministic = true, true, MaxModelBytes, true
	return t
}

// Name is the topic's name among n.
func (t Topic[M]) Name(n topics.Names) string { return t.name(n) }

// Payload is the full name of the message the topic carries, sent as the greenwave-payload header.
func (t Topic[M]) Payload() string { return t.payload }

// Decode reads a record's value. A value that does not decode (MALFORMED) or has a schema version newer than
// SchemaVersion (UNSUPPORTED_SCHEMA) is a *stream.RejectError; with the latter the decoded message is returned
// too, for handlers that account for the rejection, and with the former an empty one.
func (t Topic[M]) Decode(m kafka.Message) (M, error) {
	msg := t.newMsg()
	b := m.Value
	if t.deflate {
		var err error
		if b, err = stream.Value(m, t.limit); err != nil {
			return msg, stream.Reject(greenwavev1.RejectReason_REJECT_REASON_MALFORMED, "decode %s: %v", t.noun, err)
		}
	}
	if err := proto.Unmarshal(b, msg); err != nil {
		proto.Reset(msg)
		return msg, stream.Reject(greenwavev1.RejectReason_REJECT_REASON_MALFORMED, "decode %s: %v", t.noun, err)
	}
	if v := msg.GetSchemaVersion(); !t.ownVersions && v > SchemaVersion {
		return msg, stream.Reject(greenwavev1.RejectReason_REJECT_REASON_UNSUPPORTED_SCHEMA, "schema version %d is newer than supported %d", v, SchemaVersion)
	}
	return msg, nil
}

// Encode returns the record of msg for the topic among n; see EncodeTo.
func (t Topic[M]) Encode(n topics.Names, msg M) (stream.Output, error) {
	return t.EncodeTo(t.name(n), msg)
}

// EncodeTo returns the record of msg for the named topic, keyed and identified by the topic's rules, with the
// payload and schema-version headers. A message without a schema version is stamped with SchemaVersion first.
func (t Topic[M]) EncodeTo(topic string, msg M) (stream.Output, error) {
	if !t.ownVersions && msg.GetSchemaVersion() == 0 {
		r := msg.ProtoReflect()
		r.Set(r.Descriptor().Fields().ByName("schema_version"), protoreflect.ValueOfUint32(SchemaVersion))
	}
	id := t.eventID(msg)
	b, err := proto.MarshalOptions{Deterministic: t.deterministic}.Marshal(msg)
	if err != nil {
		return stream.Output{}, fmt.Errorf("encode %s %s: %w", t.noun, id, err)
	}
	out := stream.Output{Topic: topic, Value: b, EventID: id, Payload: t.payload, SchemaVersion: msg.GetSchemaVersion()}
	if t.key != nil {
		out.Key = []byte(t.key(msg))
	}
	if t.deflate {
		if out.Value, err = stream.Deflate(b); err != nil {
			return stream.Output{}, fmt.Errorf("compress %s %s: %w", t.noun, id, err)
		}
		out.ContentEncoding = stream.EncodingDeflate
	}
	return out, nil
}

// NewMessage returns an empty message of the topic's payload type.
func (t Topic[M]) NewMessage() proto.Message { return t.newMsg() }

// Contract is what tools need of any topic declaration, whatever its message type.
type Contract interface {
	Name(topics.Names) string
	Payload() string
	NewMessage() proto.Message
}

// Contracts are the declarations of every topic whose payload is a protobuf message of its own (the trainer's
// changelog, whose records carry the TopicModels payload, is internal state).
func Contracts() []Contract {
	return []Contract{TopicReadings, TopicWeather, TopicFeatures, TopicDeadLetters, TopicModels, TopicPredictions, TopicPlans, TopicDetectorHealth, TopicOverrides}
}

// Specs returns topics.Specs with the payload of every declared topic filled in, for tools that decode topics.
func Specs(n topics.Names, partitions int) []topics.Spec {
	payloads := map[string]string{}
	for _, c := range Contracts() {
		payloads[c.Name(n)] = c.Payload()
	}
	specs := topics.Specs(n, partitions)
	for i, s := range specs {
		if p, ok := payloads[s.Name]; ok {
			specs[i].Payload = p
		}
	}
	return specs
}
