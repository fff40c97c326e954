package broadcast

import (
	"context"
	"errors"
	"testing"
)

func TestSubscribeCapped(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name       string
		cap, open  int
		closeFirst int // subscriptions closed before the last attempt
		wantErr    bool
	}{
		{name: "no cap", cap: 0, open: 300},
		{name: "below cap", cap: 5, open: 4},
		{name: "at cap", cap: 5, open: 5, wantErr: true},
		{name: "freed by close", cap: 5, open: 5, closeFirst: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := New[int]()
			defer h.Close()
			var subs []*Subscription[int]
			for range tt.open {
				s, err := h.SubscribeCapped(4, tt.cap, nil)
				if err != nil {
					t.Fatalf("subscription %d: %v", len(subs), err)
				}
				subs = append(subs, s)
			}
			for _, s := range subs[:tt.closeFirst] {
				s.Close()
			}
			s, err := h.SubscribeCapped(4, tt.cap, nil)
			if gotErr := err != nil; gotErr != tt.wantErr || (err != nil && !errors.Is(err, ErrTooManySubscribers)) {
				t.Fatalf("last SubscribeCapped: %v, want error %v (ErrTooManySubscribers)", err, tt.wantErr)
			}
			if err == nil {
				s.Close()
			}
		})
	}
}

// Closing subscribers that never read releases their queues and unregisters them all.
func TestClosedSubscribersReleaseQueues(t *testing.T) {
	t.Parallel()
	h := New[[]byte]()
	defer h.Close()
	h.Publish("a", make([]byte, 1024))
	var subs []*Subscription[[]byte]
	for range 200 {
		s, err := h.SubscribeCapped(8, 200, nil)
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, s)
	}
	for i := range 5 {
		h.Publish(string(rune('b'+i)), make([]byte, 1024))
	}
	if n := h.Subscribers(); n != 200 {
		t.Fatalf("Subscribers() = %d, want 200", n)
	}
	for _, s := range subs {
		s.Close()
	}
	if n := h.Subscribers(); n != 0 {
		t.Errorf("Subscribers() after closing all = %d, want 0", n)
	}
	h.Publish("z", nil) // reaches nobody, queues nothing
	for i, s := range subs {
		if s.queue != nil || s.newest != nil {
			t.Fatalf("subscription %d still holds %d queued items after Close", i, len(s.queue))
		}
		if _, err := s.Next(context.Background()); !errors.Is(err, ErrClosed) {
			t.Fatalf("Next after Close = %v, want ErrClosed", err)
		}
	}
}
