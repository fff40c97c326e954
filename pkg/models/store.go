// Package models keeps the newest snapshot of every model, as read from the compacted models topic; the
// predictor applies them and the trainer's ModelService serves them.
package models

import (
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// ID is the model id for an approach, horizon and target: "intersection/approach/horizon_s/target". The key
// starts with the intersection id, so the models topic stays co-partitioned with the other topics.
func ID(intersection, approach string, horizon time.Duration, target string) string {
	return intersection + "/" + approach + "/" + strconv.Itoa(int(horizon.Seconds())) + "/" + target
}

// Store holds the newest snapshot per model id. It is safe for concurrent use.
type Store struct {
	mu     sync.RWMutex
	models map[string]*greenwavev1.ModelSnapshot
	// changed is closed by the next Put that stores a snapshot, then forgotten; nil while nobody waits, so a
	// store nobody watches (the trainer's) allocates nothing per Put.
	changed chan struct{}
}

// NewStore returns an empty store.
func NewStore() *Store { return &Store{models: map[string]*greenwavev1.ModelSnapshot{}} }

// Put stores s unless a newer version of the model is already held (a compacted topic can replay older values),
// and reports whether it did. Only the version decides, not the feature set: the trainer's model for a newer
// feature set continues the versions of the model it replaces (train.Learner.Upgrade), so it replaces it here.
func (st *Store) Put(s *greenwavev1.ModelSnapshot) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if cur, ok := st.models[s.GetModelId()]; ok && cur.GetVersion() > s.GetVersion() {
		return false
	}
	st.models[s.GetModelId()] = s
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
func (st *Store) Get(id string) (*greenwavev1.ModelSnapshot, bool) {
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

// Match reports whether a model passes a filter (empty filter fields match everything).
func Match(f *greenwavev1.ModelFilter, s *greenwavev1.ModelSnapshot) bool {
	in := func(list []string, v string) bool {
		if len(list) == 0 {
			return true
		}
		for _, x := range list {
			if x == v {
				return true
			}
		}
		return false
	}
	if !in(f.GetIntersectionIds(), s.GetIntersectionId()) || !in(f.GetApproachIds(), s.GetApproachId()) {
		return false
	}
	if hs := f.GetHorizonsS(); len(hs) > 0 {
		ok := false
		for _, h := range hs {
			ok = ok || h == s.GetHorizonS()
		}
		if !ok {
			return false
		}
	}
	return f.GetTarget() == greenwavev1.Target_TARGET_UNSPECIFIED || f.GetTarget() == s.GetTarget()
}

// List returns up to limit models matching f with ids after `after`, ordered by id, and whether more follow.
func (st *Store) List(f *greenwavev1.ModelFilter, after string, limit int) ([]*greenwavev1.ModelSnapshot, bool) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	ids := make([]string, 0, len(st.models))
	for id, s := range st.models {
		if strings.Compare(id, after) > 0 && Match(f, s) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	more := len(ids) > limit
	if more {
		ids = ids[:limit]
	}
	out := make([]*greenwavev1.ModelSnapshot, len(ids))
	for i, id := range ids {
		out[i] = st.models[id]
	}
	return out, more
}
