package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/greenwave-city/greenwave/pkg/clip"
)

// FieldError is a JSON body that does not fit its message, located by its JSON path as the client wrote it
// ("readings[3].speed_kmh"). The HTTP API returns Path as the field violation's field.
type FieldError struct {
	Path    string
	Problem string
}

// Error implements error: "readings[3].speed_kmh: want number, got string".
func (e *FieldError) Error() string {
	if e.Path == "" {
		return e.Problem
	}
	return e.Path + ": " + e.Problem
}

// locateJSONError finds where body breaks msg's JSON mapping, after protojson refused it without saying where
// (its errors give a line and column, not a path). It walks the JSON along the message descriptor and has
// protojson itself judge every leaf value alone — as the only field of an otherwise empty parent — so a
// located error is exactly a value protojson refuses. It returns nil when it cannot locate the problem (a
// syntax error, a duplicate field); the caller then reports protojson's own error.
func locateJSONError(body []byte, md protoreflect.MessageDescriptor) *FieldError {
	var v any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil
	}
	return walkMessage("", v, md)
}

func walkMessage(path string, v any, md protoreflect.MessageDescriptor) *FieldError {
	if v == nil {
		return nil
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return &FieldError{Path: path, Problem: "want object, got " + jsonKind(v)}
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys) // the first problem in a stable order
	for _, key := range keys {
		val := obj[key]
		p := key
		if path != "" {
			p = path + "." + key
		}
		fd := md.Fields().ByJSONName(key)
		if fd == nil {
			fd = md.Fields().ByName(protoreflect.Name(key))
		}
		if fd == nil {
			return &FieldError{Path: clip.ID(p), Problem: "unknown field"} // the client's key, cut short
		}
		if fe := walkField(p, key, val, md, fd); fe != nil {
			return fe
		}
	}
	return nil
}

func walkField(path, key string, v any, parent protoreflect.MessageDescriptor, fd protoreflect.FieldDescriptor) *FieldError {
	if v == nil {
		return nil // null is a field's default
	}
	if fd.IsList() {
		arr, ok := v.([]any)
		if !ok {
			return &FieldError{Path: path, Problem: "want array, got " + jsonKind(v)}
		}
		for i, el := range arr {
			p := fmt.Sprintf("%s[%d]", path, i)
			if fd.Kind() == protoreflect.MessageKind && !wellKnown(fd.Message()) {
				if fe := walkMessage(p, el, fd.Message()); fe != nil {
					return fe
				}
				continue
			}
			if fe := judgeLeaf(p, key, []any{el}, parent, fd); fe != nil {
				return fe
			}
		}
		return nil
	}
	if !fd.IsMap() && fd.Kind() == protoreflect.MessageKind && !wellKnown(fd.Message()) {
		return walkMessage(path, v, fd.Message())
	}
	return judgeLeaf(path, key, v, parent, fd)
}

// wellKnown reports messages with a JSON form of their own (Timestamp, Duration, wrappers, Struct…): judged
// whole by protojson, not walked as objects.
func wellKnown(md protoreflect.MessageDescriptor) bool {
	return strings.HasPrefix(string(md.FullName()), "google.protobuf.")
}

// judgeLeaf has protojson decode {key: v} into an empty parent message.
func judgeLeaf(path, key string, v any, parent protoreflect.MessageDescriptor, fd protoreflect.FieldDescriptor) *FieldError {
	b, err := json.Marshal(map[string]any{key: v})
	if err != nil {
		return nil
	}
	if err := protojson.Unmarshal(b, dynamicpb.NewMessage(parent)); err == nil {
		return nil
	}
	if arr, ok := v.([]any); ok && len(arr) == 1 {
		v = arr[0]
	}
	return &FieldError{Path: path, Problem: want(fd) + ", got " + jsonValue(v)}
}

// want says what a field takes, in JSON terms.
func want(fd protoreflect.FieldDescriptor) string {
	if fd.IsMap() {
		return "want object"
	}
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return "want boolean"
	case protoreflect.StringKind:
		return "want string"
	case protoreflect.BytesKind:
		return "want base64 string"
	case protoreflect.EnumKind:
		vals := fd.Enum().Values()
		names := make([]string, 0, vals.Len())
		for i := range vals.Len() {
			names = append(names, string(vals.Get(i).Name()))
		}
		return "want one of " + strings.Join(names, ", ")
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		return "want number"
	case protoreflect.MessageKind:
		switch fd.Message().FullName() {
		case "google.protobuf.Timestamp":
			return `want RFC 3339 timestamp string ("2026-11-30T07:00:00Z")`
		case "google.protobuf.Duration":
			return `want duration string ("60s")`
		}
		return "want " + string(fd.Message().Name())
	case protoreflect.Uint32Kind, protoreflect.Uint64Kind, protoreflect.Fixed32Kind, protoreflect.Fixed64Kind:
		return "want non-negative integer"
	default:
		return "want integer"
	}
}

func jsonKind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case json.Number:
		return "number"
	case bool:
		return "boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

// jsonValue shows a bad value briefly: scalars as written, containers by kind.
func jsonValue(v any) string {
	switch x := v.(type) {
	case string:
		if len(x) > 40 {
			x = x[:40] + "…"
		}
		return fmt.Sprintf("%q", x)
	case json.Number:
		return x.String()
	case bool:
		return fmt.Sprint(x)
	}
	return jsonKind(v)
}
