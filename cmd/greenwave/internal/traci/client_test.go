package traci

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// fakeSumo is a TraCI server on a loopback port, connected to with Dial. It answers getVersion itself and every
// later message with answer; a nil answer sends nothing back.
func fakeSumo(t *testing.T, answer func(commands []byte) []byte) *Client {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		server, err := l.Accept()
		l.Close()
		if err != nil {
			return
		}
		defer server.Close()
		version := appendCommand(statusBytes(cmdGetVersion, statusOK, ""), cmdGetVersion,
			encoded(func(e *encoder) { e.i32(20); e.str("fake") }))
		for first := true; ; first = false {
			var head [4]byte
			if _, err := io.ReadFull(server, head[:]); err != nil {
				return
			}
			commands := make([]byte, binary.BigEndian.Uint32(head[:])-4)
			if _, err := io.ReadFull(server, commands); err != nil {
				return
			}
			resp := version
			if !first {
				resp = answer(commands)
			}
			if resp == nil {
				continue
			}
			msg := binary.BigEndian.AppendUint32(nil, uint32(4+len(resp)))
			if _, err := server.Write(append(msg, resp...)); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { <-done })
	c, err := Dial(context.Background(), l.Addr().String())
	if err != nil {
		l.Close()
		t.Fatalf("Dial: %v", err)
	}
	if v := c.Version(); v != (Version{API: 20, Software: "fake"}) {
		t.Fatalf("Version = %+v after Dial", v)
	}
	return c
}

// commandID is the id of the first command in a message.
func commandID(commands []byte) byte {
	if commands[0] == 0 {
		return commands[5]
	}
	return commands[1]
}

func TestClientConnection(t *testing.T) {
	t.Parallel()
	timeAnswer := answerBytes(simQuery(varTime), encoded(func(e *encoder) { e.u8(typeDouble); e.f64(1.5) }))
	tests := []struct {
		name string
		run  func(t *testing.T, received <-chan byte, c *Client)
		// answers lists the answer per message after getVersion; nil answers nothing.
		answers [][]byte
	}{
		{
			name: "a refusal keeps the connection",
			answers: [][]byte{
				statusBytes(cmdSetTrafficLight, 0xff, "The phase index 9 is not in the allowed range [0,3]."),
				timeAnswer,
				statusBytes(cmdClose, statusOK, ""),
			},
			run: func(t *testing.T, _ <-chan byte, c *Client) {
				err := c.SetTrafficLightPhase(context.Background(), "A0", 9)
				var se *StatusError
				if !errors.As(err, &se) || se.Message != "The phase index 9 is not in the allowed range [0,3]." {
					t.Fatalf("SetTrafficLightPhase: %v, want SUMO's refusal", err)
				}
				if got, err := c.Time(context.Background()); err != nil || got != 1500*time.Millisecond {
					t.Fatalf("Time after a refusal = %v, %v", got, err)
				}
				if err := c.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
			},
		},
		{
			name:    "a cancelled call closes the connection",
			answers: [][]byte{nil},
			run: func(t *testing.T, received <-chan byte, c *Client) {
				ctx, cancel := context.WithCancel(context.Background())
				go func() {
					<-received // the server has the request and will never answer
					cancel()
				}()
				if _, err := c.Time(ctx); !errors.Is(err, context.Canceled) {
					t.Fatalf("Time with a cancelled ctx: %v, want context.Canceled", err)
				}
				if _, err := c.Time(context.Background()); !errors.Is(err, ErrClosed) {
					t.Fatalf("Time after a cancelled call: %v, want ErrClosed", err)
				}
				if err := c.Close(); err != nil {
					t.Fatalf("Close of a broken connection: %v", err)
				}
			},
		},
		{
			name:    "close twice, then calls fail",
			answers: [][]byte{statusBytes(cmdClose, statusOK, "")},
			run: func(t *testing.T, received <-chan byte, c *Client) {
				if err := c.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
				if id := <-received; id != cmdClose {
					t.Fatalf("Close sent command 0x%02x, want 0x%02x", id, cmdClose)
				}
				if err := c.Close(); err != nil {
					t.Fatalf("second Close: %v", err)
				}
				if err := c.Step(context.Background(), 0); !errors.Is(err, ErrClosed) {
					t.Fatalf("Step after Close: %v, want ErrClosed", err)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			received := make(chan byte, len(tc.answers))
			answers := tc.answers
			c := fakeSumo(t, func(commands []byte) []byte {
				received <- commandID(commands)
				if len(answers) == 0 {
					return nil
				}
				a := answers[0]
				answers = answers[1:]
				return a
			})
			t.Cleanup(func() { _ = c.Close() })
			tc.run(t, received, c)
		})
	}
}
