// Package npy reads NumPy .npy files holding float64 arrays, the format numpy.save writes
// (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html).
//
// Supported: format versions 1.0 and 2.0 (3.0 differs only in the header's text encoding and is accepted too),
// dtype float64 in either byte order ('<f8', '>f8', '=f8' meaning little-endian as numpy writes it on every
// platform Greenwave runs on), C (row-major) order, any number of dimensions. Everything else — other dtypes,
// Fortran order, object arrays, truncated data, trailing bytes — is rejected with an error that says what was
// found and what is expected, never guessed.
//
// The package is pure: Read takes an io.Reader and does no other I/O.
package npy

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Magic is the six bytes every .npy file starts with.
const Magic = "\x93NUMPY"

// MaxElements bounds the elements of an array Read accepts (2^28 float64 values, 2 GiB), so a corrupt header
// cannot make it allocate without bound.
const MaxElements = 1 << 28

// maxHeaderLen bounds the header dictionary; numpy writes under 200 bytes for any realistic shape.
const maxHeaderLen = 1 << 16

// ErrFormat is wrapped by every error about a file that is not a valid .npy file.
var ErrFormat = errors.New("not a valid .npy file")

// ErrUnsupported is wrapped by every error about a valid .npy file this package does not read (dtype, order).
var ErrUnsupported = errors.New("unsupported .npy array")

// Array is a float64 array in C order: element (i0, i1, …) is Data[((i0·Shape[1] + i1)·Shape[2] + …)].
type Array struct {
	// Shape is the array's dimensions; empty for a 0-d (scalar) array.
	Shape []int
	Data  []float64
}

// Read decodes one .npy array from r and checks that r holds nothing after it.
func Read(r io.Reader) (*Array, error) {
	br := bufio.NewReader(r)
	var pre [8]byte
	if _, err := io.ReadFull(br, pre[:]); err != nil {
		return nil, fmt.Errorf("read preamble: %w: %v", ErrFormat, err)
	}
	if string(pre[:6]) != Magic {
		return nil, fmt.Errorf("magic %q, want %q: %w", pre[:6], Magic, ErrFormat)
	}
	major, minor := pre[6], pre[7]
	var hlen int
	switch major {
	case 1:
		var b [2]byte
		if _, err := io.ReadFull(br, b[:]); err != nil {
			return nil, fmt.Errorf("read header length: %w: %v", ErrFormat, err)
		}
		hlen = int(binary.LittleEndian.Uint16(b[:]))
	case 2, 3:
		var b [4]byte
		if _, err := io.ReadFull(br, b[:]); err != nil {
			return nil, fmt.Errorf("read header length: %w: %v", ErrFormat, err)
		}
		n := binary.LittleEndian.Uint32(b[:])
		if n > maxHeaderLen {
			return nil, fmt.Errorf("header length %d above %d bytes: %w", n, maxHeaderLen, ErrFormat)
		}
		hlen = int(n)
	default:
		return nil, fmt.Errorf("format version %d.%d, want 1.0, 2.0 or 3.0: %w", major, minor, ErrUnsupported)
	}
	hb := make([]byte, hlen)
	if _, err := io.ReadFull(br, hb); err != nil {
		return nil, fmt.Errorf("read %d-byte header: %w: %v", hlen, ErrFormat, err)
	}
	h, err := parseHeader(string(hb))
	if err != nil {
		return nil, err
	}
	n := 1
	for _, d := range h.shape {
		if d != 0 && n > MaxElements/d {
			return nil, fmt.Errorf("shape %v has more than %d elements: %w", h.shape, MaxElements, ErrUnsupported)
		}
		n *= d
	}
	// Read in chunks so that a header promising more data than the file holds costs no more memory than the
	// file itself.
	data := make([]float64, 0, min(n, 1<<16))
	var buf [8 * 4096]byte
	for len(data) < n {
		k := min(n-len(data), len(buf)/8)
		if got, err := io.ReadFull(br, buf[:8*k]); err != nil {
			return nil, fmt.Errorf("read data: %d of %d float64 values present: %w", len(data)+got/8, n, ErrFormat)
		}
		for i := 0; i < k; i++ {
			var bits uint64
			if h.bigEndian {
				bits = binary.BigEndian.Uint64(buf[8*i:])
			} else {
				bits = binary.LittleEndian.Uint64(buf[8*i:])
			}
			data = append(data, math.Float64frombits(bits))
		}
	}
	if extra, _ := io.Copy(io.Discard, br); extra > 0 {
		return nil, fmt.Errorf("%d bytes after the %d float64 values of shape %v: %w", extra, n, h.shape, ErrFormat)
	}
	return &Array{Shape: h.shape, Data: data}, nil
}

// Matrix returns a 2-D array as rows (copies of the data). A 1-D array of length n is rejected: say what a
// feature matrix with one column is by saving it with shape (n, 1).
func (a *Array) Matrix() ([][]float64, error) {
	if len(a.Shape) != 2 {
		return nil, fmt.Errorf("array of shape %v is not 2-D (rows, columns)", a.Shape)
	}
	rows, cols := a.Shape[0], a.Shape[1]
	if cols == 0 && rows > 0 {
		// Each row costs a slice header though the file holds no values: a 128-byte file could ask for gigabytes.
		return nil, fmt.Errorf("array of shape %v has rows but no columns", a.Shape)
	}
	out := make([][]float64, rows)
	for i := range out {
		out[i] = append([]float64(nil), a.Data[i*cols:(i+1)*cols]...)
	}
	return out, nil
}

// Vector returns a 1-D array, or a 2-D array with one column, as a slice (a copy of the data).
func (a *Array) Vector() ([]float64, error) {
	switch {
	case len(a.Shape) == 1, len(a.Shape) == 2 && a.Shape[1] == 1:
		return append([]float64(nil), a.Data...), nil
	}
	return nil, fmt.Errorf("array of shape %v is not a vector (n,) or (n, 1)", a.Shape)
}

// header is the decoded header dictionary.
type header struct {
	shape     []int
	bigEndian bool
}

// parseHeader decodes the header, a Python dict literal such as
// {'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), } padded with spaces and ended by '\n'.
func parseHeader(s string) (header, error) {
	p := &parser{s: strings.TrimRight(s, " \n\x00")}
	var h header
	seen := map[string]bool{}
	if !p.eat('{') {
		return h, p.errorf("header does not start with '{'")
	}
	for {
		if p.eat('}') {
			break
		}
		key, err := p.str()
		if err != nil {
			return h, err
		}
		if seen[key] {
			return h, p.errorf("key %q repeated", key)
		}
		seen[key] = true
		if !p.eat(':') {
			return h, p.errorf("':' expected after key %q", key)
		}
		switch key {
		case "descr":
			d, err := p.str()
			if err != nil {
				return h, err
			}
			switch d {
			case "<f8", "=f8", "f8":
			case ">f8":
				h.bigEndian = true
			default:
				return h, fmt.Errorf("dtype %q, want float64 ('<f8'): convert with X.astype(numpy.float64): %w", d, ErrUnsupported)
			}
		case "fortran_order":
			b, err := p.ident()
			if err != nil {
				return h, err
			}
			switch b {
			case "False":
			case "True":
				return h, fmt.Errorf("array in Fortran order, want C order: save numpy.ascontiguousarray(X): %w", ErrUnsupported)
			default:
				return h, p.errorf("fortran_order %q is not True or False", b)
			}
		case "shape":
			sh, err := p.shape()
			if err != nil {
				return h, err
			}
			h.shape = sh
		default:
			return h, p.errorf("unknown key %q", key)
		}
		if !p.eat(',') {
			if !p.eat('}') {
				return h, p.errorf("',' or '}' expected")
			}
			break
		}
	}
	if p.skip(); p.i != len(p.s) {
		return h, p.errorf("text after the header dictionary")
	}
	for _, k := range []string{"descr", "fortran_order", "shape"} {
		if !seen[k] {
			return h, fmt.Errorf("header has no %q: %w", k, ErrFormat)
		}
	}
	return h, nil
}

// parser is a cursor over the header text.
type parser struct {
	s string
	i int
}

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("header %q at byte %d: %s: %w", p.s, p.i, fmt.Sprintf(format, args...), ErrFormat)
}

func (p *parser) skip() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == '\n') {
		p.i++
	}
}

func (p *parser) eat(c byte) bool {
	p.skip()
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

// str reads a quoted string without escapes (numpy never writes any in a header).
func (p *parser) str() (string, error) {
	p.skip()
	if p.i >= len(p.s) || (p.s[p.i] != '\'' && p.s[p.i] != '"') {
		return "", p.errorf("quoted string expected")
	}
	q := p.s[p.i]
	end := strings.IndexByte(p.s[p.i+1:], q)
	if end < 0 {
		return "", p.errorf("unterminated string")
	}
	v := p.s[p.i+1 : p.i+1+end]
	p.i += end + 2
	return v, nil
}

func (p *parser) ident() (string, error) {
	p.skip()
	j := p.i
	for j < len(p.s) && (p.s[j] >= 'A' && p.s[j] <= 'Z' || p.s[j] >= 'a' && p.s[j] <= 'z') {
		j++
	}
	if j == p.i {
		return "", p.errorf("identifier expected")
	}
	v := p.s[p.i:j]
	p.i = j
	return v, nil
}

// shape reads a tuple of non-negative integers: (), (n,), (n, m), … (a trailing comma is allowed).
func (p *parser) shape() ([]int, error) {
	if !p.eat('(') {
		return nil, p.errorf("shape tuple expected")
	}
	out := []int{}
	for {
		if p.eat(')') {
			return out, nil
		}
		p.skip()
		j := p.i
		for j < len(p.s) && p.s[j] >= '0' && p.s[j] <= '9' {
			j++
		}
		// numpy ≤ 1.x on some platforms wrote Python 2 longs such as 3L.
		d, err := strconv.Atoi(p.s[p.i:j])
		if err != nil || d < 0 || d > MaxElements {
			return nil, p.errorf("dimension %q is not an integer in 0..%d", p.s[p.i:j], MaxElements)
		}
		p.i = j
		if p.i < len(p.s) && p.s[p.i] == 'L' {
			p.i++
		}
		out = append(out, d)
		if len(out) > 32 {
			return nil, p.errorf("more than 32 dimensions")
		}
		if !p.eat(',') {
			if !p.eat(')') {
				return nil, p.errorf("',' or ')' expected in shape")
			}
			return out, nil
		}
	}
}
