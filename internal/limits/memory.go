package limits

import (
	"context"
	"errors"
	"sync"
	"time"
)

// maxMemoryEntries bounds the memory counters; past it admissions fail
// closed rather than forget what they count.
const maxMemoryEntries = 1_000_000

var errFull = errors.New("memory counters full")

// Memory counts in this process.
type Memory struct {
	now func() time.Time

	mu      sync.Mutex
	tokens  map[string]*tokenState
	leases  map[string]map[string]time.Time // scope → lease → expiry
	used    map[string]*dayCount
	sweepAt time.Time
}

type tokenState struct {
	tokens float64
	at     time.Time
	// full is when the bucket is full again and the entry can go.
	full time.Time
}

type dayCount struct {
	n       int64
	expires time.Time
}

// NewMemory returns empty memory counters.
func NewMemory() *Memory {
	return &Memory{now: time.Now, tokens: map[string]*tokenState{}, leases: map[string]map[string]time.Time{}, used: map[string]*dayCount{}}
}

func (m *Memory) name() string { return "memory" }

func (m *Memory) size() int { return len(m.tokens) + len(m.leases) + len(m.used) }

func (m *Memory) sweep(now time.Time) {
	for k, t := range m.tokens {
		if !now.Before(t.full) {
			delete(m.tokens, k)
		}
	}
	for k, ls := range m.leases {
		for id, exp := range ls {
			if !now.Before(exp) {
				delete(ls, id)
			}
		}
		if len(ls) == 0 {
			delete(m.leases, k)
		}
	}
	for k, d := range m.used {
		if !now.Before(d.expires) {
			delete(m.used, k)
		}
	}
	m.sweepAt = now.Add(time.Minute)
}

// available returns the tokens of key at now.
func (m *Memory) available(key string, s Set, now time.Time) float64 {
	burst := float64(s.Burst)
	t := m.tokens[key]
	if t == nil {
		return burst
	}
	return min(burst, t.tokens+now.Sub(t.at).Seconds()*s.RequestsPerSecond)
}

func (m *Memory) liveLeases(key string, now time.Time) int64 {
	var n int64
	for _, exp := range m.leases[key] {
		if now.Before(exp) {
			n++
		}
	}
	return n
}

func (m *Memory) admit(_ context.Context, a *admission) (*Refusal, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if !now.Before(m.sweepAt) || m.size() >= maxMemoryEntries {
		m.sweep(now)
	}
	if m.size() >= maxMemoryEntries {
		return nil, errFull
	}
	tokens := make([]float64, len(a.scopes))
	for i, s := range a.scopes {
		if a.rate && s.set.RequestsPerSecond > 0 {
			tokens[i] = m.available(s.rateKey(), s.set, now)
			if tokens[i] < 1 {
				wait := time.Duration((1 - tokens[i]) / s.set.RequestsPerSecond * float64(time.Second))
				return &Refusal{Limit: LimitRate, Scope: s.name, RetryAfter: retryAfter(wait)}, nil
			}
		}
		if a.upload && s.set.ConcurrentUploads > 0 && m.liveLeases(s.leaseKey(), now) >= s.set.ConcurrentUploads {
			return &Refusal{Limit: LimitConcurrency, Scope: s.name, RetryAfter: time.Second}, nil
		}
		if a.upload && s.set.BytesPerDay > 0 && a.bytes > 0 {
			var used int64
			if d := m.used[s.quota]; d != nil && now.Before(d.expires) {
				used = d.n
			}
			if used+a.bytes > s.set.BytesPerDay {
				return &Refusal{Limit: LimitDaily, Scope: s.name}, nil
			}
		}
	}
	for i, s := range a.scopes {
		if a.rate && s.set.RequestsPerSecond > 0 {
			left := tokens[i] - 1
			full := now.Add(time.Duration((float64(s.set.Burst) - left) / s.set.RequestsPerSecond * float64(time.Second)))
			m.tokens[s.rateKey()] = &tokenState{tokens: left, at: now, full: full}
		}
		if a.upload && s.set.ConcurrentUploads > 0 {
			ls := m.leases[s.leaseKey()]
			if ls == nil {
				ls = map[string]time.Time{}
				m.leases[s.leaseKey()] = ls
			}
			ls[a.lease] = now.Add(LeaseTTL)
		}
		if a.upload && s.set.BytesPerDay > 0 && a.bytes > 0 {
			d := m.used[s.quota]
			if d == nil || !now.Before(d.expires) {
				d = &dayCount{expires: now.Add(quotaTTL)}
				m.used[s.quota] = d
			}
			d.n += a.bytes
		}
	}
	return nil, nil
}

func (m *Memory) release(_ context.Context, a *admission, refund int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range a.scopes {
		if ls := m.leases[s.leaseKey()]; ls != nil {
			delete(ls, a.lease)
			if len(ls) == 0 {
				delete(m.leases, s.leaseKey())
			}
		}
		if refund > 0 && s.set.BytesPerDay > 0 {
			if d := m.used[s.quota]; d != nil {
				d.n = max(0, d.n-refund)
			}
		}
	}
	return nil
}

func (m *Memory) renew(_ context.Context, a *admission) error {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range a.scopes {
		if ls := m.leases[s.leaseKey()]; ls != nil {
			if _, ok := ls[a.lease]; ok {
				ls[a.lease] = now.Add(LeaseTTL)
			}
		}
	}
	return nil
}
