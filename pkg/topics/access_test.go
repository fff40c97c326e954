package topics

import (
	"slices"
	"testing"

	"github.com/segmentio/kafka-go"
)

// TestServiceAccess: every service's ACLs are literal topic Read/Write and group Read only (no cluster
// operation, no topic creation), every topic a service writes is one some service reads or an outside consumer
// does, and the predictor may not write the plans.
func TestServiceAccess(t *testing.T) {
	t.Parallel()
	n := DefaultNames("p.")
	access := ServiceAccess(n, func(s string) string { return "p.greenwave." + s })
	if len(access) != 5 {
		t.Fatalf("%d services, want 5", len(access))
	}
	for _, a := range access {
		for _, e := range a.ACLs("User:" + a.Service) {
			if e.Principal != "User:"+a.Service || e.PermissionType != kafka.ACLPermissionTypeAllow || e.ResourcePatternType != kafka.PatternTypeLiteral {
				t.Errorf("%s: %+v", a.Service, e)
			}
			switch {
			case e.ResourceType == kafka.ResourceTypeTopic && (e.Operation == kafka.ACLOperationTypeRead || e.Operation == kafka.ACLOperationTypeWrite):
			case e.ResourceType == kafka.ResourceTypeGroup && e.Operation == kafka.ACLOperationTypeRead && e.ResourceName == a.Group:
			default:
				t.Errorf("%s: ACL beyond least privilege: %+v", a.Service, e)
			}
		}
		if a.Service == "predictor" && slices.Contains(a.Write, n.Plans) {
			t.Error("predictor may write the plans")
		}
	}
	if got := len(access[0].ACLs("User:collector")); got != 2 {
		t.Errorf("collector: %d ACLs, want Write on readings and weather only", got)
	}
}
