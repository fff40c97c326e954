package traci

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// ErrClosed is returned by every call after Close, or after an I/O failure left the connection out of step.
var ErrClosed = errors.New("connection closed")

// closeTimeout bounds Close: the CMD_CLOSE exchange, then the wait for the sumo process to exit.
const closeTimeout = 5 * time.Second

// Client is one TraCI connection to a SUMO server. It is safe for concurrent use; calls are serialised, one
// request on the wire at a time, as TraCI requires. Each call's ctx bounds its exchange: a call cut short by ctx
// leaves the connection unusable (ErrClosed), since the stream's position is then unknown. Close must be called.
type Client struct {
	mu     sync.Mutex
	conn   net.Conn
	broken error // set once the connection is unusable; wraps ErrClosed
	// abandoned is set when a ctx cut a call short: sumo may be busy for long, and Close kills it at once.
	abandoned bool
	closed    bool
	proc      *process // the sumo child started by Start, nil after Dial

	version Version
}

// Version is what SUMO answers to getVersion.
type Version struct {
	API      int    // TraCI API level; SUMO 1.15 speaks 20
	Software string // e.g. "SUMO 1.15.0"
}

// Dial connects to a SUMO server already listening on addr (host:port, started with --remote-port) and asks its
// version. Close ends that simulation.
func Dial(ctx context.Context, addr string) (*Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("traci dial %s: %w", addr, err)
	}
	return newClient(ctx, conn, nil)
}

func newClient(ctx context.Context, conn net.Conn, proc *process) (*Client, error) {
	c := &Client{conn: conn, proc: proc}
	v, err := c.getVersion(ctx)
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	c.version = v
	return c, nil
}

// Version is the server's version, asked once when the connection opened.
func (c *Client) Version() Version { return c.version }

// exchange sends one message of commands and returns a decoder over the whole answer.
func (c *Client) exchange(ctx context.Context, commands []byte) (*decoder, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return nil, c.broken
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	resp, err := c.roundTrip(ctx, commands)
	if err != nil {
		c.broken = fmt.Errorf("%w: %w", ErrClosed, err)
		c.abandoned = errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
		return nil, err
	}
	return &decoder{b: resp}, nil
}

// roundTrip writes one length-prefixed message and reads the length-prefixed answer. ctx's deadline becomes the
// connection's, and ctx's cancellation interrupts the I/O.
func (c *Client) roundTrip(ctx context.Context, commands []byte) ([]byte, error) {
	deadline, _ := ctx.Deadline()
	if err := c.conn.SetDeadline(deadline); err != nil {
		return nil, err
	}
	interrupted := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(interrupted)
		_ = c.conn.SetDeadline(time.Unix(1, 0))
	})
	defer func() {
		if !stop() {
			<-interrupted // the interruption must not land on the next call
		}
	}()

	msg := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(commands)), uint32(4+len(commands)))
	msg = append(msg, commands...)
	if _, err := c.conn.Write(msg); err != nil {
		return nil, ctxOr(ctx, fmt.Errorf("send: %w", err))
	}
	var head [4]byte
	if _, err := io.ReadFull(c.conn, head[:]); err != nil {
		return nil, ctxOr(ctx, fmt.Errorf("receive: %w", err))
	}
	n := int(binary.BigEndian.Uint32(head[:]))
	if n < 4 || n > maxMessage {
		return nil, fmt.Errorf("receive: %w: message length %d", ErrMalformed, n)
	}
	resp := make([]byte, n-4)
	if _, err := io.ReadFull(c.conn, resp); err != nil {
		return nil, ctxOr(ctx, fmt.Errorf("receive: %w", err))
	}
	return resp, nil
}

// ctxOr prefers ctx's error over the I/O error it caused. The connection's deadline, ctx's own, can pass before
// ctx says so.
func ctxOr(ctx context.Context, err error) error {
	cerr := ctx.Err()
	if deadline, ok := ctx.Deadline(); cerr == nil && ok && errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(deadline) {
		cerr = context.DeadlineExceeded
	}
	if cerr != nil {
		return fmt.Errorf("%w (%w)", cerr, err)
	}
	return err
}

// Close ends the simulation with CMD_CLOSE and closes the connection. After Start it then waits (bounded) for
// sumo to exit and kills its process group if it does not, so no sumo process is left behind; sumo's own failure
// (an exit status other than 0, with the end of its stderr) is part of the error. Calling Close again returns
// nil.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	broken := c.broken
	c.broken = ErrClosed

	var errs []error
	if broken == nil {
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		resp, err := c.roundTrip(ctx, appendCommand(nil, cmdClose, nil))
		cancel()
		if err == nil {
			err = (&decoder{b: resp}).status(cmdClose)
		}
		if err != nil {
			errs = append(errs, opError("close", "", err))
		}
	}
	if err := c.conn.Close(); err != nil {
		errs = append(errs, opError("close connection", "", err))
	}
	if c.proc != nil {
		// sumo exits by itself after close, or on seeing the connection closed; one left busy with a call the
		// caller gave up on is killed straight away.
		grace := closeTimeout
		if c.abandoned {
			grace = 0
		}
		if err := c.proc.stop(grace); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// getVersion asks the server's TraCI API level and software version.
func (c *Client) getVersion(ctx context.Context) (Version, error) {
	const op = "getVersion"
	d, err := c.exchange(ctx, appendCommand(nil, cmdGetVersion, nil))
	if err != nil {
		return Version{}, opError(op, "", err)
	}
	v, err := decodeVersion(d)
	return v, opError(op, "", err)
}

func decodeVersion(d *decoder) (Version, error) {
	if err := d.status(cmdGetVersion); err != nil {
		return Version{}, err
	}
	d.length()
	if id := d.u8(); d.err == nil && id != cmdGetVersion {
		d.failf("answer 0x%02x to getVersion", id)
	}
	v := Version{API: d.i32(), Software: d.str()}
	return v, d.err
}

// opError names the command (as SUMO's Python client names it) and the object in an error; nil stays nil.
func opError(op, objID string, err error) error {
	switch {
	case err == nil:
		return nil
	case objID == "":
		return fmt.Errorf("traci %s: %w", op, err)
	default:
		return fmt.Errorf("traci %s %q: %w", op, objID, err)
	}
}

// getValue sends one get command and decodes its value with read.
func getValue[T any](ctx context.Context, c *Client, op string, q query, read func(*decoder) T) (T, error) {
	var zero T
	d, err := c.exchange(ctx, q.append(nil))
	if err != nil {
		return zero, opError(op, q.objID, err)
	}
	v, err := decodeValue(d, q, read)
	return v, opError(op, q.objID, err)
}

// decodeValue reads the answer to q from d and its value with read.
func decodeValue[T any](d *decoder, q query, read func(*decoder) T) (T, error) {
	var zero T
	vd, err := d.result(q)
	if err != nil {
		return zero, err
	}
	v := read(vd)
	if vd.err != nil {
		return zero, vd.err
	}
	return v, nil
}

// setTrafficLight sends one set command with its typed value; SUMO answers with a status only.
func (c *Client) setTrafficLight(ctx context.Context, op string, varID byte, objID string, value []byte) error {
	d, err := c.exchange(ctx, appendVarCommand(nil, cmdSetTrafficLight, varID, objID, value))
	if err != nil {
		return opError(op, objID, err)
	}
	return opError(op, objID, d.status(cmdSetTrafficLight))
}

// Value readers shared by the get commands.
func readInt(d *decoder) int               { return d.typedInt() }
func readString(d *decoder) string         { return d.typedStr() }
func readStrings(d *decoder) []string      { return d.typedStrings() }
func readSeconds(d *decoder) time.Duration { return d.seconds() }
