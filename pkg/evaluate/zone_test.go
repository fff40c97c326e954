package evaluate

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/greenwave-city/greenwave/pkg/features"
	"github.com/greenwave-city/greenwave/pkg/train"
)

// TestTimeZoneFromTopology: with the default configuration the calendar features and the signal replay's
// hour-of-week profile are in the topology's time_zone — the zone the services take — and equal to a run given
// that zone explicitly; a topology without time_zone computes them in UTC, which differs.
func TestTimeZoneFromTopology(t *testing.T) {
	t.Parallel()
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Fatal(err)
	}
	run := func(zone string, explicit *time.Location) string {
		t.Helper()
		topo := testTopology()
		topo.TimeZone = zone
		cfg := DefaultConfig()
		cfg.Clean.Location = explicit
		cfg.Train.Horizons = []time.Duration{time.Hour}
		sc := DefaultSignalConfig()
		sc.Warmup = 48 * time.Hour
		sc.ProfileZone, sc.Location = explicit, explicit
		cfg.Signals = &sc
		var b strings.Builder
		cfg.Observe = func(f features.Frame, v features.Vector, _ *train.Learner, _ train.Update) {
			fmt.Fprintln(&b, f.WindowStart.Unix(), v.ApproachID, v.Values)
		}
		e, err := New(topo, cfg)
		if err != nil {
			t.Fatal(err)
		}
		feed(t, e, 24*5, nil)
		rep, err := e.Finish()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%+v\n", *rep.Signals)
		return b.String()
	}
	fromTopology := run("Asia/Kolkata", nil)
	if explicit := run("", kolkata); fromTopology != explicit {
		t.Error("the topology's time_zone and the same zone given explicitly computed different features or plans")
	}
	if utc := run("", nil); fromTopology == utc {
		t.Error("Asia/Kolkata and UTC computed the same features: the zone was ignored")
	}
}
