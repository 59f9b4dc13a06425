package limits

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
)

// The limits, as named in metrics (mizuchi_limit_refusals_total{limit})
// and span events.
const (
	LimitRate        = "requests_per_second"
	LimitConcurrency = "concurrent_uploads"
	LimitDaily       = "bytes_per_day"
	// LimitUnavailable counts requests refused because the counters did
	// not answer (fail closed).
	LimitUnavailable = "unavailable"
)

// The scopes a limit applies to.
const (
	ScopeSubject = "per_subject"
	ScopeBucket  = "per_bucket"
)

// LeaseTTL is how long a concurrency slot stays taken without renewal:
// a replica that dies holding slots frees them after this long. A live
// upload renews its slots every LeaseTTL/3.
const LeaseTTL = 60 * time.Second

// quotaTTL keeps a day's byte counter a little longer than the day.
const quotaTTL = 26 * time.Hour

// Set is one block of limits; a zero field is no limit.
type Set struct {
	RequestsPerSecond float64
	Burst             int64
	ConcurrentUploads int64
	BytesPerSecond    int64
	BytesPerDay       int64
}

// IsZero reports whether the set limits nothing.
func (s Set) IsZero() bool { return s == Set{} }

// counted reports whether the set needs the counters (everything but
// bandwidth).
func (s Set) counted() bool {
	return s.RequestsPerSecond > 0 || s.ConcurrentUploads > 0 || s.BytesPerDay > 0
}

// Refusal is an admission refused by a limit.
type Refusal struct {
	// Limit is one of the Limit constants, Scope one of the Scope ones.
	Limit string
	Scope string
	// RetryAfter is when trying again may succeed (rate, concurrency).
	RetryAfter time.Duration
}

func (r *Refusal) Error() string {
	return fmt.Sprintf("limits: %s %s reached", r.Scope, r.Limit)
}

// ErrUnavailable wraps a failure of the counters: the request is refused
// (fail closed).
var ErrUnavailable = errors.New("limits: counters unavailable")

// scope is one counted party of an admission, with its store keys.
type scope struct {
	name  string // ScopeSubject or ScopeBucket
	id    string // hashed party, part of every key
	set   Set
	quota string // key of today's byte counter
}

func (s *scope) rateKey() string  { return "r:" + s.id }
func (s *scope) leaseKey() string { return "l:" + s.id }

// admission is what one request asks the counters for.
type admission struct {
	scopes []*scope
	// rate: the request takes a token; upload: it takes a slot and
	// counts bytes.
	rate, upload bool
	bytes        int64
	lease        string
}

// Counters hold what limits count: in one process (memory) or shared by
// every replica (redis).
type Counters interface {
	// admit checks every scope and, only when all allow, takes a token,
	// a slot and the bytes: a refusal takes nothing. One round trip.
	admit(ctx context.Context, a *admission) (*Refusal, error)
	// release frees the slots and gives back refund bytes.
	release(ctx context.Context, a *admission, refund int64) error
	// renew extends the slots by LeaseTTL.
	renew(ctx context.Context, a *admission) error
	name() string
}

// Limiter is the one limiter of a process; Bucket values use it.
type Limiter struct {
	counters Counters
	metrics  *Metrics
	now      func() time.Time
	shapers  shapers
}

// New returns a limiter over counters; metrics may be nil.
func New(c Counters, m *Metrics) *Limiter {
	return &Limiter{counters: c, metrics: m, now: time.Now, shapers: shapers{m: map[string]*shaper{}}}
}

// Backend names the counters: memory or redis.
func (l *Limiter) Backend() string { return l.counters.name() }

// Bucket is the limits of one configured bucket.
type Bucket struct {
	l          *Limiter
	name       string
	id         string
	perSubject Set
	perBucket  Set
}

// Bucket returns the limits of the bucket name; nil when both sets are
// zero.
func (l *Limiter) Bucket(name string, perSubject, perBucket Set) *Bucket {
	if perSubject.IsZero() && perBucket.IsZero() {
		return nil
	}
	return l.NewBucket(name, perSubject, perBucket)
}

// NewBucket returns the limits of the bucket name, even when both sets
// are zero: a policy decision may still set a subject's limits.
func (l *Limiter) NewBucket(name string, perSubject, perBucket Set) *Bucket {
	return &Bucket{l: l, name: name, id: hashID("bucket", name), perSubject: perSubject, perBucket: perBucket}
}

// PerSubject returns the bucket's limits of one subject.
func (b *Bucket) PerSubject() Set { return b.perSubject }

// Ask is one request to admit.
type Ask struct {
	// Subject identifies the party (e.g. "sigv4:AKIA…", "jwt:alice",
	// "ip:192.0.2.1"); it is hashed before it reaches the counters.
	Subject string
	// Upload is true for a request with an object body (PutObject,
	// UploadPart): it takes a slot, counts Bytes and is shaped.
	Upload bool
	Bytes  int64
	// Exempt skips the token bucket (AbortMultipartUpload).
	Exempt bool
	// Override replaces the bucket's per-subject limits (from the policy
	// engine); nil keeps them.
	Override *Set
}

// Ticket is an admitted request. Done must be called once, whatever
// happened.
type Ticket struct {
	b      *Bucket
	a      *admission
	shaped []*shaper
	stop   chan struct{}
	done   sync.Once
}

// Admit decides a request before its body is read. The error is a
// *Refusal, or wraps ErrUnavailable when the counters did not answer.
func (b *Bucket) Admit(ctx context.Context, ask Ask) (*Ticket, error) {
	subj := b.perSubject
	if ask.Override != nil {
		subj = *ask.Override
	}
	now := b.l.now().UTC()
	day := now.Format("20060102")
	a := &admission{rate: !ask.Exempt, upload: ask.Upload}
	if ask.Upload {
		a.bytes = max(ask.Bytes, 0)
	}
	sid := hashID("subject", b.name+"\x00"+ask.Subject)
	for _, s := range []*scope{
		{name: ScopeSubject, id: sid, set: subj},
		{name: ScopeBucket, id: b.id, set: b.perBucket},
	} {
		if !s.set.counted() {
			if s.set.BytesPerSecond > 0 {
				a.scopes = append(a.scopes, s)
			}
			continue
		}
		s.quota = "q:" + s.id + ":" + day
		a.scopes = append(a.scopes, s)
	}
	t := &Ticket{b: b, a: a}
	if a.needsCounters() {
		if ask.Upload && a.holdsLease() {
			a.lease = newLeaseID()
		}
		ref, err := b.l.counters.admit(ctx, a)
		if err != nil {
			b.l.metrics.refused(b.name, LimitUnavailable)
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		if ref != nil {
			b.l.metrics.refused(b.name, ref.Limit)
			return nil, ref
		}
		if a.lease != "" {
			t.stop = make(chan struct{})
			go t.renewLoop()
		}
	}
	if ask.Upload {
		for _, s := range a.scopes {
			if s.set.BytesPerSecond > 0 {
				t.shaped = append(t.shaped, b.l.shapers.acquire(b.name, s.name+":"+s.id, s.set.BytesPerSecond, b.l.metrics))
			}
		}
	}
	return t, nil
}

// needsCounters reports whether any scope counts anything this request
// takes.
func (a *admission) needsCounters() bool {
	for _, s := range a.scopes {
		if a.rate && s.set.RequestsPerSecond > 0 {
			return true
		}
		if a.upload && (s.set.ConcurrentUploads > 0 || (s.set.BytesPerDay > 0 && a.bytes > 0)) {
			return true
		}
	}
	return false
}

func (a *admission) holdsLease() bool {
	for _, s := range a.scopes {
		if s.set.ConcurrentUploads > 0 {
			return true
		}
	}
	return false
}

func (t *Ticket) renewLoop() {
	tick := time.NewTicker(LeaseTTL / 3)
	defer tick.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
			ctx, cancel := context.WithTimeout(context.Background(), LeaseTTL/3)
			_ = t.b.l.counters.renew(ctx, t.a)
			cancel()
		}
	}
}

// Done frees the request's slots and, unless accepted, gives back the
// bytes it reserved: a failed upload consumes no quota.
func (t *Ticket) Done(accepted bool) {
	if t == nil {
		return
	}
	t.done.Do(func() {
		if t.stop != nil {
			close(t.stop)
		}
		for _, s := range t.shaped {
			t.b.l.shapers.release(s, t.b.l.metrics)
		}
		refund := int64(0)
		if !accepted {
			refund = t.a.bytes
		}
		if t.a.lease == "" && refund == 0 {
			return
		}
		if !t.a.needsCounters() {
			return
		}
		// The request's context may be gone (client disconnected): the
		// release must happen anyway.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = t.b.l.counters.release(ctx, t.a, refund)
	})
}

// hashID names a party in the counters without its name: subjects never
// reach the store (or its keys) in the clear.
func hashID(kind, name string) string {
	h := sha256.Sum256([]byte("mizuchi-limits\x00" + kind + "\x00" + name))
	return hex.EncodeToString(h[:12])
}

func newLeaseID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// retryAfter rounds a wait up to whole seconds, at least one.
func retryAfter(d time.Duration) time.Duration {
	return time.Duration(max(1, math.Ceil(d.Seconds()))) * time.Second
}
