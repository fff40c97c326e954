package wire

import (
	"testing"

	"github.com/greenwave-city/greenwave/pkg/models"
	"github.com/greenwave-city/greenwave/pkg/train"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

func TestModelFilter(t *testing.T) {
	t.Parallel()
	s := &train.Snapshot{ModelID: "i1/n/900/flow", IntersectionID: "i1", ApproachID: "n", HorizonS: 900, Target: train.TargetFlow}
	tests := []struct {
		name string
		f    *greenwavev1.ModelFilter
		want bool
	}{
		{"nil", nil, true},
		{"all fields", &greenwavev1.ModelFilter{IntersectionIds: []string{"i1"}, ApproachIds: []string{"n"}, HorizonsS: []uint32{900}, Target: greenwavev1.Target_TARGET_FLOW}, true},
		{"other target", &greenwavev1.ModelFilter{Target: greenwavev1.Target_TARGET_SPEED}, false},
		{"unknown target", &greenwavev1.ModelFilter{Target: 42}, false},
		{"other horizon", &greenwavev1.ModelFilter{HorizonsS: []uint32{300}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := models.Match(ModelFilter(tc.f), s); got != tc.want {
				t.Errorf("Match(ModelFilter(%v)) = %v, want %v", tc.f, got, tc.want)
			}
		})
	}
}
