package jwt

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

// jwksServer is a real JWKS endpoint over HTTP whose key set, status and
// latency the test changes while it runs.
type jwksServer struct {
	mu     sync.Mutex
	keys   []map[string]any
	status int    // answered instead of the key set when not 0
	body   []byte // answered instead of the key set when not nil
	gate   chan struct{}
	hits   atomic.Int64
	srv    *httptest.Server
}

func newJWKSServer(t *testing.T, keys ...map[string]any) *jwksServer {
	t.Helper()
	s := &jwksServer{keys: keys}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *jwksServer) serve(w http.ResponseWriter, r *http.Request) {
	s.hits.Add(1)
	s.mu.Lock()
	gate, status, body := s.gate, s.status, s.body
	doc, _ := json.Marshal(map[string]any{"keys": s.keys})
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
	}
	if status != 0 {
		http.Error(w, "unavailable", status)
		return
	}
	if body != nil {
		doc = body
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(doc)
}

func (s *jwksServer) set(f func(s *jwksServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *jwksServer) url() string { return s.srv.URL + "/.well-known/jwks.json" }

// waitFor polls cond; the deadline only bounds a broken test.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func rsaToken(t testing.TB, key any, kid string) string {
	t.Helper()
	return sign(t, gojwt.SigningMethodRS256, key, validClaims(), kid)
}

func TestJWKSKeyRotation(t *testing.T) {
	k := getKeys(t)
	srv := newJWKSServer(t, jwkOf(&k.rsa.PublicKey, "old", "RS256", "sig"))
	clk := newClock()
	a := newAuth(t, config.JWT{Algorithm: "RS256", JWKSURL: srv.url(), CacheTTLSeconds: 3600}, Options{Now: clk.Now})
	ctx := context.Background()
	authn := func(token string) error {
		_, err := a.Authenticate(ctx, bearerRequest(token))
		return err
	}
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("fetches at start = %d, want 1", got)
	}
	if err := authn(rsaToken(t, k.rsa, "old")); err != nil {
		t.Fatalf("old kid refused: %v", err)
	}

	// The issuer publishes a new key next to the old one.
	srv.set(func(s *jwksServer) {
		s.keys = []map[string]any{jwkOf(&k.rsa.PublicKey, "old", "RS256", "sig"), jwkOf(&k.rsa2.PublicKey, "new", "RS256", "sig")}
	})
	if err := authn(rsaToken(t, k.rsa2, "new")); err != nil {
		t.Fatalf("new kid refused: %v", err)
	}
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("fetches after new kid = %d, want 2 (one refetch)", got)
	}
	if err := authn(rsaToken(t, k.rsa, "old")); err != nil {
		t.Fatalf("old kid refused while still published: %v", err)
	}
	if err := authn(rsaToken(t, k.rsa2, "new")); err != nil {
		t.Fatalf("new kid refused from cache: %v", err)
	}
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("known kids caused fetches: %d", got)
	}

	// Unknown kids: the refetch is rate-limited.
	for range 5 {
		wantInvalid(t, authn(rsaToken(t, k.rsa2, "ghost")), reasonUnknownKID)
	}
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("fetches after unknown kids within the interval = %d, want 2", got)
	}
	clk.Advance(defaultRefetchInterval + time.Second)
	wantInvalid(t, authn(rsaToken(t, k.rsa2, "ghost")), reasonUnknownKID)
	wantInvalid(t, authn(rsaToken(t, k.rsa2, "ghost")), reasonUnknownKID)
	if got := srv.hits.Load(); got != 3 {
		t.Fatalf("fetches after the interval = %d, want 3", got)
	}

	// A token signed by the wrong key under a known kid is not rescued.
	wantInvalid(t, authn(rsaToken(t, k.rsa, "new")), reasonSignature)

	// The old key is withdrawn: it stays usable until the cache is
	// refreshed (here by another unknown kid), then it no longer verifies.
	srv.set(func(s *jwksServer) { s.keys = []map[string]any{jwkOf(&k.rsa2.PublicKey, "new", "RS256", "sig")} })
	if err := authn(rsaToken(t, k.rsa, "old")); err != nil {
		t.Fatalf("cached old kid refused before any refresh: %v", err)
	}
	clk.Advance(defaultRefetchInterval + time.Second)
	wantInvalid(t, authn(rsaToken(t, k.rsa2, "ghost")), reasonUnknownKID)
	if got := srv.hits.Load(); got != 4 {
		t.Fatalf("fetches = %d, want 4", got)
	}
	wantInvalid(t, authn(rsaToken(t, k.rsa, "old")), reasonUnknownKID)
	if err := authn(rsaToken(t, k.rsa2, "new")); err != nil {
		t.Fatalf("new kid refused: %v", err)
	}
}

func TestJWKSUnknownKIDRefetchIsSingleFlight(t *testing.T) {
	k := getKeys(t)
	srv := newJWKSServer(t, jwkOf(&k.rsa.PublicKey, "old", "", ""))
	a := newAuth(t, config.JWT{Algorithm: "RS256", JWKSURL: srv.url()}, Options{})
	gate := make(chan struct{})
	srv.set(func(s *jwksServer) {
		s.keys = append(s.keys, jwkOf(&k.rsa2.PublicKey, "new", "", ""))
		s.gate = gate
	})
	token := rsaToken(t, k.rsa2, "new")
	const n = 20
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := a.Authenticate(context.Background(), bearerRequest(token))
			errs <- err
		}()
	}
	waitFor(t, "the refetch to reach the server", func() bool { return srv.hits.Load() == 2 })
	close(gate)
	for range n {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent request refused: %v", err)
		}
	}
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("fetches = %d, want 2 (start + one shared refetch)", got)
	}
}

func TestJWKSStaleKeysKeepWorkingWhileEndpointIsDown(t *testing.T) {
	k := getKeys(t)
	srv := newJWKSServer(t, jwkOf(k.ed.Public(), "ed1", "EdDSA", "sig"))
	logs := &logBuffer{}
	a := newAuth(t, config.JWT{Algorithm: "EdDSA", JWKSURL: srv.url(), CacheTTLSeconds: 1}, Options{Logger: logs.logger()})
	token := sign(t, gojwt.SigningMethodEdDSA, k.ed, validClaims(), "ed1")
	srv.set(func(s *jwksServer) { s.status = http.StatusServiceUnavailable })
	// Wait for two background refreshes that fail (TTL 1 s: the keys are past it).
	waitFor(t, "failed background refreshes", func() bool { return srv.hits.Load() >= 3 })
	if _, err := a.Authenticate(context.Background(), bearerRequest(token)); err != nil {
		t.Fatalf("cached key refused while JWKS is down: %v", err)
	}
	// A kid the cache does not know cannot be judged while the endpoint is down.
	_, err := a.Authenticate(context.Background(), bearerRequest(sign(t, gojwt.SigningMethodEdDSA, k.ed, validClaims(), "ed-new")))
	var ku *KeysUnavailableError
	if !errors.As(err, &ku) {
		t.Fatalf("unknown kid during an outage: err = %v, want KeysUnavailableError", err)
	}
	if !strings.Contains(logs.String(), "keeping the cached keys") {
		t.Fatalf("no warning logged: %s", logs.String())
	}
	// Back up: the background refresh picks up a rotation.
	srv.set(func(s *jwksServer) {
		s.status = 0
		s.keys = []map[string]any{jwkOf(&k.p256.PublicKey, "wrong-family", "", ""), jwkOf(k.ed.Public(), "ed2", "", "")}
	})
	waitFor(t, "the refresh after recovery", func() bool { return a.jwks.keyCount() == 1 && hasKID(a, "ed2") })
}

func hasKID(a *Authenticator, kid string) bool {
	_, ok := a.jwks.find(kid)
	return ok
}

func TestJWKSDownAtStartIsATechnicalError(t *testing.T) {
	k := getKeys(t)
	srv := newJWKSServer(t, jwkOf(&k.p256.PublicKey, "ec1", "ES256", "sig"))
	srv.set(func(s *jwksServer) { s.status = http.StatusInternalServerError })
	clk := newClock()
	logs := &logBuffer{}
	a := newAuth(t, config.JWT{Algorithm: "ES256", JWKSURL: srv.url()}, Options{Now: clk.Now, Logger: logs.logger()})
	token := sign(t, gojwt.SigningMethodES256, k.p256, validClaims(), "ec1")

	_, err := a.Authenticate(context.Background(), bearerRequest(token))
	var ku *KeysUnavailableError
	if !errors.As(err, &ku) {
		t.Fatalf("err = %v, want KeysUnavailableError", err)
	}
	var s3e *s3err.Error
	if errors.As(err, &s3e) {
		t.Fatalf("a JWKS outage must not be a verdict on the token: %v", err)
	}
	if !strings.Contains(err.Error(), "status 500") {
		t.Fatalf("err = %v, want the fetch failure as cause", err)
	}
	if !strings.Contains(logs.String(), "JWKS fetch at start failed") {
		t.Fatalf("start failure not logged: %s", logs.String())
	}

	srv.set(func(s *jwksServer) { s.status = 0 })
	clk.Advance(defaultRefetchInterval + time.Second)
	if _, err := a.Authenticate(context.Background(), bearerRequest(token)); err != nil {
		t.Fatalf("refused after the endpoint recovered: %v", err)
	}
}

func TestJWKSUnreachableAtStart(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/jwks"
	srv.Close() // nothing listens there any more
	a := newAuth(t, config.JWT{Algorithm: "RS256", JWKSURL: url}, Options{})
	_, err := a.Authenticate(context.Background(), bearerRequest(rsaToken(t, getKeys(t).rsa, "k")))
	var ku *KeysUnavailableError
	if !errors.As(err, &ku) {
		t.Fatalf("err = %v, want KeysUnavailableError", err)
	}
}

func TestJWKSKeysAreFilteredByUseAlgAndType(t *testing.T) {
	k := getKeys(t)
	withOps := jwkOf(&k.rsa.PublicKey, "enc-ops", "", "")
	withOps["key_ops"] = []string{"encrypt"}
	srv := newJWKSServer(t,
		jwkOf(&k.rsa.PublicKey, "enc", "RS256", "enc"),
		withOps,
		jwkOf(&k.rsa.PublicKey, "rs384", "RS384", "sig"),
		jwkOf(&k.p256.PublicKey, "ec", "", ""),
		jwkOf(k.ed.Public(), "ed", "", ""),
		jwkOf([]byte(testSecret), "oct", "", ""),
		map[string]any{"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
		jwkOf(&k.rsa2.PublicKey, "good", "RS256", "sig"),
		jwkOf(&k.rsa.PublicKey, "good", "RS256", "sig"), // duplicate kid: first wins
	)
	a := newAuth(t, config.JWT{Algorithm: "RS256", JWKSURL: srv.url()}, Options{})
	if _, err := a.Authenticate(context.Background(), bearerRequest(rsaToken(t, k.rsa2, "good"))); err != nil {
		t.Fatalf("good key refused: %v", err)
	}
	for _, kid := range []string{"enc", "enc-ops", "rs384", "ec", "ed", "oct", "broken"} {
		t.Run(kid, func(t *testing.T) {
			_, err := a.Authenticate(context.Background(), bearerRequest(rsaToken(t, k.rsa, kid)))
			wantInvalid(t, err, reasonUnknownKID)
		})
	}
	wantInvalid(t, func() error {
		_, err := a.Authenticate(context.Background(), bearerRequest(rsaToken(t, k.rsa, "good")))
		return err
	}(), reasonSignature)
}

func TestJWKSTokenWithoutKIDTriesEveryKey(t *testing.T) {
	k := getKeys(t)
	srv := newJWKSServer(t, jwkOf(&k.rsa.PublicKey, "a", "", ""), jwkOf(&k.rsa2.PublicKey, "b", "", ""))
	a := newAuth(t, config.JWT{Algorithm: "RS256", JWKSURL: srv.url()}, Options{})
	for _, key := range []any{k.rsa, k.rsa2} {
		if _, err := a.Authenticate(context.Background(), bearerRequest(rsaToken(t, key, ""))); err != nil {
			t.Fatalf("token without kid refused: %v", err)
		}
	}
	c := validClaims()
	tok := gojwt.NewWithClaims(gojwt.SigningMethodRS256, c)
	tok.Header["kid"] = 7
	s, err := tok.SignedString(k.rsa)
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Authenticate(context.Background(), bearerRequest(s))
	wantInvalid(t, err, reasonMalformed)
}

func TestJWKSBadDocuments(t *testing.T) {
	k := getKeys(t)
	big := `{"keys":[` + strings.Repeat(`{"kty":"RSA","kid":"pad","n":"AQAB","e":"AQAB"},`, maxJWKSBytes/40) + `{}]}`
	tests := []struct {
		name string
		set  func(s *jwksServer)
		opts Options
	}{
		{name: "not JSON", set: func(s *jwksServer) { s.body = []byte("<html>") }},
		{name: "no usable key", set: func(s *jwksServer) { s.keys = []map[string]any{jwkOf(&k.p256.PublicKey, "ec", "", "")} }},
		{name: "too large", set: func(s *jwksServer) { s.body = []byte(big) }},
		{name: "slower than the fetch timeout", set: func(s *jwksServer) { s.gate = make(chan struct{}) }, opts: Options{JWKSFetchTimeout: 100 * time.Millisecond}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newJWKSServer(t, jwkOf(&k.rsa.PublicKey, "rsa", "", ""))
			srv.set(tc.set)
			a := newAuth(t, config.JWT{Algorithm: "RS256", JWKSURL: srv.url()}, tc.opts)
			_, err := a.Authenticate(context.Background(), bearerRequest(rsaToken(t, k.rsa, "rsa")))
			var ku *KeysUnavailableError
			if !errors.As(err, &ku) {
				t.Fatalf("err = %v, want KeysUnavailableError", err)
			}
		})
	}
}
