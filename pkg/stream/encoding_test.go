package stream

import (
	"bytes"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"
)

func TestValueEncodings(t *testing.T) {
	t.Parallel()
	plain := []byte(strings.Repeat("greenwave ", 100))
	deflated, err := Deflate(plain)
	if err != nil {
		t.Fatal(err)
	}
	msg := func(enc string, v []byte) kafka.Message {
		return Output{Value: v, ContentEncoding: enc}.Message()
	}
	tests := []struct {
		name    string
		m       kafka.Message
		limit   int
		want    []byte
		wantErr string
	}{
		{"plain", msg("", plain), 10, plain, ""},
		{"deflate", msg(EncodingDeflate, deflated), len(plain), plain, ""},
		{"deflate over the limit", msg(EncodingDeflate, deflated), len(plain) - 1, nil, "more than"},
		{"corrupt", msg(EncodingDeflate, []byte{0xff, 0xfe, 0x00}), 1 << 20, nil, "inflate value"},
		{"unknown encoding", msg("zstd", plain), 1 << 20, nil, `unknown greenwave-content-encoding "zstd"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Value(tc.m, tc.limit)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Value = %v, want error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Fatalf("Value = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if len(deflated) >= len(plain)/4 {
		t.Fatalf("deflate kept %d of %d bytes of a repetitive value", len(deflated), len(plain))
	}
}

// FuzzValue feeds arbitrary compressed values to Value: it must return an error or at most limit bytes, never
// panic or allocate beyond the limit.
func FuzzValue(f *testing.F) {
	d, _ := Deflate([]byte("seed value"))
	f.Add(d)
	f.Add([]byte{0x01, 0x00, 0x00, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := Value(Output{Value: b, ContentEncoding: EncodingDeflate}.Message(), 4096)
		if err != nil {
			return
		}
		if len(got) > 4096 {
			t.Fatalf("%d bytes beyond the limit", len(got))
		}
		// What inflated deflates and inflates back to itself, and a plain value passes through unchanged.
		again, err := Deflate(got)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Value(Output{Value: again, ContentEncoding: EncodingDeflate}.Message(), len(got))
		if err != nil || !bytes.Equal(back, got) {
			t.Fatalf("round trip of %d bytes: %d bytes, %v", len(got), len(back), err)
		}
		if plain, err := Value(Output{Value: got}.Message(), len(got)); err != nil || !bytes.Equal(plain, got) {
			t.Fatalf("plain value changed: %v", err)
		}
	})
}
