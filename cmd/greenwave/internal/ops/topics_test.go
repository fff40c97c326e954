package ops

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/greenwave-city/greenwave/pkg/kafkaconn"
	"github.com/greenwave-city/greenwave/pkg/kafkatest"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/topics"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
	"google.golang.org/protobuf/proto"
)

func TestTopicsEnsureThenDescribe(t *testing.T) {
	t.Parallel()
	kafkaConn := kafkatest.Conn(t)
	brokers := strings.Join(kafkaConn.Brokers, ",")
	prefix := kafkatest.Prefix(t)
	names := topics.DefaultNames(prefix)
	specs := topics.Specs(names, 2)
	run := func(args ...string) (string, string, error) {
		var stdout, stderr bytes.Buffer
		err := topicsCmd(t.Context(), append(args, "--brokers", brokers, "--topic-prefix", prefix), &stdout, &stderr, env(kafkatest.SecurityEnv()).lookup)
		return stdout.String(), stderr.String(), err
	}

	// Before ensure: every topic is missing, and describe says so with status 1.
	out, _, err := run("describe")
	if exitStatus(err) != 1 || !strings.Contains(err.Error(), fmt.Sprintf("%d of %d topics missing", len(specs), len(specs))) || !strings.Contains(err.Error(), "greenwave topics ensure") {
		t.Fatalf("describe before ensure: %v", err)
	}
	if strings.Count(out, "missing") != len(specs) {
		t.Errorf("describe before ensure lists %d missing topics, want %d:\n%s", strings.Count(out, "missing"), len(specs), out)
	}

	out, _, err = run("ensure", "--partitions", "2")
	if err != nil {
		t.Fatalf("ensure: %v", err)
	}
	for _, s := range specs {
		if !lineWith(out, "created", s.Name, policyOf(s)) {
			t.Errorf("ensure output lacks a created line for %s (%s):\n%s", s.Name, policyOf(s), out)
		}
	}

	// Again, asking for another count: nothing changes, and the note says so.
	out, _, err = run("ensure", "--partitions", "4")
	if err != nil {
		t.Fatalf("second ensure: %v", err)
	}
	if strings.Contains(out, "created") || !lineWith(out, "exists", names.Features, "2 partitions", "asked 4") || !lineWith(out, "exists", names.Weather, "1 partitions") {
		t.Errorf("second ensure should find every topic unchanged:\n%s", out)
	}

	plan, _ := proto.Marshal(&greenwavev1.SignalPlan{PlanId: "p"})
	// A transport of its own on the secure broker: the shared one may cache metadata from before `ensure`
	// created the topics (kafka-go keeps it for 6 s), and the write would find no such topic.
	fresh := kafkaconn.New(kafkaConn.Brokers, kafkaConn.TLS, kafkaConn.SASL, kafkaConn.User)
	defer fresh.CloseIdleConnections()
	prod := stream.NewProducer(fresh, stream.ProducerConfig{})
	defer prod.Close()
	var outs []stream.Output
	for range 3 {
		outs = append(outs, stream.Output{Topic: names.Plans, Key: []byte("I-100"), Value: plan, Payload: "greenwave.v1.SignalPlan"})
	}
	if err := prod.Write(t.Context(), outs...); err != nil {
		t.Fatal(err)
	}

	out, stderr, err := run("describe")
	if err != nil {
		t.Fatalf("describe: %v (stderr %q)", err, stderr)
	}
	if !lineWith(out, "TOPIC", "PARTITIONS", "POLICY", "RETENTION", "PAYLOAD", "RECORDS", "END OFFSETS") {
		t.Errorf("no header line:\n%s", out)
	}
	p := stream.PartitionFor("I-100", 2)
	wantEnds := []string{"0", "0"}
	wantEnds[p] = "3"
	if !lineWith(out, names.Plans, " 2 ", "delete", "30d", "SignalPlan", " 3 ", strings.Join(wantEnds, ",")) {
		t.Errorf("describe: no correct line for %s:\n%s", names.Plans, out)
	}
	if !lineWith(out, names.Models, "compact", "ModelSnapshot") || !lineWith(out, names.CleanerState, "cleaner state (internal)") {
		t.Errorf("describe: models or cleaner state line wrong:\n%s", out)
	}

	out, _, err = run("describe", "--json")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(specs) {
		t.Fatalf("--json printed %d lines, want %d", len(lines), len(specs))
	}
	for _, l := range lines {
		var in topicInfo
		if err := json.Unmarshal([]byte(l), &in); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if !in.Exists || in.Partitions != map[bool]int{true: 1, false: 2}[in.Name == names.Weather] || len(in.Offsets) != in.Partitions {
			t.Errorf("topic %+v: want it to exist with its partitions and their offsets", in)
		}
		if in.Name == names.Plans && in.Records != 3 {
			t.Errorf("plans: %+v, want 3 records", in)
		}
		if in.Broker == nil || in.Broker.CleanupPolicy != in.Spec.CleanupPolicy || (in.Spec.RetentionMS > 0 && in.Broker.RetentionMS != in.Spec.RetentionMS) {
			t.Errorf("topic %s: broker configs %+v, want the spec's %+v", in.Name, in.Broker, in.Spec)
		}
	}
}

// lineWith reports whether some line of out holds every one of parts.
func lineWith(out string, parts ...string) bool {
	for l := range strings.SplitSeq(out, "\n") {
		all := true
		for _, p := range parts {
			if !strings.Contains(l, p) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}
