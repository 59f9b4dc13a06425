package e2e

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mizuchi-uploadr/mizuchi/internal/auth/jwt"
	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/testproc"
)

// jwKey is an RSA signing key published under a kid.
type jwKey struct {
	kid string
	key *rsa.PrivateKey
	pem []byte // PKCS#8 private key
}

func jwNewKey(t *testing.T, kid string) jwKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return jwKey{kid: kid, key: k, pem: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})}
}

// token mints an RS256 token for sub; now shifts the clock.
func (k jwKey) token(t *testing.T, sub string, now time.Time) string {
	t.Helper()
	tok, err := jwt.Mint(jwt.MintOptions{
		Subject: sub, Algorithm: "RS256", PrivateKeyPEM: k.pem, KeyID: k.kid, TTL: time.Hour,
		Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// jwJWKS serves a key set that the test replaces at will, and counts
// fetches.
type jwJWKS struct {
	doc     atomic.Value // []byte
	fetches atomic.Int64
}

func (j *jwJWKS) publish(keys ...jwKey) {
	b64 := base64.RawURLEncoding.EncodeToString
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	for _, k := range keys {
		set.Keys = append(set.Keys, map[string]string{
			"kty": "RSA", "use": "sig", "alg": "RS256", "kid": k.kid,
			"n": b64(k.key.N.Bytes()), "e": b64(big.NewInt(int64(k.key.E)).Bytes()),
		})
	}
	doc, _ := json.Marshal(set)
	j.doc.Store(doc)
}

func (j *jwJWKS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	j.fetches.Add(1)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(j.doc.Load().([]byte))
}

func jwConfig(jwksURL string) string {
	return `server:
  address: "127.0.0.1:{{S3_PORT}}"
metrics:
  address: "127.0.0.1:{{METRICS_PORT}}"
logging:
  level: debug
buckets:
  - name: web
    path_prefix: /web
    filesystem: { root: "{{DIR}}/web" }
    auth:
      enabled: true
      jwt:
        algorithm: RS256
        jwks_url: "` + jwksURL + `"
        cache_ttl_seconds: 3600
        token_sources:
          - type: bearer
          - { type: query, name: token }
          - { type: header, name: X-Upload-Token }
          - { type: cookie, name: upload_token }
    cors:
      allowed_origins: ["https://app.example"]
`
}

// jwPut uploads body to path with extra headers and returns the answer.
func jwPut(t *testing.T, url string, header http.Header, body []byte) azResult {
	t.Helper()
	resp, b := rawRequest(t, "PUT", url, strings.NewReader(string(body)), header)
	return azParse(resp, b)
}

func jwBearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

// jwWantChallenge checks a 401 with a Bearer challenge naming the error.
func jwWantChallenge(t *testing.T, what string, r azResult, errorCode string) {
	t.Helper()
	if r.Status != http.StatusUnauthorized {
		t.Fatalf("%s: %d %s, want 401\n%.300s", what, r.Status, r.Code, r.Body)
	}
	ch := r.Header.Get("WWW-Authenticate")
	if !strings.HasPrefix(ch, "Bearer ") || (errorCode != "" && !strings.Contains(ch, `error="`+errorCode+`"`)) {
		t.Fatalf("%s: WWW-Authenticate %q, want a Bearer challenge with error %q", what, ch, errorCode)
	}
}

// TestJWTSourcesAndKeyRotation runs a bucket whose keys come from a JWKS
// endpoint served by the test: tokens are accepted from every configured
// source, a key added by rotation is picked up on first sight of its kid,
// a key removed by rotation is refused, the cached keys outlive the
// endpoint, and no token ever reaches the log.
func TestJWTSourcesAndKeyRotation(t *testing.T) {
	t.Parallel()
	k1, k2 := jwNewKey(t, "k1"), jwNewKey(t, "k2")
	jwks := &jwJWKS{}
	jwks.publish(k1)
	srv := httptest.NewServer(jwks)
	defer srv.Close()
	m := startMizuchi(t, jwConfig(srv.URL+"/.well-known/jwks.json"))
	root := filepath.Join(m.Dir, "web")
	now := time.Now()
	tok := k1.token(t, "alice", now)
	var tokens []string
	tokens = append(tokens, tok)

	sources := []struct {
		name, path string
		header     http.Header
	}{
		{"bearer", "/web/bearer.txt", jwBearer(tok)},
		{"query", "/web/query.txt?token=" + tok, nil},
		{"header", "/web/header.txt", http.Header{"X-Upload-Token": {tok}}},
		// A cookie needs an Origin the bucket lists (cookie_origin_test.go).
		{"cookie", "/web/cookie.txt", http.Header{"Cookie": {"theme=dark; upload_token=" + tok}, "Origin": {"https://app.example"}}},
	}
	for _, s := range sources {
		body := []byte("from the " + s.name + " source\n")
		jwPut(t, m.URL+s.path, s.header, body).want(t, s.name, 200, "")
		assertFile(t, filepath.Join(root, s.name+".txt"), body)
	}

	jwWantChallenge(t, "no token", jwPut(t, m.URL+"/web/none.txt", nil, []byte("x")), "")
	jwWantChallenge(t, "bearer token in the wrong header", jwPut(t, m.URL+"/web/none.txt", http.Header{"X-Other": {tok}}, []byte("x")), "")
	expired := k1.token(t, "alice", now.Add(-2*time.Hour))
	tokens = append(tokens, expired)
	jwWantChallenge(t, "expired", jwPut(t, m.URL+"/web/expired.txt", jwBearer(expired), []byte("x")), "invalid_token")
	expiredQ := jwPut(t, m.URL+"/web/expired.txt?token="+expired, nil, []byte("x"))
	jwWantChallenge(t, "expired, from the query", expiredQ, "invalid_token")

	// Rotation: k2 replaces k1. A token signed by k2 makes Mizuchi fetch
	// the new set once; k1's tokens are refused from then on.
	jwks.publish(k2)
	fetches := jwks.fetches.Load()
	tok2 := k2.token(t, "bob", now)
	tokens = append(tokens, tok2)
	jwPut(t, m.URL+"/web/rotated.txt", jwBearer(tok2), []byte("rotated\n")).want(t, "token of the new key", 200, "")
	assertFile(t, filepath.Join(root, "rotated.txt"), []byte("rotated\n"))
	if got := jwks.fetches.Load() - fetches; got != 1 {
		t.Fatalf("the new kid caused %d JWKS fetches, want 1", got)
	}
	jwWantChallenge(t, "token of the removed key", jwPut(t, m.URL+"/web/old.txt", jwBearer(tok), []byte("x")), "invalid_token")
	for range 3 {
		jwPut(t, m.URL+"/web/rotated.txt", jwBearer(tok2), []byte("rotated\n")).want(t, "token of the new key again", 200, "")
	}
	if got := jwks.fetches.Load() - fetches; got != 1 {
		t.Fatalf("known kids caused JWKS fetches: %d in all, want 1", got)
	}

	// The endpoint goes away: the cached keys keep working.
	srv.Close()
	jwPut(t, m.URL+"/web/stale.txt", jwBearer(tok2), []byte("stale\n")).want(t, "cached key with the JWKS endpoint down", 200, "")

	if got := azMetric(t, m.MetricsURL, "mizuchi_auth_requests_total", `bucket="web"`, `method="jwt"`, `result="success"`); got != 9 {
		t.Errorf("jwt successes counted: %v, want 9", got)
	}
	if got := azMetric(t, m.MetricsURL, "mizuchi_auth_requests_total", `bucket="web"`, `method="jwt"`, `result="denied"`); got != 3 {
		t.Errorf("jwt denials counted: %v, want 3", got)
	}

	out := m.Proc.Output()
	if !strings.Contains(out, "query.txt") {
		t.Fatalf("the log does not mention the query-token upload at all; is debug logging on?\n%.2000s", out)
	}
	for _, tk := range tokens {
		sig := tk[strings.LastIndexByte(tk, '.')+1:]
		if strings.Contains(out, sig) || strings.Contains(out, tk[:strings.IndexByte(tk, '.')+20]) {
			t.Fatalf("a token appears in the log:\n%s", out)
		}
	}
}

// TestJWTJWKSDownAtStart starts Mizuchi while its JWKS endpoint refuses
// connections: uploads fail with 503 (an outage, not a bad token), and
// succeed once the endpoint is up, without a restart.
func TestJWTJWKSDownAtStart(t *testing.T) {
	t.Parallel()
	port := testproc.FreePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/jwks.json", port)
	m := startMizuchi(t, jwConfig(url))
	k := jwNewKey(t, "only")
	tok := k.token(t, "carol", time.Now())

	r := jwPut(t, m.URL+"/web/early.txt", jwBearer(tok), []byte("early\n"))
	r.want(t, "upload before any key could be fetched", 503, "ServiceUnavailable")
	if files := visibleFiles(t, filepath.Join(m.Dir, "web")); len(files) != 0 {
		t.Fatalf("stored: %v", files)
	}

	jwks := &jwJWKS{}
	jwks.publish(k)
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatalf("listening on the JWKS port: %v", err)
	}
	srv := httptest.NewUnstartedServer(jwks)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	defer srv.Close()

	deadline := time.Now().Add(30 * time.Second)
	for {
		r := jwPut(t, m.URL+"/web/later.txt", jwBearer(tok), []byte("later\n"))
		if r.Status == 200 {
			break
		}
		if r.Status != 503 || r.Code != "ServiceUnavailable" {
			t.Fatalf("while the keys are being fetched: %d %s, want 503 or 200", r.Status, r.Code)
		}
		if time.Now().After(deadline) {
			t.Fatalf("still 503 30 s after the JWKS endpoint came up (%d fetches)", jwks.fetches.Load())
		}
		time.Sleep(250 * time.Millisecond)
	}
	assertFile(t, filepath.Join(m.Dir, "web/later.txt"), []byte("later\n"))
	if got := azMetric(t, m.MetricsURL, "mizuchi_auth_requests_total", `bucket="web"`, `method="jwt"`, `result="error"`); got < 1 {
		t.Errorf("jwt errors counted: %v, want ≥ 1", got)
	}
}
