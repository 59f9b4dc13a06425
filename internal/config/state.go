package config

import (
	"fmt"
	"strings"
)

// Defaults of the state section.
const (
	DefaultStateBackend    = "memory"
	DefaultRedisAddress    = "127.0.0.1:6379"
	DefaultRedisKeyPrefix  = "mizuchi:"
	DefaultRedisTimeout    = 2
	MinUploadIDKeyBytes    = 32
	MinSubjectHashKeyBytes = 32
	stateBackendMemory     = "memory"
	stateBackendRedis      = "redis"
	redisMaxDB             = 1 << 16
	redisMaxTimeoutSeconds = 60
)

// State configures what replicas share: the SigV4 replay set and the
// counters of limits.
type State struct {
	// Backend is memory (one process) or redis.
	Backend string     `yaml:"backend"`
	Redis   StateRedis `yaml:"redis"`
}

// StateRedis is a Valkey/Redis server.
type StateRedis struct {
	// Address is host:port; URL (redis:// or rediss://) replaces it and
	// may carry the user, password and database.
	Address  string `yaml:"address"`
	URL      string `yaml:"url"`
	Username string `yaml:"username"`
	// Password is never printed.
	Password string `yaml:"password"`
	DB       int    `yaml:"db"`
	TLS      bool   `yaml:"tls"`
	// KeyPrefix starts every key Mizuchi writes.
	KeyPrefix      string `yaml:"key_prefix"`
	TimeoutSeconds int    `yaml:"timeout_seconds"`
}

func (c *Config) applyStateDefaults(d defaulter) {
	s := &c.State
	d.str(&s.Backend, DefaultStateBackend)
	if s.Redis.URL == "" {
		d.str(&s.Redis.Address, DefaultRedisAddress)
	}
	if !c.isSet("state.redis.key_prefix") {
		d.str(&s.Redis.KeyPrefix, DefaultRedisKeyPrefix)
	}
	d.int(&s.Redis.TimeoutSeconds, "state.redis.timeout_seconds", DefaultRedisTimeout)
}

func (k *checker) state() {
	s := k.c.State
	for i, key := range k.c.Server.UploadIDKeys {
		if len(key) < MinUploadIDKeyBytes {
			k.errf(fmt.Sprintf("server.upload_id_keys[%d]", i), "must be at least %d bytes long (got %d)", MinUploadIDKeyBytes, len(key))
		}
	}
	if h := k.c.Tracing.SubjectHashKey; h != "" && len(h) < MinSubjectHashKeyBytes {
		k.errf("tracing.subject_hash_key", "must be at least %d bytes long (got %d)", MinSubjectHashKeyBytes, len(h))
	}
	switch s.Backend {
	case stateBackendMemory:
		return
	case stateBackendRedis:
	default:
		k.errf("state.backend", "unknown value %q (want memory or redis)", s.Backend)
		return
	}
	if len(k.c.Server.UploadIDKeys) == 0 {
		k.warnf("server.upload_id_keys", "not set while state is shared: a multipart upload works only on the replica that created it, until that replica restarts")
	}
	if k.c.Tracing.Enabled && k.c.Tracing.SubjectHashKey == "" {
		k.warnf("tracing.subject_hash_key", "not set while state is shared: enduser.hash differs between replicas")
	}
	r := s.Redis
	if r.URL != "" {
		if k.url("state.redis.url", r.URL, "redis", "rediss") && k.c.isSet("state.redis.address") {
			k.errf("state.redis.address", "set either address or url, not both")
		}
	} else {
		k.hostPort("state.redis.address", r.Address)
	}
	if r.DB < 0 || r.DB >= redisMaxDB {
		k.errf("state.redis.db", "must be between 0 and %d, got %d", redisMaxDB-1, r.DB)
	}
	if r.TimeoutSeconds < 1 || r.TimeoutSeconds > redisMaxTimeoutSeconds {
		k.errf("state.redis.timeout_seconds", "must be between 1 and %d, got %d", redisMaxTimeoutSeconds, r.TimeoutSeconds)
	}
	if strings.ContainsAny(r.KeyPrefix, " \r\n") {
		k.errf("state.redis.key_prefix", "must not contain spaces or line breaks")
	}
	if !r.TLS && !strings.HasPrefix(r.URL, "rediss://") && (r.Password != "" || strings.Contains(r.URL, "@")) {
		if host := redisHost(r); host != "" && !isLoopbackHost(host) {
			k.warnf("state.redis", "a password is sent to %s without TLS", host)
		}
	}
}

// redisHost is the host part of the configured server.
func redisHost(r StateRedis) string {
	addr := r.Address
	if r.URL != "" {
		rest := strings.TrimPrefix(strings.TrimPrefix(r.URL, "rediss://"), "redis://")
		if i := strings.LastIndex(rest, "@"); i >= 0 {
			rest = rest[i+1:]
		}
		addr, _, _ = strings.Cut(rest, "/")
	}
	host := addr
	if i := strings.LastIndex(addr, ":"); i >= 0 {
		host = strings.Trim(addr[:i], "[]")
	}
	return host
}

// stateSummary describes the state store and the upload id keys, without
// secrets.
func (c *Config) stateSummary() string {
	s := "memory (this process only)"
	if c.State.Backend == stateBackendRedis {
		r := c.State.Redis
		where := r.Address
		if r.URL != "" {
			where = redact(r.URL)
		}
		s = fmt.Sprintf("redis %s, keys under %q", where, r.KeyPrefix)
	}
	if n := len(c.Server.UploadIDKeys); n > 0 {
		return s + fmt.Sprintf("; upload ids sealed with %d configured key(s)", n)
	}
	return s + "; upload ids sealed with a key generated at start"
}
