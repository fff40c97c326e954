package topics

import (
	"slices"

	"github.com/segmentio/kafka-go"
)

// Access is what one service needs on Kafka, and nothing more: the topics it reads, the topics it writes, and
// its consumer group. docs/security-kafka.md shows it as a table; ServiceAccess is the source of truth.
type Access struct {
	Service string
	// Read lists the topics the service reads (Read implies Describe: metadata, offsets).
	Read []string
	// Write lists the topics the service writes (Write implies Describe).
	Write []string
	// Group is the service's consumer group ("" when it reads without one).
	Group string
}

// ServiceAccess returns the least-privilege access of every service for the topics names, with group(service)
// the consumer group names (app.Common.Group). Creating topics and ACLs is for the admin only: no service has a
// cluster permission.
func ServiceAccess(n Names, group func(service string) string) []Access {
	return []Access{
		{Service: "collector", Write: []string{n.Readings, n.Weather}},
		{Service: "cleaner", Group: group("cleaner"),
			Read:  []string{n.Readings, n.Weather, n.CleanerState},
			Write: []string{n.Features, n.DeadLetters, n.CleanerState, n.DetectorHealth}},
		{Service: "trainer", Group: group("trainer"),
			Read:  []string{n.Features, n.Models, n.TrainerState},
			Write: []string{n.Models, n.TrainerState, n.DeadLetters}},
		{Service: "predictor", Group: group("predictor"),
			Read:  []string{n.Features, n.Models, n.Predictions}, // its own predictions: those of uncommitted frames
			Write: []string{n.Predictions, n.DeadLetters}},
		{Service: "signalcontrol", Group: group("signalcontrol"),
			Read:  []string{n.Predictions, n.Plans, n.SignalState, n.Overrides},
			Write: []string{n.Plans, n.SignalState, n.Overrides, n.DeadLetters}},
	}
}

// ACLs returns the ACL entries that grant principal (e.g. "User:cleaner") exactly this access: Read on the
// topics read, Write on the topics written, Read on the consumer group (join, commit), all from any host,
// LITERAL resource names.
func (a Access) ACLs(principal string) []kafka.ACLEntry {
	entry := func(rt kafka.ResourceType, name string, op kafka.ACLOperationType) kafka.ACLEntry {
		return kafka.ACLEntry{ResourceType: rt, ResourceName: name, ResourcePatternType: kafka.PatternTypeLiteral,
			Principal: principal, Host: "*", Operation: op, PermissionType: kafka.ACLPermissionTypeAllow}
	}
	var out []kafka.ACLEntry
	for _, t := range slices.Sorted(slices.Values(a.Read)) {
		out = append(out, entry(kafka.ResourceTypeTopic, t, kafka.ACLOperationTypeRead))
	}
	for _, t := range slices.Sorted(slices.Values(a.Write)) {
		out = append(out, entry(kafka.ResourceTypeTopic, t, kafka.ACLOperationTypeWrite))
	}
	if a.Group != "" {
		out = append(out, entry(kafka.ResourceTypeGroup, a.Group, kafka.ACLOperationTypeRead))
	}
	return out
}
