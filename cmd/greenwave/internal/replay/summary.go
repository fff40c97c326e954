package replay

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/cli"
	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/gateway"
	"github.com/greenwave-city/greenwave/pkg/dataset"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// Summary is what a replay did. Its JSON form is the --json output.
type Summary struct {
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

func newSummary(o options) *Summary {
	s := &Summary{Files: []string{o.file}, Format: o.format, DryRun: o.dryRun, Problems: map[string]int{}, Rejected: map[string]int{}}
	if o.weather != "" {
		s.Files = append(s.Files, o.weather)
	}
	return s
}

// fromReaders copies the readers' statistics.
func (s *Summary) fromReaders(readers []*dataset.Reader) {
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

// printer prints the first problems and rejections to stderr and counts the rest.
type printer struct {
	w        io.Writer
	limit    int
	problems int
	rejects  int
}

const printLimit = 10

func (p *printer) problem(pr dataset.Problem) {
	p.problems++
	if p.problems <= p.limit {
		fmt.Fprintf(p.w, "greenwave replay: skipped %s\n", pr)
	}
}

func (p *printer) reject(batchID string, rj *greenwavev1.RejectedReading) {
	p.rejects++
	if p.rejects <= p.limit {
		id := ""
		if rj.GetReadingId() != "" {
			id = " " + rj.GetReadingId()
		}
		fmt.Fprintf(p.w, "greenwave replay: rejected %s%s (batch %s): %s: %s\n", rj.GetField(), id, batchID,
			gateway.RejectName(rj.GetReason()), rj.GetDescription())
	}
}

func (p *printer) finish() {
	if n := p.problems - p.limit; n > 0 {
		fmt.Fprintf(p.w, "greenwave replay: … and %d more skipped rows or values (counted by reason in the summary)\n", n)
	}
	if n := p.rejects - p.limit; n > 0 {
		fmt.Fprintf(p.w, "greenwave replay: … and %d more rejected readings (counted by reason in the summary)\n", n)
	}
}

// observe widens the event-time range.
func (s *Summary) observe(rec dataset.Record) {
	t := rec.Time()
	if s.EventStart == nil || t.Before(*s.EventStart) {
		s.EventStart = &t
	}
	if s.EventEnd == nil || t.After(*s.EventEnd) {
		s.EventEnd = &t
	}
}

func printSummary(w io.Writer, s *Summary) {
	fmt.Fprintf(w, "%s (%s): %d rows, %d readings and %d weather observations read", strings.Join(s.Files, " + "), s.Format,
		s.Rows, s.ReadingsRead, s.WeatherRead)
	if s.EventStart != nil {
		fmt.Fprintf(w, ", event time %s … %s", s.EventStart.Format(time.RFC3339), s.EventEnd.Format(time.RFC3339))
	}
	fmt.Fprintln(w)
	if len(s.Problems) > 0 {
		fmt.Fprintf(w, "  skipped: %d records (%s)\n", s.SkippedRecords, cli.Counts(s.Problems))
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
		fmt.Fprintf(w, " (%s)", cli.Counts(s.Rejected))
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
