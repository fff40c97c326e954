// Package broadcast fans state-like streams (the latest prediction or plan per intersection) out to many
// subscribers without ever blocking the publisher: each subscriber has its own bounded queue that coalesces to
// the latest value per key under pressure. Subscribing takes the current state and registers atomically, so no
// update falls between the snapshot and the stream.
//
// A subscriber that keeps up receives every update, in publish order. Only when its queue is full (limit
// entries) are older queued updates of a key dropped in favour of the key's newest one (Item.Coalesced counts
// them); per-key order is always kept. When the queue is full with one entry per key and a new key arrives, the
// subscription ends with ErrOverflow.
package broadcast

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
)

// ErrOverflow ends a subscription whose queue holds more distinct pending keys than its limit: the subscriber
// is too slow even with coalescing.
var ErrOverflow = errors.New("subscriber too slow: pending updates exceed the buffer")

// ErrTooManySubscribers refuses a subscription past the hub's cap (SubscribeCapped).
var ErrTooManySubscribers = errors.New("too many subscribers")

// ErrClosed is returned by Next after the hub or subscription was closed.
var ErrClosed = errors.New("subscription closed")

// Item is one delivery.
type Item[T any] struct {
	Key   string
	Value T
	// Initial marks current-state items sent before live updates.
	Initial bool
	// Coalesced counts older updates of this key dropped in favour of this one while the subscriber's queue was
	// full.
	Coalesced int
}

// Hub holds the latest value per key and the subscribers. It is safe for concurrent use.
type Hub[T any] struct {
	mu     sync.Mutex
	latest map[string]T
	subs   map[*Subscription[T]]struct{}
	closed bool
}

// New returns an empty hub.
func New[T any]() *Hub[T] {
	return &Hub[T]{latest: map[string]T{}, subs: map[*Subscription[T]]struct{}{}}
}

// Publish records v as key's latest value and queues it for every subscriber whose filter accepts it. It never
// blocks on a subscriber.
func (h *Hub[T]) Publish(key string, v T) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.latest[key] = v
	for s := range h.subs {
		if s.filter == nil || s.filter(key, v) {
			s.push(Item[T]{Key: key, Value: v})
		}
	}
}

// Latest returns key's latest value.
func (h *Hub[T]) Latest(key string) (T, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v, ok := h.latest[key]
	return v, ok
}

// Snapshot returns every key's latest value, ordered by key.
func (h *Hub[T]) Snapshot() []Item[T] {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.snapshot(nil)
}

func (h *Hub[T]) snapshot(filter func(string, T) bool) []Item[T] {
	keys := make([]string, 0, len(h.latest))
	for k, v := range h.latest {
		if filter == nil || filter(k, v) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	out := make([]Item[T], len(keys))
	for i, k := range keys {
		out[i] = Item[T]{Key: k, Value: h.latest[k], Initial: true}
	}
	return out
}

// Subscribers returns the number of live subscriptions.
func (h *Hub[T]) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// Subscribe registers a subscriber that first receives the current state (filtered), then every update. limit
// bounds the updates waiting for it (at least the initial state's size plus one is always allowed): a full queue
// coalesces to the newest update per key, and a full queue with one entry per key ends the subscription with
// ErrOverflow when another key arrives. A nil filter accepts everything.
func (h *Hub[T]) Subscribe(limit int, filter func(key string, v T) bool) *Subscription[T] {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.subscribe(limit, filter)
}

// SubscribeCapped is Subscribe, except that a hub already holding maxSubscribers live subscriptions refuses
// another with ErrTooManySubscribers (it names the cap), so unread streams cannot grow memory without bound.
// maxSubscribers 0 means no cap.
func (h *Hub[T]) SubscribeCapped(limit, maxSubscribers int, filter func(key string, v T) bool) (*Subscription[T], error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if maxSubscribers > 0 && len(h.subs) >= maxSubscribers {
		return nil, fmt.Errorf("%w: this server serves at most %d", ErrTooManySubscribers, maxSubscribers)
	}
	return h.subscribe(limit, filter), nil
}

// subscribe is called with h.mu held.
func (h *Hub[T]) subscribe(limit int, filter func(key string, v T) bool) *Subscription[T] {
	s := &Subscription[T]{hub: h, filter: filter, newest: map[string]int{}, wake: make(chan struct{}, 1)}
	s.queue = h.snapshot(filter)
	for i, it := range s.queue {
		s.newest[it.Key] = i
	}
	s.limit = max(limit, len(s.queue)+1)
	if h.closed {
		s.err = ErrClosed
	} else {
		h.subs[s] = struct{}{}
	}
	s.signal()
	return s
}

// Close ends every subscription and stops accepting updates.
func (h *Hub[T]) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		s.fail(ErrClosed)
	}
	clear(h.subs)
}

// Subscription is one subscriber's queue. Next must be called from one goroutine.
type Subscription[T any] struct {
	hub    *Hub[T]
	filter func(string, T) bool
	limit  int

	// guarded by hub.mu
	queue  []Item[T]
	newest map[string]int // key -> index in queue of the key's newest entry
	err    error
	wake   chan struct{}
}

func (s *Subscription[T]) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// push is called with hub.mu held.
func (s *Subscription[T]) push(it Item[T]) {
	if s.err != nil {
		return
	}
	if len(s.queue) >= s.limit {
		s.compact()
	}
	if len(s.queue) >= s.limit {
		// Full with one entry per key: the key's entry takes the newer value, or a new key overflows.
		i, ok := s.newest[it.Key]
		if !ok {
			s.fail(ErrOverflow)
			delete(s.hub.subs, s)
			return
		}
		it.Coalesced = s.queue[i].Coalesced + 1
		s.queue[i] = it
		s.signal()
		return
	}
	s.newest[it.Key] = len(s.queue)
	s.queue = append(s.queue, it)
	s.signal()
}

// compact drops every queued entry that has a newer entry of the same key, adding its count to the newer one's
// Coalesced. Per-key order is kept. It is called with hub.mu held.
func (s *Subscription[T]) compact() {
	dropped := map[string]int{}
	out := s.queue[:0]
	for i, it := range s.queue {
		if s.newest[it.Key] != i {
			dropped[it.Key] += it.Coalesced + 1
			continue
		}
		if n := dropped[it.Key]; n > 0 {
			it.Coalesced += n
			it.Initial = false
		}
		s.newest[it.Key] = len(out)
		out = append(out, it)
	}
	clear(s.queue[len(out):]) // release dropped values
	s.queue = out
}

func (s *Subscription[T]) fail(err error) {
	if s.err == nil {
		s.err = err
	}
	s.signal()
}

// Next returns the next item, blocking until one is queued, the subscription fails (ErrOverflow, ErrClosed) or
// ctx ends. Queued items are delivered before a failure is reported.
func (s *Subscription[T]) Next(ctx context.Context) (Item[T], error) {
	for {
		s.hub.mu.Lock()
		if len(s.queue) > 0 {
			it := s.queue[0]
			var zero Item[T]
			s.queue[0] = zero // release the value
			s.queue = s.queue[1:]
			if s.newest[it.Key] == 0 {
				delete(s.newest, it.Key)
			}
			for k, i := range s.newest {
				s.newest[k] = i - 1
			}
			s.hub.mu.Unlock()
			return it, nil
		}
		err := s.err
		s.hub.mu.Unlock()
		if err != nil {
			return Item[T]{}, err
		}
		select {
		case <-ctx.Done():
			return Item[T]{}, ctx.Err()
		case <-s.wake:
		}
	}
}

// Close unregisters the subscription and releases what it still had queued: a closed subscriber holds no
// memory whatever it left unread.
func (s *Subscription[T]) Close() {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	delete(s.hub.subs, s)
	s.fail(ErrClosed)
	clear(s.queue)
	s.queue = nil
	s.newest = nil
}
