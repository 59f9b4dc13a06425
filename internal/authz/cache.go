package authz

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/singleflight"

	"github.com/mizuchi-uploadr/mizuchi/internal/telemetry"
)

// Defaults for CacheOptions.
const (
	DefaultCacheMaxEntries = 10000
)

// Decision labels of mizuchi_authz_decisions_total and of the span
// attribute authz.decision.
const (
	DecisionAllow = "allow"
	DecisionDeny  = "deny"
	DecisionError = "error"
)

// ErrNoInput is returned for a nil input.
var ErrNoInput = errors.New("authz: no input")

// CacheOptions configure a Cache.
type CacheOptions struct {
	// TTL is how long a decision (allow or deny) is reused. Zero or less
	// disables storing decisions; concurrent identical checks are still
	// collapsed into one engine call.
	TTL time.Duration
	// MaxEntries bounds the number of stored decisions; the least recently
	// used is evicted first. Zero or less means DefaultCacheMaxEntries.
	MaxEntries int
	// Engine (opa, openfga) and Bucket label the metrics and name the span
	// (authz.<engine>).
	Engine string
	Bucket string
	// Metrics may be nil.
	Metrics *telemetry.Metrics
	// TracerProvider may be nil: then no span is started.
	TracerProvider trace.TracerProvider
	// Now defaults to time.Now.
	Now func() time.Time
}

// Cache is an Authorizer that remembers the decisions of another one.
//
// Decisions are keyed by the exact input document (see KeyBuilder), never
// by a hash. Errors are never stored. Concurrent checks of the same input
// share one call to the engine; a caller whose context ends stops waiting,
// but the shared call goes on (bounded by the engine's timeout) for the
// others. An input that cannot be keyed is passed to the engine uncached.
type Cache struct {
	inner    Authorizer
	ttl      time.Duration
	max      int
	now      func() time.Time
	tracer   trace.Tracer
	spanName string
	// counters[decision][cached]: decision 0 allow, 1 deny, 2 error;
	// cached 0 false, 1 true. Nil without metrics.
	counters [3][2]prometheus.Counter

	keys  sync.Pool // *KeyBuilder
	group singleflight.Group
	// joined, when set by a test, is called once a caller waits for a
	// shared engine call.
	joined func()

	mu      sync.Mutex
	entries map[string]*entry
	// head is the most recently used entry, tail the least.
	head, tail *entry
}

type entry struct {
	key        string
	allow      bool
	limits     *Limits
	expires    time.Time
	prev, next *entry
}

// NewCache puts a decision cache in front of inner.
func NewCache(inner Authorizer, opts CacheOptions) *Cache {
	c := &Cache{
		inner:    inner,
		ttl:      opts.TTL,
		max:      opts.MaxEntries,
		now:      opts.Now,
		spanName: "authz." + opts.Engine,
		entries:  make(map[string]*entry),
	}
	if c.max <= 0 {
		c.max = DefaultCacheMaxEntries
	}
	if c.now == nil {
		c.now = time.Now
	}
	if opts.TracerProvider != nil {
		c.tracer = opts.TracerProvider.Tracer("github.com/mizuchi-uploadr/mizuchi/internal/authz")
	}
	if opts.Metrics != nil {
		for d, decision := range []string{DecisionAllow, DecisionDeny, DecisionError} {
			for h, cached := range []string{"false", "true"} {
				c.counters[d][h] = opts.Metrics.AuthzDecisions.WithLabelValues(opts.Bucket, opts.Engine, decision, cached)
			}
		}
	}
	c.keys.New = func() any { return new(KeyBuilder) }
	return c
}

// Authorize answers from the cache or asks the engine.
func (c *Cache) Authorize(ctx context.Context, in *Input) (bool, error) {
	allow, _, err := c.AuthorizeLimits(ctx, in)
	return allow, err
}

// decided is an engine's answer: an allow may carry limits.
type decided struct {
	allow  bool
	limits *Limits
}

// ask calls the engine, with limits when it can give them.
func (c *Cache) ask(ctx context.Context, in *Input) (decided, error) {
	if l, ok := c.inner.(LimitingAuthorizer); ok {
		allow, lim, err := l.AuthorizeLimits(ctx, in)
		return decided{allow, lim}, err
	}
	allow, err := c.inner.Authorize(ctx, in)
	return decided{allow: allow}, err
}

// AuthorizeLimits answers from the cache or asks the engine; the limits
// of an allow are cached with it.
func (c *Cache) AuthorizeLimits(ctx context.Context, in *Input) (bool, *Limits, error) {
	if in == nil {
		return false, nil, ErrNoInput
	}
	var span trace.Span
	if c.tracer != nil {
		ctx, span = c.tracer.Start(ctx, c.spanName)
		defer span.End()
	}

	kb := c.keys.Get().(*KeyBuilder)
	key, ok := kb.Key(in)
	if ok && c.ttl > 0 {
		if d, hit := c.lookup(key); hit {
			c.keys.Put(kb)
			c.record(span, d.allow, nil, true)
			return d.allow, d.limits, nil
		}
	}
	var k string
	if ok {
		k = string(key)
	}
	c.keys.Put(kb)

	if !ok {
		d, err := c.ask(ctx, in)
		c.record(span, d.allow, err, false)
		return d.allow, d.limits, err
	}

	// The shared call must not end because the first caller went away,
	// and must not see a later change of the caller's input.
	shared := context.WithoutCancel(ctx)
	cp := *in
	called := false
	ch := c.group.DoChan(k, func() (any, error) {
		if c.ttl > 0 {
			if d, hit := c.lookup([]byte(k)); hit {
				return d, nil
			}
		}
		called = true
		d, err := c.ask(shared, &cp)
		if err != nil {
			return decided{}, err
		}
		if c.ttl > 0 {
			c.store(k, d)
		}
		return d, nil
	})
	if c.joined != nil {
		c.joined()
	}
	select {
	case <-ctx.Done():
		err := ctx.Err()
		c.record(span, false, err, false)
		return false, nil, err
	case r := <-ch:
		d, _ := r.Val.(decided)
		if r.Err != nil {
			d = decided{}
		}
		c.record(span, d.allow, r.Err, !called)
		return d.allow, d.limits, r.Err
	}
}

// Len reports how many decisions are stored (expired ones included until
// they are looked up or evicted).
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

func (c *Cache) record(span trace.Span, allow bool, err error, cached bool) {
	d := 1
	name := DecisionDeny
	switch {
	case err != nil:
		d, name = 2, DecisionError
	case allow:
		d, name = 0, DecisionAllow
	}
	h := 0
	if cached {
		h = 1
	}
	if ctr := c.counters[d][h]; ctr != nil {
		ctr.Inc()
	}
	if span != nil && span.IsRecording() {
		span.SetAttributes(
			attribute.String("authz.decision", name),
			attribute.Bool("authz.cache_hit", cached),
		)
		if err != nil {
			// The error text stays out of the span: it may name the engine's
			// address; the log line of the request carries it.
			span.SetStatus(codes.Error, "authorization engine unavailable")
		}
	}
}

func (c *Cache) lookup(key []byte) (d decided, hit bool) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[string(key)]
	if e == nil {
		return decided{}, false
	}
	if !now.Before(e.expires) {
		c.remove(e)
		return decided{}, false
	}
	c.moveToFront(e)
	return decided{e.allow, e.limits}, true
}

func (c *Cache) store(key string, d decided) {
	allow := d.allow
	expires := c.now().Add(c.ttl)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[key]; e != nil {
		e.allow, e.limits, e.expires = allow, d.limits, expires
		c.moveToFront(e)
		return
	}
	e := &entry{key: key, allow: allow, limits: d.limits, expires: expires}
	c.entries[key] = e
	c.pushFront(e)
	for len(c.entries) > c.max {
		c.remove(c.tail)
	}
}

func (c *Cache) pushFront(e *entry) {
	e.prev, e.next = nil, c.head
	if c.head != nil {
		c.head.prev = e
	}
	c.head = e
	if c.tail == nil {
		c.tail = e
	}
}

func (c *Cache) unlink(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		c.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		c.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

func (c *Cache) moveToFront(e *entry) {
	if c.head == e {
		return
	}
	c.unlink(e)
	c.pushFront(e)
}

func (c *Cache) remove(e *entry) {
	c.unlink(e)
	delete(c.entries, e.key)
}

var _ Authorizer = (*Cache)(nil)
