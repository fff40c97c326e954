package server

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/net/http2"
)

// startLimited runs a server with cfg's limits and the routes the tests need: /v1/deny answers 401 and
// /v1/forbid 403 without reading the body (as the services refuse before reading it), /v1/read reads the
// whole body first.
func startLimited(t *testing.T, cfg Config) Addrs {
	t.Helper()
	cfg.GRPCAddr, cfg.HTTPAddr, cfg.ShutdownTimeout = "127.0.0.1:0", "127.0.0.1:0", time.Second
	s, err := New(cfg, zap.NewNop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	s.Handle("POST /v1/deny", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusUnauthorized, ErrorBody{Error: ErrorDetail{Code: "UNAUTHENTICATED", Message: "token required"}})
	}))
	s.Handle("POST /v1/forbid", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusForbidden, ErrorBody{Error: ErrorDetail{Code: "PERMISSION_DENIED", Message: "not yours"}})
	}))
	s.Handle("POST /v1/read", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			WriteJSON(w, http.StatusRequestTimeout, ErrorBody{Error: ErrorDetail{Code: "DEADLINE_EXCEEDED", Message: err.Error()}})
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	return runServer(t, s)
}

// stalledPost sends a POST announcing a 1 MiB body, sends 10 bytes of it and then nothing more.
func stalledPost(t *testing.T, addr, path string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, "POST "+path+" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n{\"batch\":"); err != nil {
		t.Fatal(err)
	}
	return c
}

// A refused client with a stalled body gets its 401/403 at once, with Connection: close, and its connection
// is closed; an accepted route whose body stalls is cut off at HTTP_READ_TIMEOUT.
func TestStalledBodies(t *testing.T) {
	t.Parallel()
	addrs := startLimited(t, Config{HTTPReadTimeout: 300 * time.Millisecond})
	for _, tt := range []struct {
		path       string
		wantStatus int // 0: the connection is closed without a complete answer being required
		wantClose  bool
	}{
		{"/v1/deny", http.StatusUnauthorized, true},
		{"/v1/forbid", http.StatusForbidden, true},
		{"/v1/read", 0, false},
	} {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			c := stalledPost(t, addrs.HTTP, tt.path)
			r := bufio.NewReader(c)
			if tt.wantStatus != 0 {
				resp, err := http.ReadResponse(r, nil)
				if err != nil {
					t.Fatalf("read answer: %v", err)
				}
				resp.Body.Close()
				if resp.StatusCode != tt.wantStatus || resp.Close != tt.wantClose {
					t.Fatalf("answer %d, close %v; want %d, close %v", resp.StatusCode, resp.Close, tt.wantStatus, tt.wantClose)
				}
			}
			// The server closes the connection: reading reaches EOF (or a reset) instead of blocking forever.
			if _, err := io.Copy(io.Discard, r); err != nil && !strings.Contains(err.Error(), "reset") {
				t.Fatalf("read until close: %v", err)
			}
		})
	}
}

func TestConfigValidateLimits(t *testing.T) {
	t.Parallel()
	ok := Config{ShutdownTimeout: time.Second, HTTPReadTimeout: time.Second, HTTPWriteTimeout: time.Second, HTTPIdleTimeout: time.Second, GRPCMaxConcurrentStreams: 1}
	for _, tt := range []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"valid", func(*Config) {}, ""},
		{"read", func(c *Config) { c.HTTPReadTimeout = 0 }, "HTTP_READ_TIMEOUT must be positive"},
		{"write", func(c *Config) { c.HTTPWriteTimeout = -time.Second }, "HTTP_WRITE_TIMEOUT must be positive"},
		{"idle", func(c *Config) { c.HTTPIdleTimeout = 0 }, "HTTP_IDLE_TIMEOUT must be positive"},
		{"streams", func(c *Config) { c.GRPCMaxConcurrentStreams = 0 }, "GRPC_MAX_CONCURRENT_STREAMS must be at least 1"},
	} {
		c := ok
		tt.change(&c)
		got := strings.Join(c.Validate(), "; ")
		if got != tt.want {
			t.Errorf("%s: Validate() = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestAuthFailureLogRateLimited(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zap.InfoLevel)
	now := time.Unix(0, 0)
	a := NewAuthFailureLog(zap.New(core))
	a.now = func() time.Time { return now }
	for _, step := range []struct {
		advance  time.Duration
		failures int
		want     int // lines logged so far
	}{
		{0, authLogBurst + 5, authLogBurst}, // a burst, then suppressed
		{authLogInterval, 1, authLogBurst + 1},
		{0, 3, authLogBurst + 1},
		{3 * authLogInterval, 1, authLogBurst + 2},
	} {
		now = now.Add(step.advance)
		for range step.failures {
			a.Denied("192.0.2.1:4000", "grpc", "unknown_token", "")
		}
		if got := logs.Len(); got != step.want {
			t.Fatalf("after %d failures at %v: %d lines, want %d", step.failures, now, got, step.want)
		}
	}
	all := logs.All()
	if c := all[authLogBurst].ContextMap(); c["suppressed"] != int64(5) || c["peer"] != "192.0.2.1:4000" {
		t.Errorf("first line after the burst: %v, want suppressed 5 and the peer", c)
	}
	if c := all[authLogBurst+1].ContextMap(); c["suppressed"] != int64(3) {
		t.Errorf("later line: %v, want suppressed 3", c)
	}
}

// The gRPC server announces GRPC_MAX_CONCURRENT_STREAMS in its HTTP/2 SETTINGS: a client may not open more
// streams on one connection (grpc-go clients wait for one to end).
func TestGRPCMaxConcurrentStreams(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		set  uint32
		want uint32
	}{
		{0, defaultMaxConcurrentStreams}, // a Config built in code without limits
		{7, 7},
	} {
		addrs := startLimited(t, Config{GRPCMaxConcurrentStreams: tt.set})
		c, err := net.Dial("tcp", addrs.GRPC)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
			t.Fatal(err)
		}
		fr := http2.NewFramer(c, c)
		if err := fr.WriteSettings(); err != nil {
			t.Fatal(err)
		}
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		sf, ok := f.(*http2.SettingsFrame)
		if !ok {
			t.Fatalf("first frame %v, want SETTINGS", f)
		}
		if got, ok := sf.Value(http2.SettingMaxConcurrentStreams); !ok || got != tt.want {
			t.Errorf("GRPCMaxConcurrentStreams %d: SETTINGS_MAX_CONCURRENT_STREAMS %d (%v), want %d", tt.set, got, ok, tt.want)
		}
	}
}
