package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/cli"
)

func TestNTCIPCommand(t *testing.T) {
	t.Setenv("NTCIP_TEST_AUTH", "auth-pass-123")
	t.Setenv("NTCIP_TEST_PRIV", "priv-pass-456")
	tests := []struct {
		name     string
		args     []string
		usage    bool   // a *cli.UsageError (exit status 2)
		contains string // in the error or stdout
	}{
		{name: "no config", args: []string{"ntcip"}, usage: true, contains: "--config is required"},
		{name: "check", args: []string{"ntcip", "--config", "internal/ntcip/testdata/ntcip.yaml", "--check"}, contains: "1 controllers, configuration valid"},
		{name: "missing file", args: []string{"ntcip", "--config", "internal/ntcip/testdata/nope.yaml"}, usage: true, contains: "nope.yaml"},
		{name: "bad log level", args: []string{"ntcip", "--config", "x", "--log-level", "loud"}, usage: true, contains: "--log-level"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tc.args, &stdout, &stderr)
			var ue *cli.UsageError
			if tc.usage != errors.As(err, &ue) {
				t.Fatalf("error %v: usage error %v, want %v", err, errors.As(err, &ue), tc.usage)
			}
			got := stdout.String()
			if err != nil {
				got = err.Error()
			}
			if !strings.Contains(got, tc.contains) {
				t.Errorf("got %q, want it to contain %q", got, tc.contains)
			}
		})
	}
}
