package fiware

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	textclip "github.com/greenwave-city/greenwave/pkg/clip"
)

// TypeNotification is the type of an NGSI-LD Notification (ETSI GS CIM 009, 5.3.1).
const TypeNotification = "Notification"

// ErrNotNotification is returned when a body is not an NGSI-LD Notification: not a JSON object, another type,
// or no data array.
var ErrNotNotification = errors.New("body must be an NGSI-LD Notification: a JSON object with \"type\": \"Notification\" and a \"data\" array of entities")

// Notification is a decoded NGSI-LD Notification, the body a context broker (Orion-LD, Scorpio) posts to a
// subscription's endpoint. Its entities are decoded exactly as Decode decodes an upsert batch, in whichever
// form the subscription's notification.format asked for (normalized or keyValues).
type Notification struct {
	// ID is the notification's id ("urn:ngsi-ld:Notification:…") and SubscriptionID the subscription that sent
	// it, both as sent (empty when absent); NotifiedAt is the broker's timestamp, unparsed, for logs only.
	ID, SubscriptionID, NotifiedAt string
	// Entities are the entities of "data", in order; Index is the position in "data".
	Entities []Entity
}

// DecodeNotification reads an NGSI-LD Notification. The error is for a body that is not a notification at all
// (wrapping ErrNotNotification); problems with single entities come back as the entity's Violation, as from
// Decode. The optional members id, subscriptionId and notifiedAt must be strings when present: a broker always
// sends them, so anything else means the body did not come from one.
func DecodeNotification(body []byte) (Notification, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return Notification{}, ErrNotNotification
	}
	var raw struct {
		ID             json.RawMessage `json:"id"`
		Type           json.RawMessage `json:"type"`
		SubscriptionID json.RawMessage `json:"subscriptionId"`
		NotifiedAt     json.RawMessage `json:"notifiedAt"`
		Data           json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return Notification{}, fmt.Errorf("decode notification: %w", err)
	}
	var n Notification
	var typ string
	for _, m := range []struct {
		name string
		raw  json.RawMessage
		dst  *string
	}{{"id", raw.ID, &n.ID}, {"type", raw.Type, &typ}, {"subscriptionId", raw.SubscriptionID, &n.SubscriptionID}, {"notifiedAt", raw.NotifiedAt, &n.NotifiedAt}} {
		if m.raw == nil {
			continue
		}
		if err := json.Unmarshal(m.raw, m.dst); err != nil {
			return Notification{}, fmt.Errorf("%w: %s must be a string, got %s", ErrNotNotification, m.name, clip(m.raw))
		}
	}
	if typ != TypeNotification {
		return Notification{}, fmt.Errorf("%w: type is %q", ErrNotNotification, textclip.ID(typ))
	}
	if t := bytes.TrimSpace(raw.Data); len(t) == 0 || t[0] != '[' {
		return Notification{}, fmt.Errorf("%w: data is missing or not an array", ErrNotNotification)
	}
	es, err := Decode(raw.Data)
	if err != nil {
		return Notification{}, fmt.Errorf("decode notification data: %w", err)
	}
	n.Entities = es
	return n, nil
}
