package collector

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/greenwave-city/greenwave/pkg/stream"
)

// recordingPublisher records the topics of every Write call and fails the calls listed in fail.
type recordingPublisher struct {
	calls [][]string
	fail  map[int]bool
}

func (r *recordingPublisher) Write(_ context.Context, outs ...stream.Output) error {
	var topics []string
	for _, o := range outs {
		topics = append(topics, o.Topic)
	}
	r.calls = append(r.calls, topics)
	if r.fail[len(r.calls)-1] {
		return errors.New("broker down")
	}
	return nil
}

func TestWeatherFirst(t *testing.T) {
	t.Parallel()
	const wx, rd = "weather", "readings"
	out := func(topics ...string) []stream.Output {
		var o []stream.Output
		for _, tp := range topics {
			o = append(o, stream.Output{Topic: tp})
		}
		return o
	}
	tests := []struct {
		name    string
		outs    []stream.Output
		fail    map[int]bool
		want    [][]string
		wantErr bool
	}{
		{name: "readings only: one write", outs: out(rd, rd), want: [][]string{{rd, rd}}},
		{name: "weather only: one write", outs: out(wx), want: [][]string{{wx}}},
		{name: "mixed: weather acknowledged first, then the rest in order", outs: out(rd, wx, rd, wx),
			want: [][]string{{wx, wx}, {rd, rd}}},
		{name: "failed weather write: the readings are not written", outs: out(rd, wx), fail: map[int]bool{0: true},
			want: [][]string{{wx}}, wantErr: true},
		{name: "failed readings write fails the call", outs: out(rd, wx), fail: map[int]bool{1: true},
			want: [][]string{{wx}, {rd}}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := &recordingPublisher{fail: tc.fail}
			err := weatherFirst{pub: rec, weather: wx}.Write(t.Context(), tc.outs...)
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v, want error %v", err, tc.wantErr)
			}
			if !slices.EqualFunc(rec.calls, tc.want, slices.Equal) {
				t.Errorf("writes %v, want %v", rec.calls, tc.want)
			}
		})
	}
}
