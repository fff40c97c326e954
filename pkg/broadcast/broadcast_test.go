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
	got := drain(t, s, 3)
	want := []Item[int]{{Key: "a", Value: 2, Coalesced: 1}, {Key: "b", Value: 1, Initial: true}, {Key: "c", Value: 1}}
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
	it := drain(t, s, 1)[0]
	if it.Value != 999 || it.Coalesced != 999 {
		t.Errorf("got %+v, want latest value 999 with 999 coalesced", it)
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
