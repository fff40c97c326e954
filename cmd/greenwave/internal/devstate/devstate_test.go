package devstate

import (
	"os"
	"path/filepath"
	"testing"
)

func env(m map[string]string) Lookup {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestPath(t *testing.T) {
	t.Parallel()
	if got := Path(env(nil)); got != "" {
		t.Errorf("Path(empty environment) = %q, want none: tests must never see the user's file", got)
	}
	if got := Path(env(map[string]string{EnvFile: "/x/dev.json", "HOME": "/home/u"})); got != "/x/dev.json" {
		t.Errorf("Path with %s = %q", EnvFile, got)
	}
	if got := Path(env(map[string]string{EnvFile: "off", "HOME": "/home/u"})); got != "" {
		t.Errorf("Path with %s=off = %q, want none", EnvFile, got)
	}
	if got := Path(env(map[string]string{"HOME": "/home/u"})); got == "" {
		t.Error("Path with HOME = none")
	}
}

func TestWriteLoadRemove(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sub", "dev.json")
	lookup := env(map[string]string{EnvFile: path})
	if s := Load(lookup); s != nil {
		t.Fatalf("Load before Write = %+v", s)
	}
	want := State{PID: os.Getpid(), Brokers: []string{"127.0.0.1:1"}, Services: map[string]Addrs{"trainer": {GRPC: "127.0.0.1:2", HTTP: "127.0.0.1:3"}}}
	if err := Write(path, want); err != nil {
		t.Fatal(err)
	}
	got := Load(lookup)
	if got == nil || got.Brokers[0] != "127.0.0.1:1" || got.GRPC("trainer", "d") != "127.0.0.1:2" || got.HTTP("trainer", "d") != "127.0.0.1:3" {
		t.Fatalf("Load = %+v", got)
	}
	if a := got.GRPC("collector", "def"); a != "def" {
		t.Errorf("GRPC of a missing service = %q, want the default", a)
	}
	// Another process's file is not removed.
	if err := Remove(path, os.Getpid()+1); err != nil {
		t.Fatal(err)
	}
	if Load(lookup) == nil {
		t.Fatal("Remove with another pid removed the file")
	}
	if err := Remove(path, os.Getpid()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("file still there after Remove: %v", err)
	}
}

// TestStaleFileIgnored: a file left by a killed `dev` (its process gone) is not used.
func TestStaleFileIgnored(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "dev.json")
	if err := Write(path, State{PID: 1 << 30, Brokers: []string{"127.0.0.1:1"}}); err != nil {
		t.Fatal(err)
	}
	if s := Load(env(map[string]string{EnvFile: path})); s != nil {
		t.Fatalf("Load of a dead process's file = %+v, want nil", s)
	}
	var nilState *State
	if a := nilState.GRPC("x", "def"); a != "def" {
		t.Errorf("nil State GRPC = %q", a)
	}
}
