package ops

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/stack/stacktest"
	"github.com/greenwave-city/greenwave/pkg/kafkaconn"
	"github.com/greenwave-city/greenwave/pkg/kafkatest"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/topics"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// tailFixture is a cluster with Greenwave topics (2 partitions) and a few records of several payload types.
type tailFixture struct {
	kafkaConn kafkaconn.Conn
	names     topics.Names
	prefix    string
	// want maps topic → key → the protojson of the value written (or raw JSON for state topics).
	want map[string]map[string]json.RawMessage
}

func newTailFixture(t *testing.T) *tailFixture {
	t.Helper()
	kafkaConn, names := kafkatest.Setup(t, 2)
	f := &tailFixture{kafkaConn: kafkaConn, names: names, want: map[string]map[string]json.RawMessage{},
		prefix: strings.TrimSuffix(names.Readings, topics.DefaultNames("").Readings)}
	at := timestamppb.New(time.Date(2026, 11, 26, 7, 35, 0, 0, time.UTC))
	var outs []stream.Output
	add := func(topic, key string, m proto.Message) {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		js, err := payloadJSON.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, stream.Output{Topic: topic, Key: []byte(key), Value: b, EventID: "ev-" + key,
			Payload: string(m.ProtoReflect().Descriptor().FullName())})
		f.expect(topic, key, js)
	}
	for _, id := range []string{"I-100", "I-200", "I-300"} {
		add(names.Readings, id, &greenwavev1.TrafficReading{SchemaVersion: 1, IntersectionId: id, DetectorId: id + "-d1", ObservedAt: at, IntervalS: 60, Count: 12})
		add(names.Features, id, &greenwavev1.IntersectionFeatures{SchemaVersion: 1, EventId: "f-" + id, IntersectionId: id, WindowStart: at})
		add(names.Plans, id, &greenwavev1.SignalPlan{SchemaVersion: 1, PlanId: "p-" + id, IntersectionId: id, CycleS: 90,
			Reason: greenwavev1.PlanReason_PLAN_REASON_FIXED_TIME, Phases: []*greenwavev1.PhaseTiming{{PhaseId: "NS", GreenS: 40, YellowS: 3, AllRedS: 2}}})
	}
	add(names.DeadLetters, "I-100", &greenwavev1.DeadLetter{Service: "cleaner", Reason: greenwavev1.RejectReason_REJECT_REASON_OUT_OF_RANGE, Payload: []byte{1, 2, 3}})
	// Internal state: JSON private to the cleaner, written without a payload header.
	state := `{"snapshot_version":1,"source_partition":0,"source_offset":7,"state":{"x":1}}`
	outs = append(outs, stream.Output{Topic: names.CleanerState, Key: []byte("I-100"), Value: []byte(state)})
	f.expect(names.CleanerState, "I-100", json.RawMessage(state))
	p := stream.NewProducer(kafkaConn, stream.ProducerConfig{})
	defer p.Close()
	if err := p.Write(t.Context(), outs...); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *tailFixture) expect(topic, key string, v json.RawMessage) {
	if f.want[topic] == nil {
		f.want[topic] = map[string]json.RawMessage{}
	}
	f.want[topic][key] = v
}

// tail runs the command against the fixture's cluster and returns the printed records.
func (f *tailFixture) tail(t *testing.T, args ...string) ([]tailRecord, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	args = append(args, "--brokers", strings.Join(f.kafkaConn.Brokers, ","), "--topic-prefix", f.prefix)
	err := tailCmd(t.Context(), args, &stdout, &stderr, env(kafkatest.SecurityEnv()).lookup, nil)
	return parseLines(t, stdout.String()), stderr.String(), err
}

func parseLines(t *testing.T, out string) []tailRecord {
	t.Helper()
	var recs []tailRecord
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r tailRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %q is not a record: %v", sc.Text(), err)
		}
		recs = append(recs, r)
	}
	return recs
}

// sameJSON compares two JSON documents by value.
func sameJSON(t *testing.T, got, want json.RawMessage) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("value %s: %v", got, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("want %s: %v", want, err)
	}
	return reflect.DeepEqual(g, w)
}

func TestTailDecodesEveryPayloadType(t *testing.T) {
	t.Parallel()
	f := newTailFixture(t)
	tests := []struct {
		name        string
		args        []string
		topic       string
		wantKeys    []string
		wantPayload string
		wantNote    string
	}{
		{name: "readings by short name", args: []string{"readings.raw"}, topic: f.names.Readings, wantKeys: []string{"I-100", "I-200", "I-300"}, wantPayload: "greenwave.v1.TrafficReading"},
		{name: "features by standard name", args: []string{"greenwave.features"}, topic: f.names.Features, wantKeys: []string{"I-100", "I-200", "I-300"}, wantPayload: "greenwave.v1.IntersectionFeatures"},
		{name: "plans by full name", args: []string{f.names.Plans}, topic: f.names.Plans, wantKeys: []string{"I-100", "I-200", "I-300"}, wantPayload: "greenwave.v1.SignalPlan"},
		{name: "dead letters", args: []string{"readings.dlq"}, topic: f.names.DeadLetters, wantKeys: []string{"I-100"}, wantPayload: "greenwave.v1.DeadLetter"},
		{name: "internal state as raw JSON", args: []string{"cleaner.state"}, topic: f.names.CleanerState, wantKeys: []string{"I-100"}, wantNote: "internal state"},
		{name: "key filter", args: []string{"plans-by-key", "--key", "I-200"}, topic: f.names.Plans, wantKeys: []string{"I-200"}, wantPayload: "greenwave.v1.SignalPlan"},
		{name: "max", args: []string{"features", "--max", "2"}, topic: f.names.Features, wantPayload: "greenwave.v1.IntersectionFeatures"},
		{name: "empty topic", args: []string{"predictions"}, topic: f.names.Predictions},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{}, tt.args...)
			if args[0] == "plans-by-key" {
				args[0] = "signal-plans"
			}
			args = append(args, "--from-beginning")
			if !strings.Contains(tt.name, "max") {
				args = append(args, "--no-follow")
			}
			recs, stderr, err := f.tail(t, args...)
			if err != nil {
				t.Fatalf("tail: %v (stderr %q)", err, stderr)
			}
			if tt.name == "max" {
				if len(recs) != 2 {
					t.Fatalf("printed %d records, want --max 2", len(recs))
				}
			} else if len(recs) != len(tt.wantKeys) {
				t.Fatalf("printed %d records, want %d: %+v", len(recs), len(tt.wantKeys), recs)
			}
			seen := map[string]bool{}
			for _, r := range recs {
				if r.Key == nil {
					t.Fatalf("record without key: %+v", r)
				}
				seen[*r.Key] = true
				if r.Topic != tt.topic || r.Payload != tt.wantPayload || !strings.Contains(r.Note, tt.wantNote) || r.Error != "" {
					t.Errorf("record %+v: want topic %s payload %q note %q and no error", r, tt.topic, tt.wantPayload, tt.wantNote)
				}
				if r.Partition != stream.PartitionFor(*r.Key, 2) {
					t.Errorf("record of %s printed from partition %d, written to %d", *r.Key, r.Partition, stream.PartitionFor(*r.Key, 2))
				}
				if tt.wantPayload != "" && r.Headers[stream.HeaderPayload] != tt.wantPayload {
					t.Errorf("headers %v lack the payload header", r.Headers)
				}
				if !sameJSON(t, r.Value, f.want[tt.topic][*r.Key]) {
					t.Errorf("value of %s: got %s, want %s", *r.Key, r.Value, f.want[tt.topic][*r.Key])
				}
			}
			for _, k := range tt.wantKeys {
				if !seen[k] {
					t.Errorf("no record for key %s", k)
				}
			}
		})
	}
}

func TestTailPartitionAndErrors(t *testing.T) {
	t.Parallel()
	f := newTailFixture(t)
	p := stream.PartitionFor("I-100", 2)
	recs, _, err := f.tail(t, "signal-plans", "--from-beginning", "--no-follow", "--partition", fmt.Sprint(p))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) == 0 {
		t.Fatal("nothing printed from the partition holding I-100")
	}
	for _, r := range recs {
		if r.Partition != p {
			t.Errorf("record from partition %d, want only %d", r.Partition, p)
		}
	}
	if _, _, err := f.tail(t, "signal-plans", "--partition", "2"); exitStatus(err) != 2 || !strings.Contains(err.Error(), "has 2 partitions") {
		t.Errorf("--partition out of range: got %v, want a usage error", err)
	}
	var stdout, stderr bytes.Buffer
	err = tailCmd(t.Context(), []string{"features", "--brokers", strings.Join(f.kafkaConn.Brokers, ","), "--topic-prefix", "nosuch."}, &stdout, &stderr, env(kafkatest.SecurityEnv()).lookup, nil)
	if exitStatus(err) != 1 || !strings.Contains(err.Error(), "nosuch.greenwave.features does not exist") {
		t.Errorf("missing topic: got %v, want a failure naming the topic", err)
	}
}

// TestTailStartsAtTheEnd writes a record once tail has fixed its start offsets: only that one is printed.
func TestTailStartsAtTheEnd(t *testing.T) {
	t.Parallel()
	f := newTailFixture(t)
	positioned := make(chan struct{})
	var stdout, stderr stacktest.SyncBuffer
	done := make(chan error, 1)
	go func() {
		args := []string{"signal-plans", "--max", "1", "--brokers", strings.Join(f.kafkaConn.Brokers, ","), "--topic-prefix", f.prefix}
		done <- tailCmd(t.Context(), args, &stdout, &stderr, env(kafkatest.SecurityEnv()).lookup, func() { close(positioned) })
	}()
	select {
	case <-positioned:
	case err := <-done:
		t.Fatalf("tail ended before positioning: %v", err)
	}
	plan := &greenwavev1.SignalPlan{SchemaVersion: 1, PlanId: "late", IntersectionId: "I-200", CycleS: 60}
	b, _ := proto.Marshal(plan)
	prod := stream.NewProducer(f.kafkaConn, stream.ProducerConfig{})
	defer prod.Close()
	if err := prod.Write(t.Context(), stream.Output{Topic: f.names.Plans, Key: []byte("I-200"), Value: b, Payload: "greenwave.v1.SignalPlan"}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("tail: %v", err)
	}
	recs := parseLines(t, stdout.String())
	if len(recs) != 1 || !strings.Contains(string(recs[0].Value), `"plan_id":"late"`) {
		t.Fatalf("printed %+v, want only the record written after the start", recs)
	}
}

func TestDecodeRecord(t *testing.T) {
	t.Parallel()
	names := topics.DefaultNames("")
	specs := map[string]topics.Spec{}
	for _, s := range wire.Specs(names, 1) {
		specs[s.Name] = s
	}
	plan, _ := proto.Marshal(&greenwavev1.SignalPlan{PlanId: "p1"})
	tests := []struct {
		name string
		msg  kafka.Message
		// want are fields of the printed object that must match (by JSON value).
		want map[string]string
	}{
		{name: "payload from the spec", msg: kafka.Message{Topic: names.Plans, Key: []byte("I-1"), Value: plan},
			want: map[string]string{"payload": `"greenwave.v1.SignalPlan"`, "value": `{"plan_id":"p1"}`, "key": `"I-1"`}},
		{name: "payload header wins", msg: kafka.Message{Topic: names.Plans, Value: plan,
			Headers: []kafka.Header{{Key: stream.HeaderPayload, Value: []byte("greenwave.v1.OverrideAudit")}}},
			// Field 2 of OverrideAudit is event_id: the same bytes read as another type.
			want: map[string]string{"payload": `"greenwave.v1.OverrideAudit"`, "value": `{"event_id":"p1"}`, "key": `null`}},
		{name: "unknown header type falls back to the spec", msg: kafka.Message{Topic: names.Plans, Value: plan,
			Headers: []kafka.Header{{Key: stream.HeaderPayload, Value: []byte("google.protobuf.Empty")}}},
			want: map[string]string{"payload": `"greenwave.v1.SignalPlan"`}},
		{name: "corrupt value", msg: kafka.Message{Topic: names.Plans, Value: []byte{0xff, 0xff}},
			want: map[string]string{"value": `null`, "value_base64": `"//8="`}},
		{name: "tombstone", msg: kafka.Message{Topic: names.Models, Key: []byte("I-1/N/900/flow")},
			want: map[string]string{"value": `null`, "note": `"tombstone: deletes the key from a compacted topic"`}},
		{name: "binary key and header", msg: kafka.Message{Topic: names.Plans, Key: []byte{0xc3, 0x28}, Value: plan,
			Headers: []kafka.Header{{Key: "h", Value: []byte{0xff}}}},
			want: map[string]string{"key": `null`, "key_base64": `"wyg="`, "headers": `{"h":"base64:/w=="}`}},
		{name: "state that is not JSON", msg: kafka.Message{Topic: names.SignalState, Value: []byte("\x01binary")},
			want: map[string]string{"value": `null`, "value_base64": `"` + base64.StdEncoding.EncodeToString([]byte("\x01binary")) + `"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := json.Marshal(decodeRecord(tt.msg, specs[tt.msg.Topic]))
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]json.RawMessage
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			for k, want := range tt.want {
				if !sameJSON(t, got[k], json.RawMessage(want)) {
					t.Errorf("%s = %s, want %s (record %s)", k, got[k], want, b)
				}
			}
			if tt.name == "corrupt value" && !strings.Contains(string(got["error"]), "decode greenwave.v1.SignalPlan") {
				t.Errorf("error %s does not name the type", got["error"])
			}
		})
	}
}

// FuzzDecodeRecord: whatever a topic holds, tail prints one valid JSON object for it and never panics.
func FuzzDecodeRecord(f *testing.F) {
	plan, _ := proto.Marshal(&greenwavev1.SignalPlan{PlanId: "p1", CycleS: 90})
	f.Add(0, []byte("I-100"), plan, "greenwave.v1.SignalPlan")
	f.Add(9, []byte{0xff}, []byte(`{"a":1}`), "")
	f.Add(4, []byte(nil), []byte(nil), "greenwave.v1.ModelSnapshot")
	f.Add(2, []byte("k"), []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f}, "greenwave.v1.IntersectionFeatures")
	specs := wire.Specs(topics.DefaultNames(""), 1)
	f.Fuzz(func(t *testing.T, topic int, key, value []byte, payloadHeader string) {
		if topic < 0 {
			topic = -topic
		}
		spec := specs[topic%len(specs)]
		m := kafka.Message{Topic: spec.Name, Key: key, Value: value, Headers: []kafka.Header{{Key: stream.HeaderPayload, Value: []byte(payloadHeader)}}}
		b, err := json.Marshal(decodeRecord(m, spec))
		if err != nil {
			t.Fatalf("record does not encode: %v", err)
		}
		if !json.Valid(b) {
			t.Fatalf("invalid JSON %s", b)
		}
	})
}
