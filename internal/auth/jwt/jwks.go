package jwt

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"
)

// JWKS fetch defaults.
const (
	defaultFetchTimeout    = 5 * time.Second
	defaultRefetchInterval = 10 * time.Second
	maxJWKSBytes           = 1 << 20
	maxRetryDelay          = time.Minute
	minRetryDelay          = time.Second
)

// errUnknownKID means the JWKS holds no key for the token's kid, even
// after the refetch it was entitled to. The token is refused (401).
var errUnknownKID = errors.New("unknown key id")

// KeysUnavailableError means no verification key could be obtained: the
// JWKS endpoint has never answered with a usable key set. It is a
// technical failure (503), not a verdict on the token.
type KeysUnavailableError struct {
	URL string // redacted JWKS URL
	Err error  // last fetch error, if any
}

func (e *KeysUnavailableError) Error() string {
	if e.Err == nil {
		return "jwt: no JWKS keys available from " + e.URL
	}
	return "jwt: no JWKS keys available from " + e.URL + ": " + e.Err.Error()
}

func (e *KeysUnavailableError) Unwrap() error { return e.Err }

// keySet is one successfully fetched JWKS, filtered to keys that suit the
// configured algorithm.
type keySet struct {
	byKID map[string]any
	all   []any
	multi gojwt.VerificationKeySet // all, for tokens without kid
}

// fetchCall is one JWKS fetch that several callers may wait for.
type fetchCall struct {
	done chan struct{}
	err  error
}

// jwksCache holds the keys of one JWKS URL.
type jwksCache struct {
	url      string
	redacted string
	client   *http.Client
	spec     algSpec
	ttl      time.Duration
	timeout  time.Duration
	interval time.Duration // minimum gap between unknown-kid refetches
	now      func() time.Time
	log      *slog.Logger

	mu           sync.Mutex
	set          *keySet
	lastErr      error
	lastOnDemand time.Time
	inflight     *fetchCall

	cancel context.CancelFunc
	done   chan struct{}
}

func newJWKSCache(rawURL string, spec algSpec, ttl time.Duration, opts Options, log *slog.Logger) (*jwksCache, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("jwt: jwks_url must be an absolute http or https URL")
	}
	c := &jwksCache{
		url:      rawURL,
		redacted: u.Redacted(),
		client:   opts.HTTPClient,
		spec:     spec,
		ttl:      ttl,
		timeout:  opts.JWKSFetchTimeout,
		interval: opts.JWKSRefetchInterval,
		now:      opts.Now,
		log:      log.With("jwks_url", u.Redacted()),
		done:     make(chan struct{}),
	}
	if c.client == nil {
		c.client = &http.Client{Timeout: c.timeout}
	}
	return c, nil
}

// start fetches the keys once and then refreshes them in the background
// until close. A failed first fetch is logged and retried, not fatal.
func (c *jwksCache) start(ctx context.Context) {
	if err := c.refetch(ctx, false); err != nil {
		c.log.Warn("JWKS fetch at start failed; retrying in the background", "error", err)
	} else {
		c.log.Info("JWKS keys loaded", "keys", c.keyCount())
	}
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.cancel = cancel
	go c.run(bg)
}

func (c *jwksCache) close() {
	if c.cancel != nil {
		c.cancel()
		<-c.done
	}
}

// run refreshes the keys at 80% of the cache TTL, and retries with an
// exponential backoff (capped by the TTL) after failures.
func (c *jwksCache) run(ctx context.Context) {
	defer close(c.done)
	failures := 0
	c.mu.Lock()
	if c.lastErr != nil {
		failures = 1
	}
	c.mu.Unlock()
	for {
		delay := c.ttl - c.ttl/5
		if failures > 0 {
			delay = minRetryDelay << min(failures-1, 10)
			delay = min(delay, maxRetryDelay, max(c.ttl, minRetryDelay))
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if err := c.refetch(ctx, false); err != nil {
			failures++
			if n := c.keyCount(); n > 0 {
				c.log.Warn("JWKS refresh failed; keeping the cached keys", "keys", n, "error", err)
			} else {
				c.log.Warn("JWKS fetch failed; no keys yet", "error", err)
			}
			continue
		}
		if failures > 0 {
			c.log.Info("JWKS keys loaded", "keys", c.keyCount())
		}
		failures = 0
	}
}

func (c *jwksCache) keyCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.set == nil {
		return 0
	}
	return len(c.set.all)
}

// lookup returns the key (or key set, for a token without kid) that
// verifies a token. An unknown kid earns one refetch, shared by concurrent
// callers and at most once per refetch interval.
func (c *jwksCache) lookup(ctx context.Context, kid string) (any, error) {
	if k, ok := c.find(kid); ok {
		return k, nil
	}
	if err := c.refetch(ctx, true); err != nil && !errors.Is(err, errRateLimited) && ctx.Err() == nil {
		c.log.WarnContext(ctx, "JWKS refetch for an unknown kid failed", "error", err)
	}
	if k, ok := c.find(kid); ok {
		return k, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// While the endpoint is failing, a kid we do not know may be a key
	// we could not fetch: that is an outage, not a bad token.
	if c.set == nil || c.lastErr != nil {
		return nil, &KeysUnavailableError{URL: c.redacted, Err: c.lastErr}
	}
	return nil, errUnknownKID
}

func (c *jwksCache) find(kid string) (any, bool) {
	c.mu.Lock()
	set := c.set
	c.mu.Unlock()
	if set == nil {
		return nil, false
	}
	if kid == "" {
		switch len(set.all) {
		case 0:
			return nil, false
		case 1:
			return set.all[0], true
		}
		return set.multi, true
	}
	k, ok := set.byKID[kid]
	return k, ok
}

var errRateLimited = errors.New("jwt: JWKS refetch rate-limited")

// refetch fetches the JWKS, or waits for the fetch already in flight.
// onDemand fetches (unknown kid) are rate-limited; joining an in-flight
// fetch is always allowed. The fetch itself is detached from ctx so that
// one cancelled request does not fail the others waiting for it.
func (c *jwksCache) refetch(ctx context.Context, onDemand bool) error {
	c.mu.Lock()
	call := c.inflight
	if call == nil {
		if onDemand {
			now := c.now()
			if !c.lastOnDemand.IsZero() && now.Sub(c.lastOnDemand) < c.interval {
				c.mu.Unlock()
				return errRateLimited
			}
			c.lastOnDemand = now
		}
		call = &fetchCall{done: make(chan struct{})}
		c.inflight = call
		go c.doFetch(context.WithoutCancel(ctx), call)
	}
	c.mu.Unlock()
	select {
	case <-call.done:
		return call.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *jwksCache) doFetch(ctx context.Context, call *fetchCall) {
	set, err := c.fetch(ctx)
	c.mu.Lock()
	if err == nil {
		c.set = set
	}
	c.lastErr = err
	c.inflight = nil
	c.mu.Unlock()
	call.err = err
	close(call.done)
}

func (c *jwksCache) fetch(ctx context.Context) (*keySet, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return nil, fmt.Errorf("JWKS request: %w", err)
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	resp, err := c.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is already in the logger's attributes
		}
		return nil, fmt.Errorf("JWKS fetch: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxJWKSBytes))
		return nil, fmt.Errorf("JWKS fetch: HTTP status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("JWKS read: %w", err)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("JWKS document larger than %d bytes", maxJWKSBytes)
	}
	return c.parse(body)
}

// jwk holds the JWK members Mizuchi reads (RFC 7517, 7518, 8037).
type jwk struct {
	Kty    string   `json:"kty"`
	Use    string   `json:"use"`
	KeyOps []string `json:"key_ops"`
	Alg    string   `json:"alg"`
	Kid    string   `json:"kid"`
	Crv    string   `json:"crv"`
	N      string   `json:"n"`
	E      string   `json:"e"`
	X      string   `json:"x"`
	Y      string   `json:"y"`
	K      string   `json:"k"`
}

// parse decodes a JWKS document and keeps the keys that suit the
// configured algorithm. Unusable entries are skipped (and logged); a
// document without any usable key is an error, so cached keys are kept.
func (c *jwksCache) parse(body []byte) (*keySet, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("JWKS document is not valid JSON: %w", err)
	}
	set := &keySet{byKID: map[string]any{}}
	skipped := 0
	for i, raw := range doc.Keys {
		var k jwk
		if err := json.Unmarshal(raw, &k); err != nil {
			c.log.Debug("JWKS entry skipped", "index", i, "reason", "not a JSON object")
			skipped++
			continue
		}
		if reason := c.incompatible(k); reason != "" {
			c.log.Debug("JWKS entry skipped", "index", i, "kid", k.Kid, "reason", reason)
			skipped++
			continue
		}
		key, err := jwkKey(c.spec, k)
		if err != nil {
			c.log.Debug("JWKS entry skipped", "index", i, "kid", k.Kid, "reason", err.Error())
			skipped++
			continue
		}
		if k.Kid != "" {
			if _, dup := set.byKID[k.Kid]; dup {
				c.log.Debug("JWKS entry skipped", "index", i, "kid", k.Kid, "reason", "duplicate kid")
				skipped++
				continue
			}
			set.byKID[k.Kid] = key
		}
		set.all = append(set.all, key)
		set.multi.Keys = append(set.multi.Keys, key)
	}
	if len(set.all) == 0 {
		return nil, fmt.Errorf("JWKS holds no key usable with %s (%d entries skipped)", c.spec.method.Alg(), skipped)
	}
	return set, nil
}

// incompatible says why a JWK cannot verify tokens of the configured
// algorithm, or returns "".
func (c *jwksCache) incompatible(k jwk) string {
	switch {
	case k.Kty != c.spec.kty:
		return "key type " + k.Kty + " does not suit " + c.spec.method.Alg()
	case k.Use != "" && k.Use != "sig":
		return "use is not sig"
	case k.KeyOps != nil && !slices.Contains(k.KeyOps, "verify"):
		return "key_ops lacks verify"
	case k.Alg != "" && k.Alg != c.spec.method.Alg():
		return "alg " + k.Alg + " is not the configured algorithm"
	case c.spec.crv != "" && k.Crv != c.spec.crv:
		return "curve " + k.Crv + " does not suit " + c.spec.method.Alg()
	}
	return ""
}

func b64(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// jwkKey builds the verification key of a compatible JWK.
func jwkKey(spec algSpec, k jwk) (any, error) {
	switch spec.family {
	case familyHMAC:
		secret, err := b64(k.K)
		if err != nil || len(secret) == 0 {
			return nil, errors.New("bad oct key")
		}
		return secret, nil
	case familyRSA:
		n, err := b64(k.N)
		if err != nil || len(n) == 0 {
			return nil, errors.New("bad RSA modulus")
		}
		e, err := b64(k.E)
		if err != nil || len(e) == 0 || len(e) > 4 {
			return nil, errors.New("bad RSA exponent")
		}
		exp := new(big.Int).SetBytes(e).Int64()
		if exp < 3 || exp%2 == 0 {
			return nil, errors.New("bad RSA exponent")
		}
		return checkPublicKey(spec, &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(exp)})
	case familyEC:
		x, errX := b64(k.X)
		y, errY := b64(k.Y)
		size := (spec.curve.Params().BitSize + 7) / 8
		if errX != nil || errY != nil || len(x) != size || len(y) != size {
			return nil, errors.New("bad EC coordinates")
		}
		point := append(append([]byte{4}, x...), y...)
		pub, err := ecdsa.ParseUncompressedPublicKey(spec.curve, point)
		if err != nil {
			return nil, errors.New("EC point is not on the curve")
		}
		return pub, nil
	case familyEdDSA:
		x, err := b64(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, errors.New("bad Ed25519 key")
		}
		return ed25519.PublicKey(x), nil
	}
	return nil, errors.New("unsupported key family")
}
