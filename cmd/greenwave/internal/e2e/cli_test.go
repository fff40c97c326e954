package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/ops"
	"github.com/greenwave-city/greenwave/pkg/topics"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// TestOperatorCLI runs the operator commands in-process against a live pipeline: `topics describe`, `tail`,
// `models list|show` and `plans watch`, and checks what they print against the topology and the topics.
func TestOperatorCLI(t *testing.T) {
	parallelStack(t)
	p := startPipeline(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	s := newSender(ctx, t, p.stack.Addrs("collector").GRPC)
	p.flush(s, p.feed(ctx, s, 90, nil))
	p.waitPlans(ctx)

	prefix := strings.TrimSuffix(p.names.Readings, topics.DefaultNames("").Readings)
	kafkaArgs := []string{"--brokers", strings.Join(p.kafkaConn.Brokers, ","), "--topic-prefix", prefix}
	trainer := []string{"--addr", p.stack.Addrs("trainer").GRPC}
	signal := []string{"--addr", p.stack.Addrs("signalcontrol").GRPC}
	intersections := make([]string, 0, len(p.topo.Intersections))
	for _, in := range p.topo.Intersections {
		intersections = append(intersections, in.ID)
	}

	t.Run("topics describe", func(t *testing.T) {
		out := runOps(ctx, t, ops.Topics, append([]string{"describe"}, kafkaArgs...)...)
		for _, spec := range topics.Specs(p.names, partitions) {
			if !strings.Contains(out, spec.Name+" ") {
				t.Errorf("describe lacks %s:\n%s", spec.Name, out)
			}
		}
		var features []string
		for l := range strings.SplitSeq(out, "\n") {
			if strings.HasPrefix(l, p.names.Features+" ") {
				features = strings.Fields(l)
			}
		}
		// TOPIC PARTITIONS POLICY RETENTION PAYLOAD RECORDS END-OFFSETS, the policy being "delete" and the
		// retention "7d" (or the broker's value with the spec beside).
		if len(features) < 7 || features[1] != fmt.Sprint(partitions) || features[len(features)-2] == "0" {
			t.Errorf("features line %q: want %d partitions and records", features, partitions)
		}
	})

	t.Run("tail features", func(t *testing.T) {
		out := runOps(ctx, t, ops.Tail, append([]string{"features", "--from-beginning", "--max", "3"}, kafkaArgs...)...)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 3 {
			t.Fatalf("tail printed %d lines, want 3:\n%s", len(lines), out)
		}
		for _, l := range lines {
			var rec struct {
				Topic   string            `json:"topic"`
				Key     string            `json:"key"`
				Payload string            `json:"payload"`
				Headers map[string]string `json:"headers"`
				Value   json.RawMessage   `json:"value"`
			}
			if err := json.Unmarshal([]byte(l), &rec); err != nil {
				t.Fatalf("line %q: %v", l, err)
			}
			var f greenwavev1.IntersectionFeatures
			if err := protojson.Unmarshal(rec.Value, &f); err != nil {
				t.Fatalf("value of %q is not IntersectionFeatures: %v", l, err)
			}
			if rec.Topic != p.names.Features || rec.Payload != "greenwave.v1.IntersectionFeatures" || rec.Key != f.GetIntersectionId() ||
				!slices.Contains(intersections, rec.Key) || rec.Headers["greenwave-event-id"] != f.GetEventId() || len(f.GetApproaches()) == 0 {
				t.Errorf("record %q: want a feature frame of a topology intersection, keyed by it, with its event id header", l)
			}
		}
	})

	t.Run("models", func(t *testing.T) {
		// The trainer publishes a model once it applied a window; poll the list until every intersection has one.
		var models []*greenwavev1.ModelSnapshot
		for {
			models = models[:0]
			out := runOps(ctx, t, ops.Models, append([]string{"list", "--json", "--all"}, trainer...)...)
			seen := map[string]bool{}
			for l := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
				if l == "" {
					continue
				}
				var m greenwavev1.ModelSnapshot
				if err := protojson.Unmarshal([]byte(l), &m); err != nil {
					t.Fatalf("models list --json line %q: %v", l, err)
				}
				models = append(models, &m)
				seen[m.GetIntersectionId()] = true
			}
			if len(seen) == len(intersections) {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("models of only %d of %d intersections listed", len(seen), len(intersections))
			case <-time.After(250 * time.Millisecond):
			}
		}
		table := runOps(ctx, t, ops.Models, append([]string{"list", "--all", "--intersection", intersections[0]}, trainer...)...)
		rows := strings.Split(strings.TrimSpace(table), "\n")
		if !strings.HasPrefix(rows[0], "MODEL") || len(rows) < 2 {
			t.Fatalf("models list table:\n%s", table)
		}
		for _, r := range rows[1:] {
			if !strings.HasPrefix(r, intersections[0]+"/") {
				t.Errorf("--intersection %s listed %q", intersections[0], r)
			}
		}
		id := models[0].GetModelId()
		show := runOps(ctx, t, ops.Models, append([]string{"show", id, "--covariance"}, trainer...)...)
		for _, want := range []string{"model         " + id, "coefficients of", "intercept", "errors (test-then-train)", "covariance P of"} {
			if !strings.Contains(show, want) {
				t.Errorf("models show %s lacks %q:\n%s", id, want, show)
			}
		}
	})

	t.Run("plans watch", func(t *testing.T) {
		// Every intersection has a plan (waitPlans), so the watch starts with one initial plan each.
		out := runOps(ctx, t, ops.Plans, append([]string{"watch", "--json", "--max", fmt.Sprint(len(intersections))}, signal...)...)
		got := map[string]bool{}
		for l := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
			var resp greenwavev1.WatchPlansResponse
			if err := protojson.Unmarshal([]byte(l), &resp); err != nil {
				t.Fatalf("plans watch line %q: %v", l, err)
			}
			if !resp.GetInitial() || resp.GetPlan().GetCycleS() <= 0 || len(resp.GetPlan().GetPhases()) == 0 {
				t.Errorf("plan %q: want an initial plan with its timing", l)
			}
			got[resp.GetPlan().GetIntersectionId()] = true
		}
		if len(got) != len(intersections) {
			t.Errorf("watched plans of %v, want every intersection %v", got, intersections)
		}
		text := runOps(ctx, t, ops.Plans, append([]string{"watch", "--max", "1", "--intersection", intersections[0]}, signal...)...)
		if !strings.HasPrefix(text, "plan "+intersections[0]+" @") || !strings.Contains(text, "[initial]") {
			t.Errorf("plans watch text %q", text)
		}
	})

	t.Run("status", func(t *testing.T) {
		args := []string{"--json", "--interval", "10ms"}
		for _, name := range p.stack.Services() {
			args = append(args, "--http", name+"="+p.stack.Addrs(name).HTTP)
		}
		out := runOps(ctx, t, ops.Status, args...)
		got := map[string]map[string]any{}
		for l := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
			var s map[string]any
			if err := json.Unmarshal([]byte(l), &s); err != nil {
				t.Fatalf("status line %q: %v", l, err)
			}
			got[s["service"].(string)] = s
		}
		for _, name := range p.stack.Services() {
			s := got[name]
			if s["state"] != "ready" || s["in_per_s"] == nil {
				t.Errorf("status of %s = %v, want ready with rates", name, s)
			}
			// Every consuming service reports the lag of the partitions it is assigned; the collector has none.
			if _, hasLag := s["lag_records"]; hasLag != (name != "collector") {
				t.Errorf("status of %s = %v: lag_records present %v", name, s, hasLag)
			}
		}
	})

	t.Run("grpc health by service name", func(t *testing.T) {
		for name, service := range map[string]string{
			"collector": "greenwave.v1.CollectorService", "trainer": "greenwave.v1.ModelService",
			"predictor": "greenwave.v1.PredictionService", "signalcontrol": "greenwave.v1.SignalControlService",
		} {
			conn, err := grpc.NewClient(p.stack.Addrs(name).GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			for _, svc := range []string{"", service} {
				resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
				if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
					t.Errorf("%s: health of %q = %v, %v; want SERVING", name, svc, resp.GetStatus(), err)
				}
			}
			conn.Close()
		}
	})
}

// runOps runs an operator command in-process and returns its stdout, failing the test on an error.
func runOps(ctx context.Context, t *testing.T, cmd func(context.Context, []string, io.Writer, io.Writer) error, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if err := cmd(ctx, args, &stdout, &stderr); err != nil {
		t.Fatalf("greenwave %s: %v\nstderr: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}
