package traci

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrMalformed marks a response the package could not decode: truncated, of an unexpected type, or answering
// another command than the one sent.
var ErrMalformed = errors.New("malformed TraCI response")

// encoder builds the content of one command. Values are big-endian, as TraCI wants.
type encoder struct{ b []byte }

func (e *encoder) u8(v byte)      { e.b = append(e.b, v) }
func (e *encoder) i32(v int32)    { e.b = binary.BigEndian.AppendUint32(e.b, uint32(v)) }
func (e *encoder) f64(v float64)  { e.b = binary.BigEndian.AppendUint64(e.b, math.Float64bits(v)) }
func (e *encoder) str(s string)   { e.i32(int32(len(s))); e.b = append(e.b, s...) }
func (e *encoder) typedInt(v int) { e.u8(typeInteger); e.i32(int32(v)) }
func (e *encoder) compound(n int) { e.u8(typeCompound); e.i32(int32(n)) }
func (e *encoder) typedStr(s string) {
	e.u8(typeString)
	e.str(s)
}
func (e *encoder) typedSeconds(d time.Duration) {
	e.u8(typeDouble)
	e.f64(d.Seconds())
}
func (e *encoder) typedStrings(ss ...string) {
	e.u8(typeStringList)
	e.i32(int32(len(ss)))
	for _, s := range ss {
		e.str(s)
	}
}

// appendCommand frames one command: a one-byte length (or 0 and a four-byte length when it does not fit), the
// command id, then the content. The length counts itself.
func appendCommand(dst []byte, id byte, content []byte) []byte {
	if n := 2 + len(content); n <= 255 {
		dst = append(dst, byte(n), id)
	} else {
		dst = append(dst, 0)
		dst = binary.BigEndian.AppendUint32(dst, uint32(n+4))
		dst = append(dst, id)
	}
	return append(dst, content...)
}

// appendVarCommand frames a get or set command on one object's variable, with an optional typed value.
func appendVarCommand(dst []byte, id, varID byte, objID string, value []byte) []byte {
	e := encoder{b: make([]byte, 0, 5+len(objID)+len(value))}
	e.u8(varID)
	e.str(objID)
	e.b = append(e.b, value...)
	return appendCommand(dst, id, e.b)
}

// decoder reads a response. It never panics: the first problem is kept in err, and every later read returns a
// zero value, so a caller reads a whole structure and checks err once.
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) failf(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: at byte %d: %s", ErrMalformed, d.off, fmt.Sprintf(format, args...))
	}
}

func (d *decoder) remaining() int { return len(d.b) - d.off }

func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > d.remaining() {
		d.failf("need %d bytes, %d left", n, d.remaining())
		return nil
	}
	p := d.b[d.off : d.off+n]
	d.off += n
	return p
}

func (d *decoder) u8() byte {
	if p := d.take(1); p != nil {
		return p[0]
	}
	return 0
}

func (d *decoder) i32() int {
	if p := d.take(4); p != nil {
		return int(int32(binary.BigEndian.Uint32(p)))
	}
	return 0
}

func (d *decoder) f64() float64 {
	if p := d.take(8); p != nil {
		return math.Float64frombits(binary.BigEndian.Uint64(p))
	}
	return 0
}

func (d *decoder) str() string {
	return string(d.take(d.i32()))
}

// count reads a four-byte element count and checks it against what is left, each element taking at least
// minSize bytes, so a corrupt count cannot ask for a huge slice.
func (d *decoder) count(minSize int) int { return d.fits(d.i32(), minSize) }

// fits checks a count n already read the same way, and returns 0 for a count that cannot be.
func (d *decoder) fits(n, minSize int) int {
	if d.err != nil {
		return 0
	}
	if n < 0 || n > d.remaining()/minSize {
		d.failf("count %d does not fit in %d bytes", n, d.remaining())
		return 0
	}
	return n
}

// length reads a command's length field: one byte, or 0 and four bytes. It returns the content length that
// follows the field.
func (d *decoder) length() int {
	n := int(d.u8())
	header := 1
	if n == 0 {
		n, header = d.i32(), 5
	}
	if d.err == nil && (n < header || n-header > d.remaining()) {
		d.failf("command length %d does not fit in %d bytes", n, d.remaining())
		return 0
	}
	return n - header
}

func (d *decoder) expect(typ byte) {
	if t := d.u8(); d.err == nil && t != typ {
		d.failf("type 0x%02x, want 0x%02x", t, typ)
	}
}

func (d *decoder) typedInt() int          { d.expect(typeInteger); return d.i32() }
func (d *decoder) typedDouble() float64   { d.expect(typeDouble); return d.f64() }
func (d *decoder) typedStr() string       { d.expect(typeString); return d.str() }
func (d *decoder) typedStrings() []string { d.expect(typeStringList); return d.strings() }

func (d *decoder) strings() []string {
	n := d.count(4)
	ss := make([]string, 0, n)
	for range n {
		ss = append(ss, d.str())
	}
	if d.err != nil {
		return nil
	}
	return ss
}

// compound reads a compound header and returns its item count, each item taking at least minSize bytes.
func (d *decoder) compound(minSize int) int {
	d.expect(typeCompound)
	return d.count(minSize)
}

// compoundOf reads a compound header that must hold exactly n items.
func (d *decoder) compoundOf(n int) {
	if got := d.compound(1); d.err == nil && got != n {
		d.failf("compound of %d items, want %d", got, n)
	}
}

// seconds reads a double in seconds as a duration, refusing what no duration can hold.
func (d *decoder) seconds() time.Duration {
	s := d.typedDouble()
	if d.err != nil {
		return 0
	}
	if math.IsNaN(s) || math.Abs(s) > float64(math.MaxInt64)/float64(time.Second) {
		d.failf("%v seconds is no duration", s)
		return 0
	}
	return time.Duration(math.Round(s * float64(time.Second)))
}

// StatusError is SUMO refusing a command: the status it answered and its own explanation. The connection stays
// usable.
type StatusError struct {
	Command byte   // the TraCI command id
	Status  byte   // 0x01 not implemented, 0xff error
	Message string // SUMO's text, e.g. "The phase index 17 is not in the allowed range [0,3]."
}

func (e *StatusError) Error() string {
	kind := "error"
	if e.Status == 0x01 {
		kind = "not implemented"
	}
	return fmt.Sprintf("sumo answered %s to command 0x%02x: %s", kind, e.Command, e.Message)
}

// status reads the status every command gets first. Like SUMO's own client it takes a non-empty message as a
// refusal even under status OK.
func (d *decoder) status(cmd byte) error {
	d.length()
	id, st, msg := d.u8(), d.u8(), d.str()
	if d.err != nil {
		return d.err
	}
	if id != cmd {
		d.failf("status for command 0x%02x, want 0x%02x", id, cmd)
		return d.err
	}
	if st != statusOK || msg != "" {
		return &StatusError{Command: cmd, Status: st, Message: msg}
	}
	return nil
}

// query is one get command on one object's variable.
type query struct {
	cmd, varID byte
	objID      string
}

func (q query) append(dst []byte) []byte { return appendVarCommand(dst, q.cmd, q.varID, q.objID, nil) }

// result reads the answer to q: its status, then the result command, and returns a decoder over the value alone
// (starting at its type byte). A StatusError leaves d at the next command's answer.
func (d *decoder) result(q query) (*decoder, error) {
	if err := d.status(q.cmd); err != nil {
		return nil, err
	}
	n := d.length()
	body := &decoder{b: d.take(n)}
	if d.err != nil {
		return nil, d.err
	}
	id, varID, objID := body.u8(), body.u8(), body.str()
	if body.err != nil {
		return nil, body.err
	}
	if id != q.cmd+responseOffset || varID != q.varID || objID != q.objID {
		body.failf("answer 0x%02x/0x%02x/%q to 0x%02x/0x%02x/%q", id, varID, objID, q.cmd, q.varID, q.objID)
		return nil, body.err
	}
	return &decoder{b: body.b[body.off:]}, nil
}
