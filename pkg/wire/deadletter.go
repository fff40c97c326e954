package wire

import (
	"fmt"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/greenwave-city/greenwave/pkg/stream"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// DeadLetter builds the dead-letter record of input record m for dlqTopic; it is a stream.DeadLetterFunc. Its
// event id is deterministic, so a replayed rejection produces the same dead letter.
func DeadLetter(service, dlqTopic string, m kafka.Message, rej *stream.RejectError) stream.Output {
	return DeadLetterWithID(service, dlqTopic, m, rej, "")
}

// DeadLetterWithID is DeadLetter with the event id id instead of the one derived from m's offset (for records
// that have none, such as buffered readings rejected when their window closes); "" keeps the derived id.
func DeadLetterWithID(service, dlqTopic string, m kafka.Message, rej *stream.RejectError, id string) stream.Output {
	if id == "" {
		id = fmt.Sprintf("%s/%d/%d/%s", m.Topic, m.Partition, m.Offset, stream.ReasonLabel(rej.Reason))
	}
	dl := &greenwavev1.DeadLetter{
		SchemaVersion:   SchemaVersion,
		EventId:         id,
		Service:         service,
		SourceTopic:     m.Topic,
		SourcePartition: int32(m.Partition),
		SourceOffset:    m.Offset,
		Key:             m.Key,
		Payload:         m.Value,
		Reason:          rej.Reason,
		Detail:          rej.Detail,
		SourceEventId:   rej.EventID,
	}
	if rej.EventID == "" {
		dl.SourceEventId = string(stream.Header(m, stream.HeaderEventID))
	}
	if !rej.ObservedAt.IsZero() {
		dl.ObservedAt = timestamppb.New(rej.ObservedAt)
	}
	out, _ := TopicDeadLetters.EncodeTo(dlqTopic, dl) // a DeadLetter built from valid fields always marshals
	out.Key = m.Key
	return out
}
