// Package models keeps the newest snapshot of every model, as read from the compacted models topic; the
// predictor applies them and the trainer's ModelService serves them.
package models

import (
	"slices"
	"strings"
	"sync"

	"github.com/greenwave-city/greenwave/pkg/train"
)

// Store holds the newest snapshot per model id. It is safe for concurrent use.
type Store struct {
	mu     sync.RWMutex
	models map[string]*train.Snapshot
	// changed is closed by the next Put that stores a snapshot, then forgotten; nil while nobody waits, so a
	// store nobody watches (the trainer's) allocates nothing per Put.
	changed chan struct{}
}

// NewStore returns an empty store.
func NewStore() *Store { return &Store{models: map[string]*train.Snapshot{}} }

// Put stores s, which it keeps and callers must not modify, unless a newer version of the model is already held (a compacted topic can replay older values),
// and reports whether it did. Only the version decides, not the feature set: the trainer's model for a newer
// feature set continues the versions of the model it replaces (train.Learner.Upgrade), so it replaces it here.
func (st *Store) Put(s *train.Snapshot) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if cur, ok := st.models[s.ModelID]; ok && cur.Version > s.Version {
		return false
	}
	st.models[s.ModelID] = s
	if st.changed != nil {
		close(st.changed)
		st.changed = nil
	}
	return true
}

// Changed returns a channel that is closed the next time Put stores a snapshot. It lets a reader wait for a
// model without polling: take the channel first, then look at the store, then wait on the channel — a Put
// between the look and the wait has already closed it, so no change is missed. Every waiter of one change
// shares the channel (a broadcast); after it fires, call Changed again for the next change.
func (st *Store) Changed() <-chan struct{} {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.changed == nil {
		st.changed = make(chan struct{})
	}
	return st.changed
}

// Get returns a model by id.
func (st *Store) Get(id string) (*train.Snapshot, bool) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	s, ok := st.models[id]
	return s, ok
}

// Len returns the number of models held.
func (st *Store) Len() int {
	st.mu.RLock()
	defer st.mu.RUnlock()
	return len(st.models)
}

// Filter selects models; an empty field matches every model.
type Filter struct {
	IntersectionIDs, ApproachIDs []string
	HorizonsS                    []uint32
	// Target is a train target name (train.TargetFlow, …); "" matches every target.
	Target string
}

// Match reports whether a model passes a filter.
func Match(f Filter, s *train.Snapshot) bool {
	in := func(list []string, v string) bool { return len(list) == 0 || slices.Contains(list, v) }
	if !in(f.IntersectionIDs, s.IntersectionID) || !in(f.ApproachIDs, s.ApproachID) {
		return false
	}
	if len(f.HorizonsS) > 0 && !slices.Contains(f.HorizonsS, s.HorizonS) {
		return false
	}
	return f.Target == "" || f.Target == s.Target
}

// List returns up to limit models matching f with ids after `after`, ordered by id, and whether more follow.
func (st *Store) List(f Filter, after string, limit int) ([]*train.Snapshot, bool) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	ids := make([]string, 0, len(st.models))
	for id, s := range st.models {
		if strings.Compare(id, after) > 0 && Match(f, s) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	more := len(ids) > limit
	if more {
		ids = ids[:limit]
	}
	out := make([]*train.Snapshot, len(ids))
	for i, id := range ids {
		out[i] = st.models[id]
	}
	return out, more
}
