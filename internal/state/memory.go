package state

import (
	"context"
	"sync"
	"time"
)

const defaultMaxEntries = 1_000_000

// Memory is the store of one process.
type Memory struct {
	o   Options
	max int
	now func() time.Time

	mu      sync.Mutex
	entries map[string]*entry
	// sweepAt is when expired entries are dropped next; fullSweepAt the
	// earliest next sweep when the store is full.
	sweepAt, fullSweepAt time.Time
}

type entry struct {
	n       int64
	expires time.Time
}

// NewMemory returns an empty memory store.
func NewMemory(o Options) *Memory {
	m := &Memory{o: o, max: o.MaxEntries, now: time.Now, entries: map[string]*entry{}}
	if m.max <= 0 {
		m.max = defaultMaxEntries
	}
	return m
}

// get returns the live entry of key, creating it when absent (nil when
// the store is full).
func (m *Memory) get(key string, ttl time.Duration, now time.Time) (e *entry, created bool) {
	if e := m.entries[key]; e != nil && now.Before(e.expires) {
		return e, false
	}
	// Expired entries are dropped once a minute, or when the store is
	// full, at most once a second (a full sweep is O(entries)).
	if !now.Before(m.sweepAt) || (len(m.entries) >= m.max && !now.Before(m.fullSweepAt)) {
		m.sweep(now)
	}
	if len(m.entries) >= m.max {
		return nil, false
	}
	e = &entry{expires: now.Add(ttl)}
	m.entries[key] = e
	return e, true
}

func (m *Memory) sweep(now time.Time) {
	for k, e := range m.entries {
		if !now.Before(e.expires) {
			delete(m.entries, k)
		}
	}
	m.sweepAt = now.Add(time.Minute)
	m.fullSweepAt = now.Add(time.Second)
}

// Claim implements Store.
func (m *Memory) Claim(_ context.Context, owner, key string, ttl time.Duration) (bool, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	e, created := m.get("c\x00"+owner+"\x00"+key, ttl, now)
	if e == nil {
		countError(m.o, "claim")
		return false, ErrFull
	}
	return created, nil
}

// Add implements Store.
func (m *Memory) Add(_ context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	e, _ := m.get("n\x00"+key, ttl, now)
	if e == nil {
		countError(m.o, "add")
		return 0, ErrFull
	}
	e.n += delta
	return e.n, nil
}

// Check implements Store: memory always answers.
func (m *Memory) Check(context.Context) error { return nil }

// Name implements Store.
func (m *Memory) Name() string { return "memory" }

// Close implements Store.
func (m *Memory) Close() error { return nil }
