// Package devstate is where a running `greenwave dev` leaves its addresses — the embedded broker and every
// service's gRPC and HTTP address — so the other commands (models, plans, tail, topics, status, replay) find the
// dev stack without flags. Flags and environment variables still win over the file.
//
// The file is JSON at $GREENWAVE_DEV_FILE, else <user cache dir>/greenwave/dev.json (the directory `greenwave
// dev` already builds the services into). It is one file per user rather than one per working directory because
// the CLI is often run from another directory or terminal than `dev`; a second `dev` takes it over. `dev` writes
// it once every service is ready and removes it on exit; a file whose process is gone (`dev` was killed) is
// ignored, so stale addresses are never used.
package devstate

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"time"
)

// EnvFile names the file explicitly (empty: the default path; "off": never read or write one).
const EnvFile = "GREENWAVE_DEV_FILE"

// Addrs are a service's bound addresses, as pkg/server writes them.
type Addrs struct {
	GRPC string `json:"grpc"`
	HTTP string `json:"http"`
}

// State is what a running `greenwave dev` publishes.
type State struct {
	// PID is the `greenwave dev` process: the file is ignored once it is gone.
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
	Brokers []string  `json:"brokers"`
	// TopicPrefix is the services' TOPIC_PREFIX ("" in dev).
	TopicPrefix string `json:"topic_prefix"`
	// Services maps the service name (collector, cleaner, trainer, predictor, signalcontrol) to its addresses.
	Services map[string]Addrs `json:"services"`
	LogFile  string           `json:"log_file,omitempty"`
}

// Lookup reads an environment variable (os.LookupEnv, or a test's map).
type Lookup func(string) (string, bool)

// Path returns the state file's path, or "" when there is none: EnvFile is "off", or no cache directory can be
// derived from the environment. It reads the environment only through lookup, so a test with an empty
// environment never sees the user's real file.
func Path(lookup Lookup) string {
	if v, ok := lookup(EnvFile); ok && v != "" {
		if v == "off" {
			return ""
		}
		return v
	}
	dir := cacheDir(lookup)
	if dir == "" {
		return ""
	}
	return filepath.Join(dir, "greenwave", "dev.json")
}

// cacheDir is os.UserCacheDir computed from lookup.
func cacheDir(lookup Lookup) string {
	get := func(k string) string { v, _ := lookup(k); return v }
	switch runtime.GOOS {
	case "windows":
		return get("LocalAppData")
	case "darwin", "ios":
		if h := get("HOME"); h != "" {
			return filepath.Join(h, "Library", "Caches")
		}
		return ""
	default:
		if d := get("XDG_CACHE_HOME"); filepath.IsAbs(d) {
			return d
		}
		if h := get("HOME"); h != "" {
			return filepath.Join(h, ".cache")
		}
		return ""
	}
}

// Write publishes s at path atomically (readers never see half a file).
func Write(path string, s State) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write dev state: %w", err)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("write dev state: %w", err)
	}
	tmp := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write dev state: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write dev state: %w", err)
	}
	return nil
}

// Remove deletes the file at path if it is still pid's: a second `dev` that took it over keeps it.
func Remove(path string, pid int) error {
	s, err := read(path)
	if err != nil || s.PID != pid {
		return nil //nolint:nilerr // not ours, or already gone: nothing to remove
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove dev state: %w", err)
	}
	return nil
}

// Load returns the running dev stack's state, or nil when there is none: no file, an unreadable one, or one
// whose process has exited.
func Load(lookup Lookup) *State {
	path := Path(lookup)
	if path == "" {
		return nil
	}
	s, err := read(path)
	if err != nil || !alive(s.PID) {
		return nil
	}
	return s
}

func read(path string) (*State, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// alive reports whether process pid exists (signal 0 checks without signalling).
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	err = p.Signal(syscall.Signal(0))
	return err == nil || errors.Is(err, syscall.EPERM)
}

// GRPC returns the service's gRPC address from s, or def when s is nil or lacks it.
func (s *State) GRPC(service, def string) string {
	if s != nil && s.Services[service].GRPC != "" {
		return s.Services[service].GRPC
	}
	return def
}

// HTTP returns the service's HTTP address from s, or def when s is nil or lacks it.
func (s *State) HTTP(service, def string) string {
	if s != nil && s.Services[service].HTTP != "" {
		return s.Services[service].HTTP
	}
	return def
}
