package replay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/cli"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// fakeCollector acks every batch in order, rejecting readings of detector "BAD". Stream number i (from 1)
// follows script[i-1] when there is one: after acking `after` batches it fails with err, or (err nil) ends
// the stream without acking the next batch it received.
type fakeCollector struct {
	greenwavev1.UnimplementedCollectorServiceServer
	script []streamFault

	mu       sync.Mutex
	streams  int
	tokens   []string
	accepted map[string]int // reading id (detector@unix) → times accepted
}

type streamFault struct {
	after int
	err   error
}

func (f *fakeCollector) StreamReadings(stream grpc.BidiStreamingServer[greenwavev1.StreamReadingsRequest, greenwavev1.StreamReadingsResponse]) error {
	f.mu.Lock()
	f.streams++
	n := f.streams
	md, _ := metadata.FromIncomingContext(stream.Context())
	f.tokens = append(f.tokens, strings.Join(md.Get("authorization"), ","))
	f.mu.Unlock()
	var fault *streamFault
	if n <= len(f.script) {
		fault = &f.script[n-1]
	}
	for acked := 0; ; acked++ {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if fault != nil && acked == fault.after {
			return fault.err
		}
		ack := &greenwavev1.BatchAck{BatchId: req.GetBatch().GetBatchId()}
		f.mu.Lock()
		for i, r := range req.GetBatch().GetReadings() {
			if r.GetDetectorId() == "BAD" {
				ack.Rejected = append(ack.Rejected, &greenwavev1.RejectedReading{Kind: greenwavev1.ReadingKind_READING_KIND_TRAFFIC, Index: uint32(i),
					Reason: greenwavev1.RejectReason_REJECT_REASON_UNKNOWN_DETECTOR, Field: fmt.Sprintf("readings[%d].detector_id", i), Description: "not in the topology"})
				continue
			}
			ack.AcceptedReadings++
			f.accepted[fmt.Sprintf("%s@%d", r.GetDetectorId(), r.GetObservedAt().AsTime().Unix())]++
		}
		ack.AcceptedWeather = uint32(len(req.GetBatch().GetWeather()))
		f.mu.Unlock()
		if err := stream.Send(&greenwavev1.StreamReadingsResponse{Ack: ack}); err != nil {
			return err
		}
	}
}

func startFakeCollector(t *testing.T, script ...streamFault) (*fakeCollector, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fc := &fakeCollector{script: script, accepted: map[string]int{}}
	srv := grpc.NewServer()
	greenwavev1.RegisterCollectorServiceServer(srv, fc)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return fc, lis.Addr().String()
}

// writeReadings writes a canonical readings CSV of n readings of detector D1, one a minute, every seventh of
// detector BAD, plus one unreadable row at line 3.
func writeReadings(t *testing.T, n int) (path string, bad int) {
	t.Helper()
	var b strings.Builder
	b.WriteString("observed_at,detector_id,interval_s,count\n")
	start := time.Date(2006, 10, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		det := "D1"
		if i%7 == 3 {
			det, bad = "BAD", bad+1
		}
		fmt.Fprintf(&b, "%s,%s,60,%d\n", start.Add(time.Duration(i)*time.Minute).Format(time.RFC3339), det, i%50)
		if i == 0 {
			b.WriteString("yesterday,D1,60,1\n")
		}
	}
	path = filepath.Join(t.TempDir(), "readings.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, bad
}

func retryInfo(code codes.Code, delay time.Duration) error {
	st, err := status.New(code, "try later").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(delay)})
	if err != nil {
		panic(err)
	}
	return st.Err()
}

func runReplayJSON(t *testing.T, args ...string) (Summary, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := Run(context.Background(), append([]string{"--json"}, args...), &stdout, &stderr)
	var sum Summary
	if jerr := json.Unmarshal(stdout.Bytes(), &sum); jerr != nil {
		t.Fatalf("summary is not JSON (%v): %q; stderr %s", jerr, stdout.String(), stderr.String())
	}
	return sum, stderr.String(), err
}

func TestReplayAccountsForEveryReading(t *testing.T) {
	t.Parallel()
	const n = 200
	tests := []struct {
		name           string
		script         []streamFault
		reconnects     int
		retriedBatches bool
	}{
		{name: "healthy collector"},
		{
			name: "unavailable, resource exhausted, broken stream",
			script: []streamFault{
				{after: 3, err: retryInfo(codes.Unavailable, 5*time.Millisecond)},
				{after: 1, err: retryInfo(codes.ResourceExhausted, 10*time.Millisecond)},
				{after: 2, err: nil}, // ends the stream with batches unacknowledged
			},
			reconnects: 3, retriedBatches: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fc, addr := startFakeCollector(t, tc.script...)
			file, bad := writeReadings(t, n)
			sum, stderr, err := runReplayJSON(t, "--collector", addr, "--batch", "7", "--window", "3", "--token", "s3cret-0123456789abcdef", file)
			if err != nil {
				t.Fatalf("replay: %v\n%s", err, stderr)
			}
			if sum.ReadingsSent != n || sum.ReadingsAccepted != n-bad || sum.ReadingsRejected != bad || sum.Rejected["unknown_detector"] != bad ||
				sum.Unaccounted != 0 || sum.Problems["bad_time"] != 1 || sum.Reconnects != tc.reconnects || (sum.RetriedBatches > 0) != tc.retriedBatches {
				t.Errorf("summary %+v", sum)
			}
			if sum.BatchesAcked != sum.BatchesSent || sum.BatchesSent != (n+6)/7 {
				t.Errorf("batches: %d sent, %d acked", sum.BatchesSent, sum.BatchesAcked)
			}
			fc.mu.Lock()
			defer fc.mu.Unlock()
			// Every good reading reached the collector; resends only repeat the same ids.
			if len(fc.accepted) != n-bad {
				t.Errorf("collector saw %d distinct readings, want %d", len(fc.accepted), n-bad)
			}
			for _, tok := range fc.tokens {
				if tok != "Bearer s3cret-0123456789abcdef" {
					t.Errorf("authorization %q", tok)
				}
			}
			if !strings.Contains(stderr, "readings.csv:3: observed_at") || !strings.Contains(stderr, "unknown_detector") ||
				!strings.Contains(stderr, fmt.Sprintf("greenwave replay: %d readings name detectors the collector's topology lacks", bad)) {
				t.Errorf("stderr does not name the problem and the rejection:\n%s", stderr)
			}
		})
	}
}

func TestReplayFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		script []streamFault
		args   []string
		want   string
	}{
		{name: "unauthenticated is fatal", script: []streamFault{{after: 0, err: status.Error(codes.Unauthenticated, "unknown token")}},
			want: "Unauthenticated"},
		{name: "gives up after max retries", args: []string{"--max-retries", "2"},
			script: []streamFault{{after: 1, err: status.Error(codes.Unavailable, "down")}, {after: 0, err: status.Error(codes.Unavailable, "down")},
				{after: 0, err: status.Error(codes.Unavailable, "down")}},
			want: "giving up after 3 failures"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, addr := startFakeCollector(t, tc.script...)
			file, _ := writeReadings(t, 50)
			args := append([]string{"--collector", addr, "--batch", "10", "--window", "2"}, tc.args...)
			sum, _, err := runReplayJSON(t, append(args, file)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(sum.Error, tc.want) {
				t.Fatalf("err %v (summary error %q), want %q", err, sum.Error, tc.want)
			}
			if code := cli.ExitCode(err, io.Discard); code != 1 {
				t.Errorf("exit code %d", code)
			}
			acked := sum.ReadingsAccepted + sum.ReadingsRejected
			if sum.Unaccounted == 0 || acked+sum.Unaccounted != sum.ReadingsSent {
				t.Errorf("summary does not account: %+v", sum)
			}
		})
	}
}

func TestReplayDryRun(t *testing.T) {
	t.Parallel()
	file, _ := writeReadings(t, 30)
	weather := filepath.Join(t.TempDir(), "weather.csv")
	if err := os.WriteFile(weather, []byte("observed_at,station_id,temperature_c\n2006-10-01T00:00:00Z,S1,12\n2006-10-01T00:10:00Z,S1,x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sum, stderr, err := runReplayJSON(t, "--dry-run", "--batch", "8", "--weather", weather, file)
	if err != nil {
		t.Fatal(err)
	}
	if sum.ReadingsRead != 30 || sum.WeatherRead != 1 || sum.Detectors != 2 || sum.Stations != 1 || sum.BatchesSent != 4 ||
		sum.Problems["bad_time"] != 1 || sum.Problems["bad_number"] != 1 || sum.ReadingsSent != 0 {
		t.Errorf("summary %+v", sum)
	}
	if !strings.Contains(stderr, "weather.csv:3: temperature_c") ||
		!strings.Contains(stderr, "greenwave replay: no --topology: derived 2 intersections from "+file+" (greenwave topology import)") {
		t.Errorf("stderr %s", stderr)
	}
}

func TestReplayUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no file", []string{"--dry-run"}, "FILE is required"},
		{"two files", []string{"--dry-run", "a", "b"}, "one FILE expected"},
		{"no collector", []string{"x.csv"}, "--collector HOST:PORT is required"},
		{"bad format", []string{"--format", "xml", "--dry-run", "x.csv"}, `--format "xml"`},
		{"bad speed", []string{"--speed", "-1", "--dry-run", "x.csv"}, "invalid value"},
		{"cert without key", []string{"--collector", "h:1", "--tls-cert", "c.pem", "x.csv"}, "go together"},
		{"wait with dry run", []string{"--dry-run", "--wait", "x.csv"}, "--wait sends nothing with --dry-run"},
		{"wait without time", []string{"--collector", "h:1", "--wait", "--wait-timeout", "0s", "x.csv"}, "positive --wait-timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stderr bytes.Buffer
			err := Run(context.Background(), tc.args, io.Discard, &stderr)
			if code := cli.ExitCode(err, &stderr); code != 2 || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("exit %d, stderr %q, want 2 and %q", code, stderr.String(), tc.want)
			}
		})
	}
	// A header that does not fit the format is a run-time error naming the file and line.
	var stderr bytes.Buffer
	path := filepath.Join(t.TempDir(), "metro.csv")
	if err := os.WriteFile(path, []byte("observed_at,detector_id,interval_s,count\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := Run(context.Background(), []string{"--format", "metro", "--dry-run", path}, io.Discard, &stderr)
	if code := cli.ExitCode(err, &stderr); code != 1 || !strings.Contains(stderr.String(), "metro.csv:1: header lacks column(s)") {
		t.Errorf("exit %d: %s", code, stderr.String())
	}
}
