package state

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
)

// Redis is the store of a fleet: a Valkey or Redis server.
type Redis struct {
	o       Options
	c       *redis.Client
	prefix  string
	timeout time.Duration
	where   string // host:port, for messages (never the password)
}

// addScript adds to a counter and gives it its expiry when it has none,
// in one round trip and atomically.
var addScript = redis.NewScript(`
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return v`)

// NewRedis connects lazily: a server that is down does not stop the start,
// it makes Check fail and calls answer ErrUnavailable until it is back.
func NewRedis(cfg config.StateRedis, o Options) (*Redis, error) {
	opt := &redis.Options{}
	if cfg.URL != "" {
		var err error
		if opt, err = redis.ParseURL(cfg.URL); err != nil {
			// The URL may hold a password: never echo it.
			return nil, errors.New("state: redis url is not valid")
		}
	} else {
		opt.Addr = cfg.Address
		opt.DB = cfg.DB
	}
	if cfg.Username != "" {
		opt.Username = cfg.Username
	}
	if cfg.Password != "" {
		opt.Password = cfg.Password
	}
	if cfg.TLS && opt.TLSConfig == nil {
		host, _, _ := net.SplitHostPort(opt.Addr)
		opt.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
	}
	timeout := time.Duration(cfg.TimeoutSeconds) * time.Second
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout, opt.PoolTimeout = timeout, timeout, timeout, timeout
	opt.ContextTimeoutEnabled = true
	// One retry on a fresh connection: a connection that died with a
	// restarted server costs no failed request, a server that is down
	// fails fast.
	opt.MaxRetries = 1
	opt.MinRetryBackoff, opt.MaxRetryBackoff = 5*time.Millisecond, 50*time.Millisecond
	opt.DisableIdentity = true
	r := &Redis{o: o, prefix: cfg.KeyPrefix, timeout: timeout, where: opt.Addr}
	r.c = redis.NewClient(opt)
	if o.Tracer != nil {
		r.c.AddHook(tracingHook{o.Tracer, opt.Addr})
	}
	return r, nil
}

func (r *Redis) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, r.timeout)
}

func (r *Redis) fail(op string, err error) error {
	countError(r.o, op)
	return fmt.Errorf("%w: redis %s: %s", ErrUnavailable, op, describe(err))
}

// describe is a short reason without addresses' user information.
func describe(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.As(err, new(*net.OpError)):
		return "connection failed"
	}
	return err.Error()
}

// Claim implements Store: SET key 1 NX PX ttl, one round trip.
func (r *Redis) Claim(ctx context.Context, owner, key string, ttl time.Duration) (bool, error) {
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	// The owner (an access key) is not written to the store: the
	// signature names one request of one owner already.
	_ = owner
	ok, err := r.c.SetNX(ctx, r.prefix+"replay:"+key, "1", ttl).Result()
	if err != nil {
		return false, r.fail("claim", err)
	}
	return ok, nil
}

// Add implements Store with a Lua script (EVALSHA, EVAL once after a
// server restart).
func (r *Redis) Add(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	ms := max(ttl.Milliseconds(), 1)
	v, err := addScript.Run(ctx, r.c, []string{r.prefix + "n:" + key}, delta, strconv.FormatInt(ms, 10)).Int64()
	if err != nil {
		return 0, r.fail("add", err)
	}
	return v, nil
}

// Check implements Store: PING.
func (r *Redis) Check(ctx context.Context) error {
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	if err := r.c.Ping(ctx).Err(); err != nil {
		return r.fail("check", err)
	}
	return nil
}

// Name implements Store.
func (r *Redis) Name() string { return "redis" }

// Close implements Store.
func (r *Redis) Close() error { return r.c.Close() }

// tracingHook makes one client span per command or pipeline, with the
// command name only (keys hold signatures and subjects' counters).
type tracingHook struct {
	tracer trace.Tracer
	addr   string
}

func (h tracingHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h tracingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		ctx, span := h.start(ctx, cmd.Name())
		defer span.End()
		err := next(ctx, cmd)
		h.end(span, err)
		return err
	}
}

func (h tracingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		ctx, span := h.start(ctx, "pipeline")
		defer span.End()
		err := next(ctx, cmds)
		h.end(span, err)
		return err
	}
}

func (h tracingHook) start(ctx context.Context, op string) (context.Context, trace.Span) {
	host, port, _ := net.SplitHostPort(h.addr)
	p, _ := strconv.Atoi(port)
	return h.tracer.Start(ctx, "state.redis "+op, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("db.system.name", "redis"),
			attribute.String("db.operation.name", op),
			attribute.String("server.address", host),
			attribute.Int("server.port", p),
		))
}

func (h tracingHook) end(span trace.Span, err error) {
	if err != nil && !errors.Is(err, redis.Nil) {
		span.SetStatus(codes.Error, describe(err))
	}
}
