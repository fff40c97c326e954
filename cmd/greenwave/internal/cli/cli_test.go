package cli

import (
	"errors"
	"flag"
	"strings"
	"testing"
)

func TestSeparateFileArgs(t *testing.T) {
	t.Parallel()
	flags, files := SeparateFileArgs([]string{"f.csv", "--speed", "max", "--json", "--batch=5", "--", "-odd.csv"}, "json")
	if strings.Join(flags, " ") != "--speed max --json --batch=5" || strings.Join(files, " ") != "f.csv -odd.csv" {
		t.Errorf("flags %q files %q", flags, files)
	}
}

func TestSpeed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in      string
		want    Speed
		wantStr string
		wantErr bool
	}{
		{in: "600", want: 600, wantStr: "600"},
		{in: "600x", want: 600, wantStr: "600"},
		{in: "max", want: 0, wantStr: "max"},
		{in: "0", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "fast", wantErr: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			var s Speed
			err := s.Set(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Set(%q) = %v", tc.in, err)
			}
			if err == nil && (s != tc.want || s.String() != tc.wantStr) {
				t.Errorf("Set(%q): %v %q, want %v %q", tc.in, float64(s), s.String(), float64(tc.want), tc.wantStr)
			}
		})
	}
}

func TestParseFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		args      []string
		wantHelp  bool
		wantUsage string
	}{
		{name: "ok", args: []string{"--n", "3"}},
		{name: "help", args: []string{"--help"}, wantHelp: true},
		{name: "bad value", args: []string{"--n", "x"}, wantUsage: "cmd: invalid value"},
		{name: "positional", args: []string{"now"}, wantUsage: `cmd: unexpected arguments ["now"] (see greenwave cmd --help)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var help strings.Builder
			fs := NewFlagSet("cmd", "[flags]", "\nDoes things.\n", &help)
			fs.Int("n", 1, "a number")
			err := ParseFlags(fs, tc.args)
			var ue *UsageError
			switch {
			case tc.wantHelp:
				if !errors.Is(err, flag.ErrHelp) || !strings.HasPrefix(help.String(), "Usage: greenwave cmd [flags]\n\nDoes things.\n\nFlags:\n") {
					t.Errorf("err %v, help %q", err, help.String())
				}
			case tc.wantUsage != "":
				if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.wantUsage) || help.Len() != 0 {
					t.Errorf("err %v (help %q), want a usage error with %q", err, help.String(), tc.wantUsage)
				}
			case err != nil:
				t.Errorf("err %v", err)
			}
		})
	}
}
