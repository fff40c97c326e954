package wire

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"

	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// DecodeBatchJSON decodes the HTTP/JSON form of a ReadingBatch: the protobuf JSON mapping, with field names in
// either the canonical snake_case ("observed_at") or lowerCamelCase ("observedAt") and timestamps in RFC 3339.
// Unknown fields are an error rather than silently dropped, so a misspelt "speed_kph" is reported instead of
// arriving as a missing speed. A body that is JSON but does not fit the message fails with a *FieldError naming
// the JSON path ("readings[3].speed_kmh: want number, got \"fast\"").
func DecodeBatchJSON(b []byte) (*greenwavev1.ReadingBatch, error) {
	var batch greenwavev1.ReadingBatch
	if err := (protojson.UnmarshalOptions{}).Unmarshal(b, &batch); err != nil {
		if fe := locateJSONError(b, batch.ProtoReflect().Descriptor()); fe != nil {
			return nil, fmt.Errorf("decode reading batch JSON: %w", fe)
		}
		return nil, fmt.Errorf("decode reading batch JSON: %w", err)
	}
	return &batch, nil
}

// EncodeAckJSON encodes an ack the way the HTTP APIs answer: canonical snake_case names, every field present
// (an accepted count of 0 is written, not omitted), reasons as enum names.
func EncodeAckJSON(ack *greenwavev1.BatchAck) ([]byte, error) {
	b, err := (protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}).Marshal(ack)
	if err != nil {
		return nil, fmt.Errorf("encode ack JSON: %w", err)
	}
	return b, nil
}
