package wire

import (
	"testing"

	"github.com/greenwave-city/greenwave/pkg/clean"
	"github.com/greenwave-city/greenwave/pkg/ingest"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// TestReasonTables fails when a reason is added on one side only: every domain reason (clean and ingest) maps
// to a RejectReason, one to one within its reading kind, and every RejectReason but UNSPECIFIED is the image of
// a domain reason.
func TestReasonTables(t *testing.T) {
	t.Parallel()
	used := map[greenwavev1.RejectReason]bool{}
	seen := map[string]clean.Reason{}
	if len(cleanReasons) != len(clean.Reasons()) {
		t.Errorf("the table maps %d clean reasons, clean.Reasons lists %d", len(cleanReasons), len(clean.Reasons()))
	}
	for _, r := range clean.Reasons() {
		p, ok := cleanReasons[r]
		if !ok || p == greenwavev1.RejectReason_REJECT_REASON_UNSPECIFIED {
			t.Errorf("clean reason %s has no RejectReason", r)
			continue
		}
		key := p.String()
		if r.IsWeather() {
			key = "weather/" + key
		}
		if other, dup := seen[key]; dup {
			t.Errorf("clean reasons %s and %s both map to %s", r, other, key)
		}
		seen[key] = r
		used[p] = true
	}
	for p := range ingestReasonsUsed(t) {
		used[p] = true
	}
	values := greenwavev1.RejectReason(0).Descriptor().Values()
	for i := range values.Len() {
		p := greenwavev1.RejectReason(values.Get(i).Number())
		if p != greenwavev1.RejectReason_REJECT_REASON_UNSPECIFIED && !used[p] {
			t.Errorf("%s is the image of no domain reason: add it to pkg/clean or pkg/ingest and to the table", p)
		}
	}
	if RejectReason("no such reason") != greenwavev1.RejectReason_REJECT_REASON_UNSPECIFIED {
		t.Error("an unknown reason maps to a RejectReason")
	}
}

// ingestReasonsUsed checks the ingest table against ingest.Reasons and returns its image.
func ingestReasonsUsed(t *testing.T) map[greenwavev1.RejectReason]bool {
	t.Helper()
	if len(ingestReasons) != len(ingest.Reasons()) {
		t.Errorf("the table maps %d ingest reasons, ingest.Reasons lists %d", len(ingestReasons), len(ingest.Reasons()))
	}
	used := map[greenwavev1.RejectReason]bool{}
	for _, r := range ingest.Reasons() {
		p := IngestRejectReason(r)
		if p == greenwavev1.RejectReason_REJECT_REASON_UNSPECIFIED {
			t.Errorf("ingest reason %s has no RejectReason", r)
		}
		if used[p] {
			t.Errorf("two ingest reasons map to %s", p)
		}
		used[p] = true
	}
	return used
}

// TestReadingKinds fails when a reading kind is added on one side only.
func TestReadingKinds(t *testing.T) {
	t.Parallel()
	values := greenwavev1.ReadingKind(0).Descriptor().Values()
	if got, want := len(readingKinds), values.Len(); got != want || len(ingest.Kinds())+1 != want {
		t.Fatalf("%d mapped kinds, %d domain kinds and UNSPECIFIED, %d proto kinds", got, len(ingest.Kinds())+1, want)
	}
	for i := range values.Len() {
		p := greenwavev1.ReadingKind(values.Get(i).Number())
		if ReadingKind(IngestKind(p)) != p {
			t.Errorf("%s does not map back and forth", p)
		}
	}
}
