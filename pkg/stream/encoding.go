package stream

import (
	"bytes"
	"compress/flate"
	"fmt"
	"io"

	"github.com/segmentio/kafka-go"
)

// HeaderContentEncoding names the compression of a record's value, like HTTP's Content-Encoding: absent for a
// plain value, EncodingDeflate for one compressed with Deflate. Record-level compression keeps large state
// records small whatever the producer's batch compression, and the counters of produced bytes see what is
// really written. Consumers read values through Value, which undoes it.
const HeaderContentEncoding = "greenwave-content-encoding"

// EncodingDeflate is the HeaderContentEncoding of a value compressed with DEFLATE (RFC 1951).
const EncodingDeflate = "deflate"

// Deflate compresses b for an Output with ContentEncoding EncodingDeflate.
func Deflate(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, flate.DefaultCompression)
	if err == nil {
		_, err = w.Write(b)
	}
	if err == nil {
		err = w.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("deflate %d bytes: %w", len(b), err)
	}
	return buf.Bytes(), nil
}

// Value returns m's value with its content encoding (HeaderContentEncoding) undone. A value that decompresses
// to more than limit bytes, a corrupt one and an unknown encoding are errors, so that a bad record cannot
// allocate without bound.
func Value(m kafka.Message, limit int) ([]byte, error) {
	enc := Header(m, HeaderContentEncoding)
	switch string(enc) {
	case "":
		return m.Value, nil
	case EncodingDeflate:
		b, err := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(m.Value)), int64(limit)+1))
		if err != nil {
			return nil, fmt.Errorf("inflate value: %w", err)
		}
		if len(b) > limit {
			return nil, fmt.Errorf("inflate value: more than %d bytes", limit)
		}
		return b, nil
	default:
		return nil, fmt.Errorf("unknown %s %q", HeaderContentEncoding, enc)
	}
}
