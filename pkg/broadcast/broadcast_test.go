package broadcast

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func drain[T any](t *testing.T, s *Subscription[T], n int) []Item[T] {
	t.Helper()
	var out []Item[T]
	for range n {
		it, err := s.Next(context.Background())
		if err != nil {
			t.Fatalf("Next() after %d items: %v", len(out), err)
		}
		out = append(out, it)
	}
	return out
}

func TestSubscribeSnapshotThenUpdates(t *testing.T) {
	t.Parallel()
	h := New[int]()
	h.Publish("b", 1)
	h.Publish("a", 1)
	s := h.Subscribe(10, nil)
	h.Publish("a", 2)
	h.Publish("c", 1)
	got := drain(t, s, 4)
	want := []Item[int]{{Key: "a", Value: 1, Initial: true}, {Key: "b", Value: 1, Initial: true}, {Key: "a", Value: 2}, {Key: "c", Value: 1}}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("item %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestFilter(t *testing.T) {
	t.Parallel()
	h := New[int]()
	s := h.Subscribe(10, func(k string, v int) bool { return k == "x" })
	h.Publish("y", 1)
	h.Publish("x", 7)
	if it := drain(t, s, 1)[0]; it.Key != "x" || it.Value != 7 {
		t.Errorf("got %+v, want x=7", it)
	}
}

func TestSlowSubscriberIsolated(t *testing.T) {
	t.Parallel()
	h := New[int]()
	slow := h.Subscribe(3, nil)
	fast := h.Subscribe(1000, nil)
	for i := range 100 {
		h.Publish(fmt.Sprint("k", i%50), i) // 50 distinct keys: more than the slow subscriber's limit
		if it := drain(t, fast, 1)[0]; it.Value != i {
			t.Fatalf("fast subscriber got %+v, want value %d", it, i)
		}
	}
	// The slow one receives what it had queued, then the overflow.
	var err error
	for n := 0; err == nil; n++ {
		_, err = slow.Next(context.Background())
		if n > 10 {
			t.Fatal("slow subscriber was not ended")
		}
	}
	if !errors.Is(err, ErrOverflow) {
		t.Errorf("slow subscriber error = %v, want ErrOverflow", err)
	}
	if got := h.Subscribers(); got != 1 {
		t.Errorf("Subscribers() = %d, want 1", got)
	}
}

func TestCoalescingKeepsLatest(t *testing.T) {
	t.Parallel()
	h := New[int]()
	s := h.Subscribe(2, nil)
	for i := range 1000 {
		h.Publish("only", i)
	}
	// The queue holds two entries: the older updates are folded into the first, the newest is last.
	got := drain(t, s, 2)
	if got[1].Value != 999 || got[0].Coalesced+got[1].Coalesced+2 != 1000 || got[0].Value >= got[1].Value {
		t.Errorf("got %+v, want the latest value 999 last and every update delivered or counted", got)
	}
}

func TestCloseEndsSubscriptions(t *testing.T) {
	t.Parallel()
	h := New[int]()
	s := h.Subscribe(2, nil)
	h.Close()
	if _, err := s.Next(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Next() after Close = %v, want ErrClosed", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s2 := New[int]().Subscribe(2, nil)
	if _, err := s2.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Next(cancelled) = %v", err)
	}
}

// TestCoalesceOnlyWhenFull: a queue with room keeps every update in order; a full one drops the older updates
// of a key for its newest, keeping per-key order, and overflows only when every entry is a distinct key.
func TestCoalesceOnlyWhenFull(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		limit     int
		publish   []Item[int] // Key, Value
		want      []Item[int]
		overflows bool
	}{
		{"room for all", 4, []Item[int]{{Key: "a", Value: 1}, {Key: "a", Value: 2}, {Key: "b", Value: 1}, {Key: "a", Value: 3}},
			[]Item[int]{{Key: "a", Value: 1}, {Key: "a", Value: 2}, {Key: "b", Value: 1}, {Key: "a", Value: 3}}, false},
		{"full: older of a key dropped", 3, []Item[int]{{Key: "a", Value: 1}, {Key: "b", Value: 1}, {Key: "a", Value: 2}, {Key: "c", Value: 1}},
			[]Item[int]{{Key: "b", Value: 1}, {Key: "a", Value: 2, Coalesced: 1}, {Key: "c", Value: 1}}, false},
		{"full of distinct keys: same key replaces", 2, []Item[int]{{Key: "a", Value: 1}, {Key: "b", Value: 1}, {Key: "a", Value: 2}},
			[]Item[int]{{Key: "a", Value: 2, Coalesced: 1}, {Key: "b", Value: 1}}, false},
		{"full of distinct keys: new key overflows", 2, []Item[int]{{Key: "a", Value: 1}, {Key: "b", Value: 1}, {Key: "c", Value: 1}},
			[]Item[int]{{Key: "a", Value: 1}, {Key: "b", Value: 1}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := New[int]()
			s := h.Subscribe(tt.limit, nil)
			for _, it := range tt.publish {
				h.Publish(it.Key, it.Value)
			}
			got := drain(t, s, len(tt.want))
			for i := range tt.want {
				if got[i] != tt.want[i] {
					t.Fatalf("item %d = %+v, want %+v (all %+v)", i, got[i], tt.want[i], got)
				}
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			_, err := s.Next(ctx)
			if tt.overflows != errors.Is(err, ErrOverflow) {
				t.Fatalf("after the queue: %v, overflow expected %v", err, tt.overflows)
			}
		})
	}
}
