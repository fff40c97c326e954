package topology

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// scatsFixture mimics the Boroondara extract: BOM, two header rows, volumes, trailing empty fields.
const scatsFixture = "\ufeff,,,,,Start Time,0:00,0:15,,,\n" +
	"SCATS Number,Location,CD_MELWAY,NB_LATITUDE,NB_LONGITUDE,Date,V00,V01,,,\n" +
	"0970,WARRIGAL_RD N of HIGH STREET_RD,060 G10,-37.86703,145.09159,1/10/2006,86,83,,,\n" +
	"0970,WARRIGAL_RD S of HIGH STREET_RD,060 G10,-37.86703,145.09159,1/10/2006,52,40,,,\n" +
	"0970,HIGH STREET_RD E of WARRIGAL_RD,060 G10,-37.86703,145.09159,1/10/2006,10,12,,,\n" +
	"0970,HIGH STREET_RD W of WARRIGAL_RD,060 G10,-37.86703,145.09159,1/10/2006,9,8,,,\n" +
	"0970,WARRIGAL_RD N OF HIGH STREET_RD,060 G10,-37.86703,145.09159,2/10/2006,80,81,,,\n" +
	"3001,BARKERS_RD E of HIGH_ST,045 E7,-37.8,145.0,1/10/2006,1,2,,,\n" +
	"3001,HIGH_ST NE of BARKERS_RD,045 E7,-37.8,145.0,1/10/2006,1,2,,,\n" +
	"3001,CHURCH_ST SW of BARKERS_RD,045 E7,-37.8,145.0,1/10/2006,1,2,,,\n" +
	"3001,OFFRAMP X,045 E7,-37.8,145.0,1/10/2006,1,2,,,\n" +
	"4812,MADDEN_GV S OF SWAN_ST,1,1,1,1/10/2006,1,1,,,\n" +
	"4812,SWAN_ST NE OF MADDEN_GV,1,1,1,1/10/2006,1,1,,,\n" +
	"2825,BURKE_RD S OF EASTERN_FWY,1,1,1,1/10/2006,1,1,,,\n"

func TestSCATSApproachID(t *testing.T) {
	tests := []struct{ location, want string }{
		{"WARRIGAL_RD N of HIGH STREET_RD", "N_WARRIGAL_RD"},
		{"WARRIGAL_RD N OF HIGH STREET_RD", "N_WARRIGAL_RD"},
		{"  warrigal_rd  n  of high street_rd ", "N_WARRIGAL_RD"},
		{"HIGH STREET_RD E of WARRIGAL_RD", "E_HIGH_STREET_RD"},
		{"CAMBERWELL_RD NW of BURKE_RD", "NW_CAMBERWELL_RD"},
		{"S.E.ARTERIAL N OF HIGH_ST", "N_S.E.ARTERIAL"},
		{"OFFRAMP X", "OFFRAMP_X"},
		{"ROAD UP of THING", "ROAD_UP_OF_THING"},
		{"N of X", "N_OF_X"}, // no road before the direction
		{"a/b c", "A_B_C"},
		{"", "APPROACH"},
		{"///", "APPROACH"},
	}
	for _, tc := range tests {
		t.Run(tc.location, func(t *testing.T) {
			if got := SCATSApproachID(tc.location); got != tc.want {
				t.Errorf("SCATSApproachID(%q) = %q, want %q", tc.location, got, tc.want)
			}
		})
	}
	if got := SCATSDetectorID(" 0970 ", "WARRIGAL_RD N of HIGH STREET_RD"); got != "0970-N_WARRIGAL_RD" {
		t.Errorf("SCATSDetectorID = %q", got)
	}
}

func TestImportSCATS(t *testing.T) {
	var skipped []string
	topo, err := ImportSCATS(strings.NewReader(scatsFixture), SCATSOptions{OnSkip: func(site, _ string) { skipped = append(skipped, site) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(skipped) != 1 || skipped[0] != "2825" {
		t.Errorf("skipped %v, want [2825]", skipped)
	}
	if topo.TimeZone != SCATSTimeZone {
		t.Errorf("time_zone %q, want %q", topo.TimeZone, SCATSTimeZone)
	}
	if other, err := ImportSCATS(strings.NewReader(scatsFixture), SCATSOptions{TimeZone: "Europe/London"}); err != nil || other.TimeZone != "Europe/London" {
		t.Errorf("SCATSOptions.TimeZone: time_zone %q, %v", other.TimeZone, err)
	}
	if _, err := ImportSCATS(strings.NewReader(scatsFixture), SCATSOptions{TimeZone: "Nowhere/City"}); err == nil || !strings.Contains(err.Error(), "time_zone") {
		t.Errorf("an unknown SCATSOptions.TimeZone imported: %v", err)
	}
	if err := topo.Validate(); err != nil {
		t.Fatal(err)
	}
	ix := NewIndex(topo)
	if got := ix.IntersectionIDs(); strings.Join(got, ",") != "0970,3001,4812" {
		t.Fatalf("intersections %v", got)
	}
	tests := []struct {
		id, name, ns, ew string
		phases           int
	}{
		{"0970", "HIGH_STREET_RD / WARRIGAL_RD", "N_WARRIGAL_RD,S_WARRIGAL_RD", "E_HIGH_STREET_RD,W_HIGH_STREET_RD", 2},
		// NE/SW join N/S; the unknown direction joins the phase with fewer approaches.
		{"3001", "BARKERS_RD / CHURCH_ST / HIGH_ST / OFFRAMP_X", "NE_HIGH_ST,SW_CHURCH_ST", "E_BARKERS_RD,OFFRAMP_X", 2},
	}
	for _, tc := range tests {
		t.Run(tc.id, func(t *testing.T) {
			in, _ := ix.Intersection(tc.id)
			if in.Name != tc.name || in.Window() != SCATSWindowS || len(in.Phases) != tc.phases {
				t.Fatalf("intersection %+v", in)
			}
			if got := strings.Join(in.Phases[0].Approaches, ","); got != tc.ns {
				t.Errorf("NS phase %s, want %s", got, tc.ns)
			}
			if got := strings.Join(in.Phases[1].Approaches, ","); got != tc.ew {
				t.Errorf("EW phase %s, want %s", got, tc.ew)
			}
			for _, a := range in.Approaches {
				if a.Lanes != 2 || a.SaturationFlowVPHPerLane != 1800 || len(a.Detectors) != 1 || a.Detectors[0] != tc.id+"-"+a.ID {
					t.Errorf("approach %+v", a)
				}
			}
			ph := in.Phases[0]
			if ph.MinGreenS != 8 || ph.MaxGreenS != 60 || ph.YellowS != 4 || ph.AllRedS != 2 || ph.LostTimeS != 4 || in.Timing.MinCycleS != 40 || in.Timing.MaxCycleS != 150 {
				t.Errorf("timing defaults not applied: %+v %+v", ph, in.Timing)
			}
			if in.FixedTime["NS"] != 39 || in.FixedTime["EW"] != 39 {
				t.Errorf("fixed time %v, want 39 s each (90 s cycle)", in.FixedTime)
			}
		})
	}
	// Every approach on one axis: one phase per approach.
	in, _ := ix.Intersection("4812")
	if len(in.Phases) != 2 || in.Phases[0].ID != "S_MADDEN_GV" || in.Phases[1].ID != "NE_SWAN_ST" {
		t.Errorf("4812 phases %+v", in.Phases)
	}
	// The detector ids are what the replay adapter derives with SCATSDetectorID.
	if ref, ok := ix.Detector(SCATSDetectorID("0970", "WARRIGAL_RD N of HIGH STREET_RD")); !ok || ref.Approach != "N_WARRIGAL_RD" {
		t.Errorf("detector lookup %+v %v", ref, ok)
	}
}

func TestImportSCATSErrors(t *testing.T) {
	header := "SCATS Number,Location,Date\n"
	tests := []struct{ name, in, want string }{
		{"no header", "a,b\nc,d\n", "no header row"},
		{"empty", "", "no header row"},
		{"empty site", header + ",X N of Y,1\n", "line 2: SCATS Number is empty"},
		{"unsafe site", header + "1/2,X N of Y,1\n", `line 2: SCATS Number "1/2"`},
		{"empty location", header + "1, ,1\n", "line 2: Location is empty"},
		{"short row", header + "1\n", "line 2: 1 fields"},
		{"bad quote", header + "1,\"X N of Y,1\n", "line 2"},
		{"collision", header + "1,A_RD N of B,1\n1,A RD N of C,1\n1,B E of A,1\n", `line 3: site 1: locations "A_RD N of B" and "A RD N of C" both map to approach "N_A_RD"`},
		{"only single-approach sites", header + "1,A N of B,1\n", "no site with at least two approaches"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ImportSCATS(strings.NewReader(tc.in), SCATSOptions{})
			var se *SCATSImportError
			if !errors.As(err, &se) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ImportSCATS = %v, want a *SCATSImportError containing %q", err, tc.want)
			}
		})
	}
}

// TestImportSCATSRealFile checks the importer on the real Boroondara extract when it is present (it is not part
// of the repository); the counts are those documented in docs/signal-control.md.
func TestImportSCATSRealFile(t *testing.T) {
	const path = "/work/shared/data/boroondara_scats_oct2006/Scats Data October 2006.csv"
	f, err := os.Open(path)
	if err != nil {
		t.Skipf("SCATS data not available: %v", err)
	}
	defer f.Close()
	skipped := 0
	topo, err := ImportSCATS(f, SCATSOptions{OnSkip: func(string, string) { skipped++ }})
	if err != nil {
		t.Fatal(err)
	}
	approaches := 0
	for _, in := range topo.Intersections {
		approaches += len(in.Approaches)
	}
	if len(topo.Intersections) != 37 || approaches != 136 || skipped != 3 {
		t.Errorf("got %d intersections, %d approaches, %d skipped; want 37, 136, 3", len(topo.Intersections), approaches, skipped)
	}
}

func FuzzImportSCATS(f *testing.F) {
	f.Add([]byte(scatsFixture))
	f.Add([]byte("SCATS Number,Location\n1,A N of B\n1,B E of A\n"))
	f.Add([]byte("\ufeffSCATS Number,Location\n\"1\",\"A\"\"N of B\"\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		topo, err := ImportSCATS(strings.NewReader(string(b)), SCATSOptions{})
		if err != nil {
			return
		}
		if err := topo.Validate(); err != nil {
			t.Fatalf("ImportSCATS returned an invalid topology: %v", err)
		}
		for _, in := range topo.Intersections {
			for _, a := range in.Approaches {
				if a.Detectors[0] != SCATSDetectorID(in.ID, a.ID) && a.Detectors[0] != in.ID+"-"+a.ID {
					t.Fatalf("detector %q of %s/%s", a.Detectors[0], in.ID, a.ID)
				}
			}
		}
	})
}
