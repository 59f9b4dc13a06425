package limits

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mizuchi-uploadr/mizuchi/internal/state"
)

// Shared counts in the redis store, shared by every replica. Time is the
// server's (TIME), so replicas' clocks do not matter, except for the UTC
// day of a quota, which is the replica's.
type Shared struct {
	s state.Scripter
}

// NewShared returns counters in s.
func NewShared(s state.Scripter) *Shared { return &Shared{s: s} }

func (r *Shared) name() string { return "redis" }

// admitScript: KEYS per scope: rate hash, lease sorted set, quota counter.
// ARGV: scopes, rate (0/1), upload (0/1), bytes, lease id, lease ttl ms,
// quota ttl ms, then per scope: requests per second, burst, concurrent
// uploads, bytes per day. Answers {0,0,0}, or {limit, retry ms, scope}
// with limit 1 rate, 2 concurrency, 3 daily bytes; a refusal writes
// nothing but dropping expired leases.
var admitScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = tonumber(ARGV[1])
local rate, upload, bytes = ARGV[2] == '1', ARGV[3] == '1', tonumber(ARGV[4])
local lease, lttl, qttl = ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])
local tokens = {}
for i = 1, n do
  local o, k = 7 + (i - 1) * 4, (i - 1) * 3
  local rps, burst, conc, daily = tonumber(ARGV[o+1]), tonumber(ARGV[o+2]), tonumber(ARGV[o+3]), tonumber(ARGV[o+4])
  if rate and rps > 0 then
    local h = redis.call('HMGET', KEYS[k+1], 't', 'at')
    local tk = burst
    if h[1] then
      tk = math.min(burst, tonumber(h[1]) + math.max(0, now - tonumber(h[2])) * rps / 1000)
    end
    if tk < 1 then
      return {1, math.ceil((1 - tk) * 1000 / rps), i}
    end
    tokens[i] = tk
  end
  if upload and conc > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[k+2], '-inf', now)
    if redis.call('ZCARD', KEYS[k+2]) >= conc then
      return {2, 1000, i}
    end
  end
  if upload and daily > 0 and bytes > 0 then
    local used = tonumber(redis.call('GET', KEYS[k+3]) or '0')
    if used + bytes > daily then
      return {3, 0, i}
    end
  end
end
for i = 1, n do
  local o, k = 7 + (i - 1) * 4, (i - 1) * 3
  local rps, burst, conc, daily = tonumber(ARGV[o+1]), tonumber(ARGV[o+2]), tonumber(ARGV[o+3]), tonumber(ARGV[o+4])
  if tokens[i] then
    redis.call('HSET', KEYS[k+1], 't', tostring(tokens[i] - 1), 'at', tostring(now))
    redis.call('PEXPIRE', KEYS[k+1], math.ceil(burst * 1000 / rps) + 1000)
  end
  if upload and conc > 0 then
    redis.call('ZADD', KEYS[k+2], now + lttl, lease)
    redis.call('PEXPIRE', KEYS[k+2], lttl * 2)
  end
  if upload and daily > 0 and bytes > 0 then
    redis.call('INCRBY', KEYS[k+3], bytes)
    if redis.call('PTTL', KEYS[k+3]) < 0 then
      redis.call('PEXPIRE', KEYS[k+3], qttl)
    end
  end
end
return {0, 0, 0}`)

// releaseScript: KEYS per scope: lease set, quota counter. ARGV: lease
// id, refund bytes, then per scope: has a concurrency limit, has a quota
// (0/1).
var releaseScript = redis.NewScript(`
local refund = tonumber(ARGV[2])
for i = 1, #KEYS / 2 do
  local k, o = (i - 1) * 2, 2 + (i - 1) * 2
  if ARGV[o+1] == '1' then
    redis.call('ZREM', KEYS[k+1], ARGV[1])
  end
  if ARGV[o+2] == '1' and refund > 0 and redis.call('EXISTS', KEYS[k+2]) == 1 then
    if redis.call('DECRBY', KEYS[k+2], refund) < 0 then
      redis.call('SET', KEYS[k+2], 0, 'KEEPTTL')
    end
  end
end
return 0`)

// renewScript: KEYS: lease sets. ARGV: lease id, ttl ms.
var renewScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
for i = 1, #KEYS do
  if redis.call('ZSCORE', KEYS[i], ARGV[1]) then
    redis.call('ZADD', KEYS[i], 'XX', now + ttl, ARGV[1])
    redis.call('PEXPIRE', KEYS[i], ttl * 2)
  end
end
return 0`)

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func (r *Shared) admit(ctx context.Context, a *admission) (*Refusal, error) {
	keys := make([]string, 0, 3*len(a.scopes))
	args := []any{len(a.scopes), flag(a.rate), flag(a.upload), a.bytes, a.lease,
		LeaseTTL.Milliseconds(), quotaTTL.Milliseconds()}
	for _, s := range a.scopes {
		q := s.quota
		if q == "" {
			q = "q:" + s.id
		}
		keys = append(keys, s.rateKey(), s.leaseKey(), q)
		args = append(args, strconv.FormatFloat(s.set.RequestsPerSecond, 'g', -1, 64), s.set.Burst, s.set.ConcurrentUploads, s.set.BytesPerDay)
	}
	v, err := r.s.RunScript(ctx, "limit", admitScript, keys, args...)
	if err != nil {
		return nil, err
	}
	res, ok := v.([]any)
	if !ok || len(res) != 3 {
		return nil, fmt.Errorf("limits: unexpected answer %T", v)
	}
	code, _ := res[0].(int64)
	retry, _ := res[1].(int64)
	idx, _ := res[2].(int64)
	if code == 0 {
		return nil, nil
	}
	if idx < 1 || int(idx) > len(a.scopes) {
		return nil, fmt.Errorf("limits: unexpected scope %d", idx)
	}
	ref := &Refusal{Scope: a.scopes[idx-1].name}
	switch code {
	case 1:
		ref.Limit, ref.RetryAfter = LimitRate, retryAfter(time.Duration(retry)*time.Millisecond)
	case 2:
		ref.Limit, ref.RetryAfter = LimitConcurrency, time.Second
	case 3:
		ref.Limit = LimitDaily
	default:
		return nil, fmt.Errorf("limits: unexpected answer %d", code)
	}
	return ref, nil
}

func (r *Shared) release(ctx context.Context, a *admission, refund int64) error {
	keys := make([]string, 0, 2*len(a.scopes))
	args := []any{a.lease, refund}
	for _, s := range a.scopes {
		q := s.quota
		if q == "" {
			q = "q:" + s.id
		}
		keys = append(keys, s.leaseKey(), q)
		args = append(args, flag(a.lease != "" && s.set.ConcurrentUploads > 0), flag(s.set.BytesPerDay > 0))
	}
	_, err := r.s.RunScript(ctx, "limit_release", releaseScript, keys, args...)
	return err
}

func (r *Shared) renew(ctx context.Context, a *admission) error {
	var keys []string
	for _, s := range a.scopes {
		if s.set.ConcurrentUploads > 0 {
			keys = append(keys, s.leaseKey())
		}
	}
	if len(keys) == 0 {
		return nil
	}
	_, err := r.s.RunScript(ctx, "limit_renew", renewScript, keys, a.lease, LeaseTTL.Milliseconds())
	return err
}
