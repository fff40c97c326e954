package dev

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/cli"
	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/gateway"
	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/ops"
	"github.com/greenwave-city/greenwave/pkg/server"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// planTime is how plan lines show times: UTC to the minute.
const planTime = "2006-01-02T15:04Z"

// printer writes greenwave dev's own output, as text or JSON lines; it is safe for concurrent use.
type printer struct {
	mu   sync.Mutex
	w    io.Writer
	json bool
}

func newPrinter(w io.Writer, jsonLines bool) *printer { return &printer{w: w, json: jsonLines} }

func (p *printer) event(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"event": "error", "error": err.Error()})
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_, _ = p.w.Write(append(b, '\n'))
}

func (p *printer) text(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, _ = io.WriteString(p.w, s)
}

// readyEvent is the first line of --json output.
type readyEvent struct {
	Event    string                  `json:"event"`
	Broker   string                  `json:"broker"`
	Services map[string]server.Addrs `json:"services"`
	LogFile  string                  `json:"log_file,omitempty"`
}

func (p *printer) ready(broker string, names []string, addrs map[string]server.Addrs, logFile string, took time.Duration) {
	if p.json {
		p.event(readyEvent{Event: "ready", Broker: broker, Services: addrs, LogFile: logFile})
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "greenwave dev ready in %s: broker %s\n", took.Round(10*time.Millisecond), broker)
	for _, n := range names {
		fmt.Fprintf(&b, "  %-13s grpc %-21s http %s\n", n, addrs[n].GRPC, addrs[n].HTTP)
	}
	fmt.Fprintf(&b, "  service logs in %s\n", logFile)
	p.text(b.String())
}

// planEvent is a plan line of --json output.
type planEvent struct {
	Event     string          `json:"event"`
	Initial   bool            `json:"initial"`
	Coalesced uint32          `json:"coalesced"`
	Plan      json.RawMessage `json:"plan"`
}

var planJSON = protojson.MarshalOptions{UseProtoNames: true}

func (p *printer) plan(resp *greenwavev1.WatchPlansResponse) {
	if p.json {
		b, err := planJSON.Marshal(resp.GetPlan())
		if err != nil {
			b, _ = json.Marshal(map[string]string{"error": err.Error()})
		}
		p.event(planEvent{Event: "plan", Initial: resp.GetInitial(), Coalesced: resp.GetCoalesced(), Plan: b})
		return
	}
	p.text(ops.FormatPlanLine(resp.GetPlan(), resp.GetInitial()) + "\n")
}

// watchPlans prints every plan signal-control issues until ctx ends (nil) or the stream fails. It does not
// count them: the counts come from the plans topic (planCounter).
func watchPlans(ctx context.Context, client greenwavev1.SignalControlServiceClient, out *printer) error {
	stream, err := client.WatchPlans(ctx, &greenwavev1.WatchPlansRequest{})
	if err != nil {
		return fmt.Errorf("watch plans: %w", err)
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, io.EOF) {
				return errors.New("watch plans: signalcontrol ended the stream")
			}
			return fmt.Errorf("watch plans: %w", err)
		}
		out.plan(resp)
	}
}

// stats counts what the feed sent and what came back; it is safe for concurrent use.
type stats struct {
	mu       sync.Mutex
	s        summary
	rejected map[string]int
	plans    map[string]int
}

func newStats() *stats { return &stats{rejected: map[string]int{}, plans: map[string]int{}} }

func (s *stats) sent(readings, weather int, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.s.BatchesSent++
	s.s.ReadingsSent += readings
	s.s.WeatherSent += weather
	s.s.SimTime = at.UTC().Format(time.RFC3339)
}

func (s *stats) ack(a *greenwavev1.BatchAck) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.s.BatchesAcked++
	s.s.ReadingsAccepted += int(a.GetAcceptedReadings())
	s.s.WeatherAccepted += int(a.GetAcceptedWeather())
	for _, r := range a.GetRejected() {
		s.rejected[gateway.RejectName(r.GetReason())]++
	}
}

// plan counts one plan on the plans topic.
func (s *stats) plan(r greenwavev1.PlanReason) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.plans[ops.ReasonName(r)]++
}

// summary is the summary event of --json output.
type summary struct {
	Event            string         `json:"event"`
	Final            bool           `json:"final"`
	UptimeS          float64        `json:"uptime_s"`
	SimTime          string         `json:"sim_time,omitempty"`
	BatchesSent      int            `json:"batches_sent"`
	BatchesAcked     int            `json:"batches_acked"`
	ReadingsSent     int            `json:"readings_sent"`
	ReadingsAccepted int            `json:"readings_accepted"`
	WeatherSent      int            `json:"weather_sent"`
	WeatherAccepted  int            `json:"weather_accepted"`
	Rejected         map[string]int `json:"rejected"`
	Plans            map[string]int `json:"plans"`
}

func (s *stats) snapshot(uptime time.Duration) summary {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.s
	out.Event = "summary"
	out.UptimeS = uptime.Round(time.Millisecond).Seconds()
	out.Rejected = maps.Clone(s.rejected)
	out.Plans = maps.Clone(s.plans)
	return out
}

func (p *printer) summary(s summary, final bool) {
	s.Final = final
	if p.json {
		p.event(s)
		return
	}
	label := "summary"
	if final {
		label = "final summary"
	}
	sim := ""
	if s.SimTime != "" {
		sim = "  sim " + s.SimTime
	}
	rejected := 0
	for _, n := range s.Rejected {
		rejected += n
	}
	plans := 0
	for _, n := range s.Plans {
		plans += n
	}
	p.text(fmt.Sprintf("%s: up %s%s  readings sent %d acked %d rejected %d%s  weather sent %d acked %d  plans %d%s\n",
		label, time.Duration(s.UptimeS*float64(time.Second)).Round(time.Second), sim,
		s.ReadingsSent, s.ReadingsAccepted, rejected, counts(s.Rejected), s.WeatherSent, s.WeatherAccepted, plans, counts(s.Plans)))
}

// counts renders a count map as " (a 3, b 1)", largest first; "" when empty.
func counts(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	return " (" + cli.Counts(m) + ")"
}
