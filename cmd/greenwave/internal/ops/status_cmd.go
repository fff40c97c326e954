package ops

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/devstate"
)

// statusServices are the services `status` reports, in pipeline order, by their stack names.
var statusServices = []string{"collector", "cleaner", "trainer", "predictor", "signalcontrol"}

// defaultHTTPAddrs are the HTTP (health, metrics) ports docker-compose.yml publishes: only the collector's.
var defaultHTTPAddrs = map[string]string{"collector": "127.0.0.1:8080"}

const statusDescription = `
Prints one line per service: its readiness (GET /readyz, with the failing checks when it is not ready), the
consumer lag of the partitions it is assigned (greenwave_consumer_lag_records summed: records not yet handled)
and its rates over --interval from two scrapes of GET /metrics — records in (the collector: readings accepted
plus rejected), records out (published outputs; the collector: readings accepted) and bad input (dead letters;
the collector: readings rejected).

Addresses: --http NAME=HOST:PORT (repeatable); otherwise a running ` + "`greenwave dev`" + `'s (its state file); otherwise
the compose port (collector 127.0.0.1:8080 only: compose publishes no other HTTP port, name the others).

Exit status 0 when every service answered ready, 1 when any is not ready, unreachable or has no address.`

// serviceStatus is one service's line; its JSON form is the --json output.
type serviceStatus struct {
	Service string            `json:"service"`
	Addr    string            `json:"http_addr,omitempty"`
	State   string            `json:"state"` // ready, not ready, down, unknown
	Failing map[string]string `json:"failing,omitempty"`
	Error   string            `json:"error,omitempty"`
	// Lag is the summed consumer lag (nil for a service that consumes no group, or when unknown).
	Lag *float64 `json:"lag_records,omitempty"`
	// Rates per second over the interval (nil without a second scrape).
	InPerS  *float64 `json:"in_per_s,omitempty"`
	OutPerS *float64 `json:"out_per_s,omitempty"`
	BadPerS *float64 `json:"bad_per_s,omitempty"`
}

// Status is `greenwave status`.
func Status(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return statusCmd(ctx, args, stdout, stderr, os.LookupEnv)
}

func statusCmd(ctx context.Context, args []string, stdout, stderr io.Writer, lookup lookupFunc) error {
	fs := newFlagSet("status", "[--http NAME=HOST:PORT …] [--interval 1s] [--json]", statusDescription, stderr)
	var addrFlags repeated
	fs.Var(&addrFlags, "http", "a service's HTTP address, NAME=HOST:PORT (repeatable; NAME is collector, cleaner, trainer, predictor or signalcontrol)")
	interval := fs.Duration("interval", time.Second, "time between the two /metrics scrapes the rates come from (0: no rates)")
	timeout := fs.Duration("timeout", defaultTimeout, "how long each request may take")
	asJSON := fs.Bool("json", false, "one JSON object per service")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(fs, pos); err != nil {
		return err
	}
	if *interval < 0 || *timeout <= 0 {
		return usagef("status: --interval must not be negative and --timeout must be positive")
	}
	addrs := map[string]string{}
	dev := devstate.Load(devstate.Lookup(lookup))
	for _, s := range statusServices {
		if a := dev.HTTP(s, defaultHTTPAddrs[s]); a != "" {
			addrs[s] = a
		}
	}
	for _, f := range addrFlags {
		name, addr, ok := strings.Cut(f, "=")
		name = strings.ReplaceAll(name, "-", "")
		if !ok || !slices.Contains(statusServices, name) {
			return usagef("status: --http %q: want NAME=HOST:PORT with NAME one of %s", f, strings.Join(statusServices, ", "))
		}
		if err := checkHostPort(addr); err != nil {
			return usagef("status: --http %s: %v", name, err)
		}
		addrs[name] = addr
	}
	client := &http.Client{Timeout: *timeout}
	out := statusOnce(ctx, client, addrs, *interval)
	bad := 0
	for _, s := range out {
		if s.State != "ready" {
			bad++
		}
		if *asJSON {
			b, _ := json.Marshal(s)
			fmt.Fprintf(stdout, "%s\n", b)
			continue
		}
		fmt.Fprintln(stdout, s.line())
	}
	if ctx.Err() != nil {
		return nil
	}
	if bad > 0 {
		return fmt.Errorf("status: %d of %d services not ready", bad, len(out))
	}
	return nil
}

// statusOnce reads every service's readiness and two scrapes of its metrics, interval apart (all services are
// scraped together, so the wait is paid once).
func statusOnce(ctx context.Context, client *http.Client, addrs map[string]string, interval time.Duration) []*serviceStatus {
	out := make([]*serviceStatus, len(statusServices))
	first := make([]map[string]*dto.MetricFamily, len(statusServices))
	for i, name := range statusServices {
		s := &serviceStatus{Service: name, Addr: addrs[name]}
		out[i] = s
		if s.Addr == "" {
			s.State, s.Error = "unknown", "no address: give --http "+name+"=HOST:PORT"
			continue
		}
		if err := s.readiness(ctx, client); err != nil {
			s.State, s.Error = "down", err.Error()
			continue
		}
		mfs, err := scrape(ctx, client, s.Addr)
		if err != nil {
			s.Error = err.Error()
			continue
		}
		first[i] = mfs
		s.Lag = sumOpt(mfs, "greenwave_consumer_lag_records")
	}
	if interval <= 0 {
		return out
	}
	t := time.NewTimer(interval)
	defer t.Stop()
	began := time.Now()
	select {
	case <-ctx.Done():
		return out
	case <-t.C:
	}
	elapsed := time.Since(began).Seconds()
	for i, s := range out {
		if first[i] == nil {
			continue
		}
		mfs, err := scrape(ctx, client, s.Addr)
		if err != nil {
			s.Error = err.Error()
			continue
		}
		s.Lag = sumOpt(mfs, "greenwave_consumer_lag_records")
		rate := func(names ...string) *float64 {
			var d float64
			for _, n := range names {
				d += sum(mfs, n) - sum(first[i], n)
			}
			r := math.Max(0, d) / elapsed
			return &r
		}
		if s.Service == "collector" {
			s.InPerS = rate("greenwave_collector_accepted_total", "greenwave_collector_rejected_total")
			s.OutPerS = rate("greenwave_collector_accepted_total")
			s.BadPerS = rate("greenwave_collector_rejected_total")
		} else {
			s.InPerS = rate("greenwave_stream_records_total")
			s.OutPerS = rate("greenwave_stream_outputs_total")
			s.BadPerS = rate("greenwave_stream_dead_letters_total")
		}
	}
	return out
}

// readiness sets State from GET /readyz: 200 is ready, 503 lists the failing checks.
func (s *serviceStatus) readiness(ctx context.Context, client *http.Client) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.Addr+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("GET /readyz: %w", err)
	}
	defer resp.Body.Close()
	var body struct {
		Failing map[string]string `json:"failing"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body)
	switch resp.StatusCode {
	case http.StatusOK:
		s.State = "ready"
	case http.StatusServiceUnavailable:
		s.State, s.Failing = "not ready", body.Failing
	default:
		return fmt.Errorf("GET /readyz: %s", resp.Status)
	}
	return nil
}

// scrape reads GET /metrics in the Prometheus text format.
func scrape(ctx context.Context, client *http.Client, addr string) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET /metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET /metrics: %w", err)
	}
	return mfs, nil
}

// sum adds every series of a counter or gauge family (0 when absent).
func sum(mfs map[string]*dto.MetricFamily, name string) float64 {
	v, _ := sumFound(mfs, name)
	return v
}

// sumOpt is sum, nil when the family has no series.
func sumOpt(mfs map[string]*dto.MetricFamily, name string) *float64 {
	v, ok := sumFound(mfs, name)
	if !ok {
		return nil
	}
	return &v
}

func sumFound(mfs map[string]*dto.MetricFamily, name string) (float64, bool) {
	mf := mfs[name]
	if mf == nil || len(mf.GetMetric()) == 0 {
		return 0, false
	}
	var v float64
	for _, m := range mf.GetMetric() {
		switch {
		case m.Counter != nil:
			v += m.GetCounter().GetValue()
		case m.Gauge != nil:
			v += m.GetGauge().GetValue()
		case m.Untyped != nil:
			v += m.GetUntyped().GetValue()
		}
	}
	return v, true
}

// line is the human form: name, state, lag, rates, then what is wrong.
func (s *serviceStatus) line() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-13s %-9s", s.Service, s.State)
	if s.Lag != nil {
		fmt.Fprintf(&b, "  lag %-8.0f", *s.Lag)
	} else {
		fmt.Fprintf(&b, "  lag %-8s", "-")
	}
	if s.InPerS != nil {
		bad := "dead-lettered"
		if s.Service == "collector" {
			bad = "rejected"
		}
		fmt.Fprintf(&b, "  in %8.1f/s  out %8.1f/s  %s %.1f/s", *s.InPerS, *s.OutPerS, bad, *s.BadPerS)
	}
	if s.Addr != "" {
		fmt.Fprintf(&b, "  (%s)", s.Addr)
	}
	if len(s.Failing) > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(s.Failing)) {
			parts = append(parts, k+": "+s.Failing[k])
		}
		fmt.Fprintf(&b, "  failing: %s", strings.Join(parts, "; "))
	}
	if s.Error != "" {
		fmt.Fprintf(&b, "  %s", s.Error)
	}
	return b.String()
}
