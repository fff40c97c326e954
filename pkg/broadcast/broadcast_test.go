package broadcast

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
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

// seqItem is a published update: its key and its number among the key's updates (0, 1, …).
type seqItem struct {
	key string
	seq int
}

// TestEveryUpdateOrCounted is the completeness property, over seeded random schedules of publishing and
// reading: per key, a subscriber receives increasing updates ending with the key's last, each one's Coalesced
// counting exactly the updates of the key it skipped, so delivered plus coalesced is everything published; a
// subscriber whose queue never fills (limit at least the number of updates) receives every update in publish
// order with Coalesced 0. Limits are at least the number of keys, so no subscription overflows.
func TestEveryUpdateOrCounted(t *testing.T) {
	t.Parallel()
	done, cancel := context.WithCancel(context.Background())
	cancel()
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 11))
		keys, n := 1+rng.IntN(6), 1+rng.IntN(200)
		h := New[seqItem]()
		limits := []int{n, keys + rng.IntN(2*keys), keys} // keeps up, lags, stalls at the tightest limit
		subs := make([]*Subscription[seqItem], len(limits))
		for i, l := range limits {
			subs[i] = h.Subscribe(l, nil)
		}
		// readP is each subscriber's chance to read after an update: the first one reads everything queued.
		readP := []float64{1, rng.Float64(), 0}
		published := map[string]int{}
		var order []seqItem
		got := make([][]Item[seqItem], len(subs))
		read := func(i int, all bool) {
			for all || rng.Float64() < 0.5 {
				it, err := subs[i].Next(done)
				if err != nil {
					return
				}
				got[i] = append(got[i], it)
			}
		}
		for range n {
			k := fmt.Sprint("k", rng.IntN(keys))
			v := seqItem{k, published[k]}
			published[k]++
			order = append(order, v)
			h.Publish(k, v)
			for i := range subs {
				if rng.Float64() < readP[i] {
					read(i, i == 0)
				}
			}
		}
		for i := range subs {
			read(i, true)
		}
		for i, items := range got {
			last := map[string]int{}
			total := 0
			for _, it := range items {
				prev, ok := last[it.Key]
				if !ok {
					prev = -1
				}
				if it.Value.key != it.Key || it.Value.seq <= prev || it.Coalesced != it.Value.seq-prev-1 || it.Initial {
					t.Fatalf("seed %d subscriber %d (limit %d): %+v after seq %d", seed, i, limits[i], it, prev)
				}
				last[it.Key] = it.Value.seq
				total += 1 + it.Coalesced
			}
			for k, c := range published {
				if last[k] != c-1 {
					t.Fatalf("seed %d subscriber %d: last %s delivered is %d, want %d", seed, i, k, last[k], c-1)
				}
			}
			if total != n {
				t.Fatalf("seed %d subscriber %d: delivered + coalesced = %d, want %d", seed, i, total, n)
			}
		}
		if len(got[0]) != n {
			t.Fatalf("seed %d: the subscriber that kept up received %d of %d", seed, len(got[0]), n)
		}
		for j, it := range got[0] {
			if it.Value != order[j] || it.Coalesced != 0 {
				t.Fatalf("seed %d: kept-up update %d is %+v, want %+v uncoalesced", seed, j, it, order[j])
			}
		}
	}
}

// TestStalledSubscriberGetsLatest: N updates of several keys to a subscriber that reads nothing until the end
// (queue of 4) and one that keeps up. The first receives each key's latest update with Coalesced the number it
// replaced; the second receives all N in order, none coalesced.
func TestStalledSubscriberGetsLatest(t *testing.T) {
	t.Parallel()
	const n = 1000
	h := New[int]()
	stalled, keeping := h.Subscribe(4, nil), h.Subscribe(4, nil)
	keys := []string{"a", "b", "c"}
	for i := range n {
		h.Publish(keys[i%len(keys)], i)
		if it := drain(t, keeping, 1)[0]; it.Value != i || it.Coalesced != 0 {
			t.Fatalf("keeping-up subscriber got %+v, want %d uncoalesced", it, i)
		}
	}
	done, cancel := context.WithCancel(context.Background())
	cancel()
	total, latest := 0, map[string]int{}
	for {
		it, err := stalled.Next(done)
		if err != nil {
			break
		}
		if prev, ok := latest[it.Key]; ok && it.Value <= prev {
			t.Fatalf("stalled subscriber: %+v after %d", it, latest[it.Key])
		}
		total += 1 + it.Coalesced
		latest[it.Key] = it.Value
	}
	if total != n || latest["a"] != n-1 || latest["b"] != n-3 || latest["c"] != n-2 {
		t.Errorf("stalled subscriber: delivered + coalesced = %d (want %d), latest %v", total, n, latest)
	}
}
