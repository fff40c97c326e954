package wire

import (
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/greenwave-city/greenwave/pkg/congestion"
	"github.com/greenwave-city/greenwave/pkg/signal"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// checkEnumTable fails unless table maps every domain value and every value of the proto enum e, one to one.
func checkEnumTable[D comparable, P ~int32](t *testing.T, e protoreflect.EnumDescriptor, domain []D, table map[D]P) {
	t.Helper()
	back := map[P]D{}
	for d, p := range table {
		if prev, dup := back[p]; dup {
			t.Errorf("%s %v mapped from both %v and %v", e.Name(), p, prev, d)
		}
		back[p] = d
	}
	vals := e.Values()
	for i := range vals.Len() {
		if _, ok := back[P(vals.Get(i).Number())]; !ok {
			t.Errorf("%s value %s has no domain value", e.Name(), vals.Get(i).Name())
		}
	}
	for _, d := range domain {
		if _, ok := table[d]; !ok {
			t.Errorf("domain value %v has no %s value", d, e.Name())
		}
	}
	if len(table) != len(domain) || len(table) != vals.Len() {
		t.Errorf("table of %d entries, %d domain values, %d %s values", len(table), len(domain), vals.Len(), e.Name())
	}
}

// TestReasonTable fails when a plan reason is added to pkg/signal or to the proto enum without the other.
func TestReasonTable(t *testing.T) {
	t.Parallel()
	checkEnumTable(t, greenwavev1.PlanReason(0).Descriptor(), signal.Reasons(), reasons)
	for _, r := range signal.Reasons() {
		if Reason(ReasonProto(r)) != r {
			t.Errorf("reason %v does not round-trip", r)
		}
	}
}

// TestLevelTable fails when a congestion level is added to pkg/congestion or to the proto enum without the other.
func TestLevelTable(t *testing.T) {
	t.Parallel()
	checkEnumTable(t, greenwavev1.CongestionLevel(0).Descriptor(), congestion.Levels(), levels)
	for _, l := range congestion.Levels() {
		if got, ok := Level(LevelProto(l)); !ok || got != l {
			t.Errorf("level %v does not round-trip", l)
		}
	}
}
