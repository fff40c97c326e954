package wire

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/topics"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// TestPayloadNames pins the greenwave-payload header of every topic: records written before the names came from
// the descriptors carry these, and consumers and tools match on them.
func TestPayloadNames(t *testing.T) {
	t.Parallel()
	n := topics.DefaultNames("")
	for _, tt := range []struct {
		c           Contract
		topic, want string
	}{
		{TopicReadings, n.Readings, "greenwave.v1.TrafficReading"},
		{TopicWeather, n.Weather, "greenwave.v1.WeatherReading"},
		{TopicFeatures, n.Features, "greenwave.v1.IntersectionFeatures"},
		{TopicModels, n.Models, "greenwave.v1.ModelSnapshot"},
		{TopicTrainerState, n.TrainerState, "greenwave.v1.ModelSnapshot"},
		{TopicPredictions, n.Predictions, "greenwave.v1.IntersectionPrediction"},
		{TopicPlans, n.Plans, "greenwave.v1.SignalPlan"},
		{TopicDetectorHealth, n.DetectorHealth, "greenwave.v1.DetectorHealth"},
		{TopicOverrides, n.Overrides, "greenwave.v1.OverrideAudit"},
		{TopicDeadLetters, n.DeadLetters, "greenwave.v1.DeadLetter"},
	} {
		if got := tt.c.Payload(); got != tt.want {
			t.Errorf("payload of %s = %q, want %q", tt.topic, got, tt.want)
		}
		if got := tt.c.Name(n); got != tt.topic {
			t.Errorf("name = %q, want %q", got, tt.topic)
		}
	}
	for _, s := range Specs(n, 1) {
		if s.Payload == "" {
			t.Errorf("spec of %s has no payload", s.Name)
		}
	}
}

func TestDecode(t *testing.T) {
	t.Parallel()
	good, _ := proto.Marshal(&greenwavev1.IntersectionFeatures{SchemaVersion: SchemaVersion, EventId: "I-1/60", IntersectionId: "I-1"})
	unversioned, _ := proto.Marshal(&greenwavev1.IntersectionFeatures{EventId: "I-1/0"})
	newer, _ := proto.Marshal(&greenwavev1.IntersectionFeatures{SchemaVersion: SchemaVersion + 1, EventId: "I-1/120", IntersectionId: "I-1"})
	for _, tt := range []struct {
		name       string
		value      []byte
		wantReason greenwavev1.RejectReason // UNSPECIFIED: accepted
		wantDetail string
		wantEvent  string // the message returned
	}{
		{"current", good, 0, "", "I-1/60"},
		{"no version (older writers)", unversioned, 0, "", "I-1/0"},
		{"newer version", newer, greenwavev1.RejectReason_REJECT_REASON_UNSUPPORTED_SCHEMA,
			"schema version 2 is newer than supported 1", "I-1/120"},
		{"malformed", []byte{0x0a, 0xff}, greenwavev1.RejectReason_REJECT_REASON_MALFORMED, "decode features: ", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			msg, err := TopicFeatures.Decode(kafka.Message{Value: tt.value})
			var rej *stream.RejectError
			if errors.As(err, &rej) != (tt.wantReason != 0) || (rej != nil && (rej.Reason != tt.wantReason || !strings.HasPrefix(rej.Detail, tt.wantDetail))) {
				t.Fatalf("Decode error = %v, want reason %v with detail %q", err, tt.wantReason, tt.wantDetail)
			}
			if msg == nil || msg.GetEventId() != tt.wantEvent {
				t.Errorf("decoded message = %v, want event id %q", msg, tt.wantEvent)
			}
		})
	}
}

// TestEncode checks a record's key, event id and headers, and that Decode reads back what Encode wrote.
func TestEncode(t *testing.T) {
	t.Parallel()
	n := topics.DefaultNames("p.")
	plan := &greenwavev1.SignalPlan{PlanId: "I-1/60", IntersectionId: "I-1", CycleS: 90}
	out, err := TopicPlans.Encode(n, plan)
	if err != nil {
		t.Fatal(err)
	}
	m := out.Message()
	if m.Topic != n.Plans || string(m.Key) != "I-1" || out.EventID != "I-1/60" || plan.GetSchemaVersion() != SchemaVersion {
		t.Errorf("record %+v of plan %v", out, plan)
	}
	for h, want := range map[string]string{stream.HeaderPayload: "greenwave.v1.SignalPlan", stream.HeaderSchemaVersion: "1", stream.HeaderEventID: "I-1/60"} {
		if got := string(stream.Header(m, h)); got != want {
			t.Errorf("header %s = %q, want %q", h, got, want)
		}
	}
	back, err := TopicPlans.Decode(m)
	if err != nil || !proto.Equal(back, plan) {
		t.Errorf("Decode(Encode(plan)) = %v, %v; want %v", back, err, plan)
	}

	snap := &greenwavev1.ModelSnapshot{SchemaVersion: 2, ModelId: "I-1/N/300/flow", Version: 7}
	mo, err := EncodeModel(n.TrainerState, Snapshot(snap))
	if err != nil {
		t.Fatal(err)
	}
	if mo.EventID != "I-1/N/300/flow@7" || mo.ContentEncoding != stream.EncodingDeflate || mo.SchemaVersion != 2 || string(mo.Key) != snap.GetModelId() {
		t.Errorf("model record %+v", mo)
	}
	if got, err := DecodeModel(mo.Message()); err != nil || !proto.Equal(SnapshotProto(got), snap) {
		t.Errorf("DecodeModel = %v, %v; want %v", got, err, snap)
	}
}

func TestDeadLetter(t *testing.T) {
	t.Parallel()
	m := kafka.Message{Topic: "in", Partition: 2, Offset: 41, Key: []byte("I-1"), Value: []byte("bad"),
		Headers: []kafka.Header{{Key: stream.HeaderEventID, Value: []byte("r-1")}}}
	rej := &stream.RejectError{Reason: greenwavev1.RejectReason_REJECT_REASON_MALFORMED, Detail: "d", ObservedAt: time.Unix(60, 0)}
	for _, tt := range []struct{ id, want string }{{"", "in/2/41/malformed"}, {"r-1/late", "r-1/late"}} {
		out := DeadLetterWithID("svc", "dlq", m, rej, tt.id)
		dl, err := TopicDeadLetters.Decode(out.Message())
		if err != nil {
			t.Fatal(err)
		}
		if out.Topic != "dlq" || string(out.Key) != "I-1" || out.EventID != tt.want || dl.GetEventId() != tt.want ||
			dl.GetSourceEventId() != "r-1" || dl.GetService() != "svc" || string(dl.GetPayload()) != "bad" || dl.GetObservedAt().GetSeconds() != 60 {
			t.Errorf("dead letter %+v: %v", out, dl)
		}
	}
}
