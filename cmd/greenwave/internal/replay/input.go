package replay

import (
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/term"

	"github.com/greenwave-city/greenwave/pkg/dataset"
)

// input is the opened file(s): the merged source and the readers for their stats and problems.
type input struct {
	src     dataset.Source
	readers []*dataset.Reader
	files   []*os.File
	read    atomic.Int64 // bytes read, for the progress bar
	size    int64
}

func (in *input) Close() {
	for _, f := range in.files {
		_ = f.Close()
	}
}

// byteCounter counts the bytes read through it.
type byteCounter struct {
	r io.Reader
	n *atomic.Int64
}

func (c byteCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func openInput(o options, onProblem func(dataset.Problem)) (*input, error) {
	in := &input{}
	open := func(path string) (io.Reader, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("replay: %w", err)
		}
		in.files = append(in.files, f)
		if st, err := f.Stat(); err == nil {
			in.size += st.Size()
		}
		return byteCounter{r: f, n: &in.read}, nil
	}
	opts := dataset.Options{OnProblem: onProblem}
	r, err := open(o.file)
	if err != nil {
		return nil, err
	}
	main, err := dataset.Open(o.format, r, o.file, opts)
	if err != nil {
		in.Close()
		return nil, fmt.Errorf("replay: %w", err)
	}
	in.readers = append(in.readers, main)
	in.src = main
	if o.weather != "" {
		wr, err := open(o.weather)
		if err != nil {
			in.Close()
			return nil, err
		}
		w, err := dataset.OpenWeather(wr, o.weather, opts)
		if err != nil {
			in.Close()
			return nil, fmt.Errorf("replay: %w", err)
		}
		in.readers = append(in.readers, w)
		in.src = dataset.Merge(main, w)
	}
	return in, nil
}

// newProgress returns the progress reporter: a bar redrawn in place on a terminal, otherwise a line every 10 s.
func newProgress(w io.Writer, in *input) func(*Summary, bool) {
	tty := false
	if f, ok := w.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	every := 10 * time.Second
	if tty {
		every = 200 * time.Millisecond
	}
	start := time.Now()
	last := start
	return func(s *Summary, final bool) {
		now := time.Now()
		if !final && now.Sub(last) < every {
			return
		}
		last = now
		acked := s.ReadingsAccepted + s.WeatherAccepted + s.ReadingsRejected + s.WeatherRejected
		rate := float64(acked) / math.Max(now.Sub(start).Seconds(), 1e-3)
		frac := 0.0
		if in.size > 0 {
			frac = math.Min(1, float64(in.read.Load())/float64(in.size))
		}
		at := ""
		if s.EventEnd != nil {
			at = " event " + s.EventEnd.UTC().Format("2006-01-02T15:04Z")
		}
		if !tty {
			if !final {
				fmt.Fprintf(w, "greenwave replay: %3.0f%% %d acknowledged (%d rejected), %.0f/s%s\n", 100*frac, acked,
					s.ReadingsRejected+s.WeatherRejected, rate, at)
			}
			return
		}
		const width = 30
		n := int(frac * width)
		fmt.Fprintf(w, "\r[%s%s] %3.0f%% %d acked, %.0f/s%s ", strings.Repeat("=", n), strings.Repeat(" ", width-n), 100*frac, acked, rate, at)
		if final {
			fmt.Fprintln(w)
		}
	}
}
