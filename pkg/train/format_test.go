package train

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/encoding/protodelim"

	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// v1Fixture holds the snapshots (schema version 1, one per horizon, length-delimited) that the code before
// schema version 2 wrote for restartFixture's first v1FixtureFrames frames.
var v1Fixture = filepath.Join("testdata", "snapshots_v1.binpb")

const v1FixtureFrames = 35

// TestWriteV1Fixture regenerates the fixture; it only ran on the v1 code (GREENWAVE_WRITE_FIXTURES=1).
func TestWriteV1Fixture(t *testing.T) {
	if os.Getenv("GREENWAVE_WRITE_FIXTURES") == "" {
		t.Skip("set GREENWAVE_WRITE_FIXTURES=1 to rewrite the fixture")
	}
	cfg, frames := restartFixture()
	l := mustLearner(t, tinyNames, cfg)
	for _, fv := range frames[:v1FixtureFrames] {
		mustApply(t, l, fv[0].(frameT), fv[1].(vectorT))
	}
	var buf bytes.Buffer
	for _, s := range l.Snapshots() {
		if _, err := protodelim.MarshalTo(&buf, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(v1Fixture, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readFixture returns the length-delimited snapshots of a fixture file.
func readFixture(t testing.TB, path string) []*greenwavev1.ModelSnapshot {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r := bytes.NewReader(b)
	var out []*greenwavev1.ModelSnapshot
	for r.Len() > 0 {
		s := &greenwavev1.ModelSnapshot{}
		if err := protodelim.UnmarshalFrom(r, s); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, s)
	}
	return out
}
