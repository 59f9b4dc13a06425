package sigv4

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"
)

// ReplayStore remembers the signatures of signed write requests for the skew window.
type ReplayStore interface {
	// Claim records key for ttl on behalf of owner (the access key that pays for
	// the entry) and reports whether it was new. A store that refuses owner
	// because it holds more than its fair share returns an error wrapping
	// ErrReplayShare; an error that is neither means the store could not answer.
	Claim(ctx context.Context, owner, key string, ttl time.Duration) (fresh bool, err error)
}

// ErrReplayShare is wrapped by the error of a claim refused because its
// owner holds more than its fair share of the store.
var ErrReplayShare = errors.New("sigv4: the access key holds more than its share of the replay store")

// ShareError is an ErrReplayShare that says when the owner may try again.
type ShareError struct {
	// RetryAfter is how long the owner should wait before its next claim.
	RetryAfter time.Duration
}

func (e *ShareError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", ErrReplayShare, e.RetryAfter.Round(time.Second))
}

func (e *ShareError) Unwrap() error { return ErrReplayShare }

// MemoryReplayOptions configure a MemoryReplayStore.
type MemoryReplayOptions struct {
	// MaxEntries bounds the entries held for all owners together (required).
	MaxEntries int
	// Slot is the granularity of expiry: entries are grouped by the slot
	// in which they expire and dropped a whole slot at a time, at most
	// one slot late (1 second when zero).
	Slot time.Duration
	// Now returns the current time (time.Now when nil).
	Now func() time.Time
}

// MemoryReplayStore is the in-process ReplayStore. It holds at most
// MaxEntries keys, each for its ttl, and shares them fairly between owners:
//
//   - While there is room, any owner claims.
//   - When the store is full, an owner holding at least its fair share
//     (MaxEntries ÷ owners holding entries, the claimant included) is
//     refused with a ShareError.
//   - An owner below its fair share makes room: the oldest slot of the
//     owner holding the most entries is dropped, and that owner is refused
//     (ShareError) until the end of the dropped slot, when every dropped
//     signature would have been refused by the clock check anyway. So a
//     replay is never accepted because an entry was dropped, and the
//     sender that fills the store pays for it, not the others.
//
// Keys are kept as 16-byte digests (SHA-256, truncated), grouped per owner
// in one set per expiry slot.
type MemoryReplayStore struct {
	max  int
	slot int64 // nanoseconds
	now  func() time.Time

	mu        sync.Mutex
	owners    map[string]*replayOwner
	total     int
	nextSweep int64
	lastSweep int64
}

type replayOwner struct {
	gens    []replayGen // ascending by end
	n       int
	blocked int64 // unix nanoseconds: refused until then
}

// replayGen holds the keys of one owner that expire within one slot;
// every one of them expires before end.
type replayGen struct {
	end  int64
	keys map[[16]byte]struct{}
}

// NewMemoryReplayStore returns an empty store.
func NewMemoryReplayStore(o MemoryReplayOptions) *MemoryReplayStore {
	if o.Slot <= 0 {
		o.Slot = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &MemoryReplayStore{max: max(o.MaxEntries, 1), slot: int64(o.Slot), now: o.Now, owners: map[string]*replayOwner{}}
}

// Claim implements ReplayStore. It never fails for another reason than
// the owner's share, and never blocks on anything but its own lock.
func (s *MemoryReplayStore) Claim(_ context.Context, owner, key string, ttl time.Duration) (bool, error) {
	now := s.now().UnixNano()
	sum := sha256.Sum256([]byte(key))
	var d [16]byte
	copy(d[:], sum[:16])
	expires := now + int64(max(ttl, 0))

	s.mu.Lock()
	defer s.mu.Unlock()
	// Every slot, and when the store is full (at most once a second: a
	// sweep visits every owner), forget what has expired.
	if now >= s.nextSweep || s.total >= s.max && now-s.lastSweep >= int64(time.Second) {
		s.sweep(now)
		s.nextSweep, s.lastSweep = now+s.slot, now
	}
	o := s.owners[owner]
	if o == nil {
		o = &replayOwner{}
		s.owners[owner] = o
	} else {
		s.expire(o, now)
	}
	if o.blocked > now {
		return false, &ShareError{RetryAfter: time.Duration(o.blocked - now)}
	}
	for _, g := range o.gens {
		if _, dup := g.keys[d]; dup {
			return false, nil
		}
	}
	if s.total >= s.max {
		active := 0
		for _, p := range s.owners {
			if p.n > 0 || p == o {
				active++
			}
		}
		if o.n >= max(s.max/active, 1) {
			return false, &ShareError{RetryAfter: time.Duration(o.gens[0].end - now)}
		}
		for s.total >= s.max {
			s.evictOldest(s.heaviest(), now)
		}
	}
	s.insert(o, d, expires)
	return true, nil
}

func (s *MemoryReplayStore) insert(o *replayOwner, d [16]byte, expires int64) {
	end := (expires/s.slot + 1) * s.slot
	i := sort.Search(len(o.gens), func(i int) bool { return o.gens[i].end >= end })
	if i == len(o.gens) || o.gens[i].end != end {
		o.gens = append(o.gens, replayGen{})
		copy(o.gens[i+1:], o.gens[i:])
		o.gens[i] = replayGen{end: end, keys: map[[16]byte]struct{}{}}
	}
	o.gens[i].keys[d] = struct{}{}
	o.n++
	s.total++
}

// expire drops the owner's slots that have ended: their keys expired
// before the slot's end, so the clock check refuses them now.
func (s *MemoryReplayStore) expire(o *replayOwner, now int64) {
	i := 0
	for i < len(o.gens) && o.gens[i].end <= now {
		o.n -= len(o.gens[i].keys)
		s.total -= len(o.gens[i].keys)
		i++
	}
	if i > 0 {
		o.gens = append(o.gens[:0], o.gens[i:]...)
	}
}

// sweep expires every owner and forgets owners with nothing left.
func (s *MemoryReplayStore) sweep(now int64) {
	for name, o := range s.owners {
		s.expire(o, now)
		if o.n == 0 && o.blocked <= now {
			delete(s.owners, name)
		}
	}
}

// heaviest is the owner holding the most entries.
func (s *MemoryReplayStore) heaviest() *replayOwner {
	var h *replayOwner
	for _, o := range s.owners {
		if h == nil || o.n > h.n {
			h = o
		}
	}
	return h
}

// evictOldest drops the owner's oldest slot and refuses the owner until
// that slot's end, so that none of the dropped keys can be claimed again
// while it could still pass the clock check.
func (s *MemoryReplayStore) evictOldest(o *replayOwner, now int64) {
	g := o.gens[0]
	o.gens = append(o.gens[:0], o.gens[1:]...)
	o.n -= len(g.keys)
	s.total -= len(g.keys)
	o.blocked = max(o.blocked, g.end, now)
}

// Len returns the number of entries held.
func (s *MemoryReplayStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

var _ ReplayStore = (*MemoryReplayStore)(nil)
