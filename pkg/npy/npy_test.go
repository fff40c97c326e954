package npy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"
)

// encode builds a .npy file the way numpy.save does: magic, version, header length, the header dictionary padded
// with spaces to a 64-byte boundary and ended by '\n', then the data.
func encode(major byte, dict string, data []byte) []byte {
	pre := 10
	if major >= 2 {
		pre = 12
	}
	h := dict
	for (pre+len(h)+1)%64 != 0 {
		h += " "
	}
	h += "\n"
	var b bytes.Buffer
	b.WriteString(Magic)
	b.WriteByte(major)
	b.WriteByte(0)
	if major >= 2 {
		_ = binary.Write(&b, binary.LittleEndian, uint32(len(h)))
	} else {
		_ = binary.Write(&b, binary.LittleEndian, uint16(len(h)))
	}
	b.WriteString(h)
	b.Write(data)
	return b.Bytes()
}

func f64s(order binary.ByteOrder, xs ...float64) []byte {
	b := make([]byte, 8*len(xs))
	for i, x := range xs {
		order.PutUint64(b[8*i:], math.Float64bits(x))
	}
	return b
}

func TestRead(t *testing.T) {
	t.Parallel()
	le := binary.LittleEndian
	tests := []struct {
		name  string
		file  []byte
		shape []int
		data  []float64
	}{
		{"v1 2-D", encode(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", f64s(le, 1, 2, 3, 4, 5, 6)), []int{2, 3}, []float64{1, 2, 3, 4, 5, 6}},
		{"v2 1-D", encode(2, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", f64s(le, -1.5, 0, 1e300)), []int{3}, []float64{-1.5, 0, 1e300}},
		{"v3 scalar", encode(3, "{'descr': '<f8', 'fortran_order': False, 'shape': (), }", f64s(le, 42)), []int{}, []float64{42}},
		{"big endian", encode(1, "{'descr': '>f8', 'fortran_order': False, 'shape': (2,), }", f64s(binary.BigEndian, 3.25, -7)), []int{2}, []float64{3.25, -7}},
		{"key order and quotes", encode(1, `{"shape": (1, 1), "fortran_order": False, "descr": "<f8"}`, f64s(le, 9)), []int{1, 1}, []float64{9}},
		{"python 2 longs", encode(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2L, 1L), }", f64s(le, 1, 2)), []int{2, 1}, []float64{1, 2}},
		{"empty", encode(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (0, 4), }", nil), []int{0, 4}, []float64{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, err := Read(bytes.NewReader(tc.file))
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if !reflect.DeepEqual(a.Shape, tc.shape) || !reflect.DeepEqual(a.Data, tc.data) {
				t.Fatalf("got shape %v data %v, want %v %v", a.Shape, a.Data, tc.shape, tc.data)
			}
		})
	}
}

func TestReadErrors(t *testing.T) {
	t.Parallel()
	le := binary.LittleEndian
	ok := "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }"
	tests := []struct {
		name string
		file []byte
		want error
		msg  string
	}{
		{"empty file", nil, ErrFormat, "preamble"},
		{"bad magic", []byte("\x93NUMPX\x01\x00\x00\x00"), ErrFormat, "magic"},
		{"version 4", append([]byte(Magic), 4, 0, 0, 0), ErrUnsupported, "version 4.0"},
		{"float32", encode(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", f64s(le, 1)), ErrUnsupported, `dtype "<f4"`},
		{"int64", encode(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", f64s(le, 1, 2)), ErrUnsupported, `dtype "<i8"`},
		{"object", encode(1, "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", nil), ErrUnsupported, `dtype "|O"`},
		{"fortran order", encode(1, "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 2), }", f64s(le, 1, 2, 3, 4)), ErrUnsupported, "Fortran order"},
		{"truncated data", encode(1, ok, f64s(le, 1)), ErrFormat, "1 of 2"},
		{"trailing bytes", encode(1, ok, append(f64s(le, 1, 2), 0)), ErrFormat, "1 bytes after"},
		{"missing shape", encode(1, "{'descr': '<f8', 'fortran_order': False, }", nil), ErrFormat, `no "shape"`},
		{"unknown key", encode(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), 'x': 1}", nil), ErrFormat, `unknown key "x"`},
		{"repeated key", encode(1, "{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': (2,)}", nil), ErrFormat, "repeated"},
		{"negative dimension", encode(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (-2,), }", nil), ErrFormat, "dimension"},
		{"huge shape", encode(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (100000, 100000), }", nil), ErrUnsupported, "elements"},
		{"not a dict", encode(1, "['descr']", nil), ErrFormat, "'{'"},
		{"truncated header", []byte(Magic + "\x01\x00\x40\x00{'descr'"), ErrFormat, "header"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Read(bytes.NewReader(tc.file))
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Read error %v, want %v containing %q", err, tc.want, tc.msg)
			}
		})
	}
}

func TestMatrixAndVector(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		a            Array
		rows         [][]float64
		vec          []float64
		matErr, vErr bool
	}{
		{"2x2", Array{Shape: []int{2, 2}, Data: []float64{1, 2, 3, 4}}, [][]float64{{1, 2}, {3, 4}}, nil, false, true},
		{"column", Array{Shape: []int{2, 1}, Data: []float64{1, 2}}, [][]float64{{1}, {2}}, []float64{1, 2}, false, false},
		{"1-D", Array{Shape: []int{3}, Data: []float64{1, 2, 3}}, nil, []float64{1, 2, 3}, true, false},
		{"3-D", Array{Shape: []int{1, 1, 1}, Data: []float64{1}}, nil, nil, true, true},
		{"no rows", Array{Shape: []int{0, 3}}, [][]float64{}, nil, false, true},
		{"rows without columns", Array{Shape: []int{MaxElements, 0}}, nil, nil, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, err := tc.a.Matrix()
			if (err != nil) != tc.matErr || !tc.matErr && !reflect.DeepEqual(m, tc.rows) {
				t.Fatalf("Matrix = %.200s, %v", fmt.Sprint(m), err)
			}
			v, err := tc.a.Vector()
			if (err != nil) != tc.vErr || !tc.vErr && !reflect.DeepEqual(v, tc.vec) {
				t.Fatalf("Vector = %v, %v", v, err)
			}
		})
	}
}

// TestReadNumpyFixture reads a file written by numpy.save itself (testdata/gen.py).
func TestReadNumpyFixture(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("testdata/numpy_3x2.npy")
	if err != nil {
		t.Fatal(err)
	}
	a, err := Read(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if want := []float64{0, 1, 2, 3, 4, 5.5}; !reflect.DeepEqual(a.Shape, []int{3, 2}) || !reflect.DeepEqual(a.Data, want) {
		t.Fatalf("got %v %v", a.Shape, a.Data)
	}
}

func FuzzRead(f *testing.F) {
	le := binary.LittleEndian
	f.Add(encode(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 1), }", f64s(le, 1, 2)))
	f.Add(encode(2, "{'descr': '>f8', 'fortran_order': False, 'shape': (), }", f64s(binary.BigEndian, 1)))
	f.Add(encode(1, "{'descr': '<f8', 'fortran_order': True, 'shape': (1,), }", f64s(le, 1)))
	f.Add([]byte(Magic))
	f.Add(encode(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 0), }", nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := Read(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, ErrFormat) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error %v wraps neither ErrFormat nor ErrUnsupported", err)
			}
			return
		}
		n := 1
		for _, d := range a.Shape {
			n *= d
		}
		if n != len(a.Data) {
			t.Fatalf("shape %v but %d values", a.Shape, len(a.Data))
		}
		// The accessors agree with the shape: rows of the row length, together the data in order.
		if m, err := a.Matrix(); err == nil {
			var flat []float64
			for _, row := range m {
				if len(row) != a.Shape[1] {
					t.Fatalf("shape %v: row of %d values", a.Shape, len(row))
				}
				flat = append(flat, row...)
			}
			if len(m) > len(b) {
				t.Fatalf("shape %v: %d rows from %d bytes", a.Shape, len(m), len(b))
			}
			if len(m) != a.Shape[0] || !sameBits(flat, a.Data) {
				t.Fatalf("shape %v: matrix of %d rows does not hold the data in order", a.Shape, len(m))
			}
		} else if len(a.Shape) == 2 && (a.Shape[0] == 0 || a.Shape[1] > 0) {
			t.Fatalf("2-D shape %v: %v", a.Shape, err)
		}
		if v, err := a.Vector(); err == nil && !sameBits(v, a.Data) {
			t.Fatalf("shape %v: vector differs from the data", a.Shape)
		}
	})
}

// sameBits reports whether a and b hold the same float64 values bit for bit (NaN payloads included).
func sameBits(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
			return false
		}
	}
	return true
}
