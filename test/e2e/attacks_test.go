package e2e

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/mizuchi-uploadr/mizuchi/internal/auth/jwt"
)

const (
	atkAccessKey = "AKIAE2EATTACKTABLE01"
	atkSecretKey = "e2e/attack/secret/key/0123456789abcdefghij"
	atkMaxObject = 1 << 20
)

// atkConfig: "open" is anonymous with a 1 MiB object limit; "private"
// needs an HS256 token; "rs" an RS256 token verified with a public key
// file; "v4" SigV4 with replay protection.
func atkConfig(pubKeyFile string) string {
	return `server:
  address: "127.0.0.1:{{S3_PORT}}"
  read_header_timeout_seconds: 2
  body_idle_timeout_seconds: 2
  max_header_bytes: 8192
  shutdown_grace_seconds: 2
metrics:
  address: "127.0.0.1:{{METRICS_PORT}}"
logging:
  level: debug
buckets:
  - name: open
    path_prefix: /open
    filesystem: { root: "{{DIR}}/open" }
    upload: { max_object_size: ` + fmt.Sprint(atkMaxObject) + `, min_part_size: 1024 }
  - name: private
    path_prefix: /private
    filesystem: { root: "{{DIR}}/private" }
    auth:
      enabled: true
      jwt: { algorithm: HS256, secret: "` + azSecret + `" }
  - name: rs
    path_prefix: /rs
    filesystem: { root: "{{DIR}}/rs" }
    auth:
      enabled: true
      jwt: { algorithm: RS256, public_key_file: "` + pubKeyFile + `", leeway_seconds: 5 }
  - name: v4
    path_prefix: /v4
    filesystem: { root: "{{DIR}}/v4" }
    auth:
      enabled: true
      sigv4:
        region: us-east-1
        max_clock_skew_seconds: 900
        replay_protection: true
        credentials:
          - { access_key: "` + atkAccessKey + `", secret_key: "` + atkSecretKey + `", subject: alice }
`
}

// atkServer is one Mizuchi for the whole attack table, with the RSA key
// of its "rs" bucket.
type atkServer struct {
	*Mizuchi
	addr   string
	rsa    jwKey
	pubPEM []byte
}

func atkStart(t *testing.T) *atkServer {
	t.Helper()
	k := jwNewKey(t, "")
	der, err := x509.MarshalPKIXPublicKey(&k.key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pub := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	file := filepath.Join(t.TempDir(), "rs.pub.pem")
	if err := os.WriteFile(file, pub, 0o600); err != nil {
		t.Fatal(err)
	}
	m := startMizuchi(t, atkConfig(file))
	return &atkServer{Mizuchi: m, addr: strings.TrimPrefix(m.URL, "http://"), rsa: k, pubPEM: pub}
}

// stored lists what a bucket holds, bookkeeping included.
func (s *atkServer) stored(t *testing.T, bucket string) []string {
	t.Helper()
	files := visibleFiles(t, filepath.Join(s.Dir, bucket))
	sort.Strings(files)
	return files
}

func (s *atkServer) wantEmpty(t *testing.T, buckets ...string) {
	t.Helper()
	for _, b := range buckets {
		for _, f := range s.stored(t, b) {
			if !strings.HasPrefix(f, ".mizuchi/uploads/") {
				t.Errorf("bucket %s holds %s", b, f)
			}
		}
	}
}

// atkRaw writes head (a request line and headers, without the blank line)
// and then body, concurrently with reading the answer, on a fresh
// connection. The request is sent byte for byte as given.
func atkRaw(t *testing.T, addr, head string, body []byte) azResult {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	go func() {
		_, _ = io.WriteString(c, head+"\r\n\r\n")
		_, _ = c.Write(body)
	}()
	method, _, _ := strings.Cut(head, " ")
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%q: reading the answer: %v", strings.SplitN(head, "\r\n", 2)[0], err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return azParse(resp, string(b))
}

// TestAttackTraversalSentRaw extends the raw traversal table of the
// foundation tests to encodings and operations it does not cover; the
// private bucket behind the traversal needs a token, so reaching it would
// also bypass authentication.
func TestAttackTraversalSentRaw(t *testing.T) {
	t.Parallel()
	s := atkStart(t)
	tests := []struct {
		name, method, target string
		status               int
		code                 string
	}{
		{"upper-case encoded dot-dot", "PUT", "/open/%2E%2E/private/x", 400, "InvalidArgument"},
		{"half-encoded dot-dot", "PUT", "/open/.%2e/private/x", 400, "InvalidArgument"},
		{"half-encoded dot-dot, other half", "PUT", "/open/%2e./private/x", 400, "InvalidArgument"},
		{"dot-dot after a segment", "PUT", "/open/a/../../private/x", 400, "InvalidArgument"},
		{"encoded dot-dot and slash", "PUT", "/open/%2e%2e%2fprivate%2fx", 400, "InvalidArgument"},
		{"encoded backslash twice", "PUT", "/open/..%5c..%5cprivate%5cx", 400, "InvalidArgument"},
		{"mixed slash and backslash", "PUT", "/open/a/..\\../private/x", 400, "InvalidArgument"},
		{"trailing dot-dot", "PUT", "/open/a/..", 400, "InvalidArgument"},
		{"trailing encoded dot-dot", "PUT", "/open/a/%2e%2e", 400, "InvalidArgument"},
		{"dot-dot key alone", "PUT", "/open/..", 400, "InvalidArgument"},
		{"encoded NUL after dot-dot", "PUT", "/open/..%00/private/x", 400, "InvalidArgument"},
		{"multipart create with dot-dot", "POST", "/open/%2e%2e/private/x?uploads", 400, "InvalidArgument"},
		{"part upload with dot-dot", "PUT", "/open/%2e%2e/private/x?partNumber=1&uploadId=abc", 400, "InvalidArgument"},
		{"prefix confusion, suffix", "PUT", "/openx/y", 404, "NoSuchBucket"},
		{"prefix confusion, case", "PUT", "/OPEN/y", 404, "NoSuchBucket"},
		{"prefix confusion, encoded slash", "PUT", "/open%2fy", 404, "NoSuchBucket"},
		{"prefix confusion, dot segment before prefix", "PUT", "/./open/y", 404, "NoSuchBucket"},
		{"prefix confusion, dot-dot before prefix", "PUT", "/x/../private/y", 404, "NoSuchBucket"},
		{"prefix confusion, semicolon", "PUT", "/open;/y", 404, "NoSuchBucket"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			head := tt.method + " " + tt.target + " HTTP/1.1\r\nHost: " + s.addr + "\r\nContent-Length: 4\r\nConnection: close"
			atkRaw(t, s.addr, head, []byte("evil")).want(t, tt.method+" "+tt.target, tt.status, tt.code)
		})
	}
	s.wantEmpty(t, "open", "private")
}

// atkB64 is base64url without padding of JSON.
func atkB64(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// TestAttackForgedTokens sends tokens an attacker can forge or replay to
// the RS256 bucket: each is a 401 Bearer challenge and nothing is stored.
func TestAttackForgedTokens(t *testing.T) {
	t.Parallel()
	s := atkStart(t)
	now := time.Now()
	claims := map[string]any{"sub": "mallory", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	valid := s.rsa.token(t, "alice", now)
	parts := strings.Split(valid, ".")

	hsWithPEM, err := jwt.Mint(jwt.MintOptions{Subject: "mallory", Algorithm: "HS256", Secret: s.pubPEM})
	if err != nil {
		t.Fatal(err)
	}
	hsWithDER, err := jwt.Mint(jwt.MintOptions{Subject: "mallory", Algorithm: "HS256", Secret: s.rsa.key.PublicKey.N.Bytes()})
	if err != nil {
		t.Fatal(err)
	}
	// Tokens signed by the attacker's own key, pointing at it from the
	// header: the key must come from the configuration only.
	evil := jwNewKey(t, "evil")
	selfKeyed := func(header map[string]any) string {
		tok := gojwt.NewWithClaims(gojwt.SigningMethodRS256, gojwt.MapClaims(claims))
		for k, v := range header {
			tok.Header[k] = v
		}
		signed, err := tok.SignedString(evil.key)
		if err != nil {
			t.Fatal(err)
		}
		return signed
	}
	b64 := base64.RawURLEncoding.EncodeToString
	evilJWK := map[string]any{"kty": "RSA", "n": b64(evil.key.N.Bytes()), "e": "AQAB"}
	tests := []struct{ name, token string }{
		{"attacker's key embedded as jwk", selfKeyed(map[string]any{"jwk": evilJWK})},
		{"attacker's key set named by jku", selfKeyed(map[string]any{"jku": "http://127.0.0.1:1/jwks.json", "kid": "evil"})},
		{"attacker's key, kid traversal", selfKeyed(map[string]any{"kid": "../../../../dev/null"})},
		{"alg none, no signature", atkB64(map[string]string{"alg": "none", "typ": "JWT"}) + "." + atkB64(claims) + "."},
		{"alg None, no signature", atkB64(map[string]string{"alg": "None"}) + "." + atkB64(claims) + "."},
		{"alg none with a real signature", atkB64(map[string]string{"alg": "none"}) + "." + parts[1] + "." + parts[2]},
		{"HS256 keyed with the RSA public key PEM", hsWithPEM},
		{"HS256 keyed with the RSA modulus", hsWithDER},
		{"claims swapped under a valid signature", parts[0] + "." + atkB64(claims) + "." + parts[2]},
		{"signature stripped", parts[0] + "." + parts[1] + "."},
		{"expired", s.rsa.token(t, "alice", now.Add(-2*time.Hour))},
		{"not yet valid", s.rsa.token(t, "alice", now.Add(time.Hour))},
		{"HS256 token of another bucket", azToken(t, azSecret, "alice")},
		{"garbage", "not.a.token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := azExpect(t, s.URL, "PUT", "/rs/mallory.bin", http.Header{"Authorization": {"Bearer " + tt.token}}, 10)
			jwWantChallenge(t, tt.name, r, "invalid_token")
		})
	}
	s.wantEmpty(t, "rs")
	// The same key does sign valid tokens: the table above fails for
	// the attack, not for the setup.
	azDo(t, "PUT", s.URL+"/rs/alice.bin", valid, []byte("real\n")).want(t, "valid RS256 token", 200, "")
	assertFile(t, filepath.Join(s.Dir, "rs/alice.bin"), []byte("real\n"))
}

// atkSigned is a SigV4-signed request, to be sent raw (and tampered with
// first).
type atkSigned struct {
	method, target string
	header         http.Header
	body           []byte
}

// atkSign signs a PUT of body to target on the v4 bucket at signTime.
func atkSign(t *testing.T, s *atkServer, target string, body []byte, extra http.Header, secret string, signTime time.Time) *atkSigned {
	t.Helper()
	req, err := http.NewRequest("PUT", s.URL+target, strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	req.Header.Set("X-Amz-Content-Sha256", hash)
	for k, vs := range extra {
		req.Header[k] = vs
	}
	creds := aws.Credentials{AccessKeyID: atkAccessKey, SecretAccessKey: secret}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hash, "s3", "us-east-1", signTime); err != nil {
		t.Fatal(err)
	}
	return &atkSigned{method: "PUT", target: target, header: req.Header, body: body}
}

func (a *atkSigned) send(t *testing.T, s *atkServer) azResult {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nConnection: close", a.method, a.target, s.addr, len(a.body))
	for k, vs := range a.header {
		for _, v := range vs {
			fmt.Fprintf(&b, "\r\n%s: %s", k, v)
		}
	}
	return atkRaw(t, s.addr, b.String(), a.body)
}

// TestAttackSigV4Tampering signs a request correctly and changes one
// thing at a time.
func TestAttackSigV4Tampering(t *testing.T) {
	t.Parallel()
	s := atkStart(t)
	now := time.Now().UTC()
	body := []byte("signed body, 32 bytes long......")
	meta := http.Header{"X-Amz-Meta-Owner": {"alice"}, "Content-Type": {"text/plain"}}

	control := atkSign(t, s, "/v4/alice/control.txt?x-id=PutObject", body, meta, atkSecretKey, now)
	control.send(t, s).want(t, "correctly signed", 200, "")
	assertFile(t, filepath.Join(s.Dir, "v4/alice/control.txt"), body)
	control.send(t, s).want(t, "the same signature replayed", 403, "AccessDenied")

	tests := []struct {
		name   string
		tamper func(a *atkSigned)
		secret string
		at     time.Time
		status int
		code   string
	}{
		{"path", func(a *atkSigned) { a.target = "/v4/alice/tampered.txt?x-id=PutObject" }, "", time.Time{}, 403, "SignatureDoesNotMatch"},
		{"path into another prefix", func(a *atkSigned) { a.target = "/v4/bob/signed.txt?x-id=PutObject" }, "", time.Time{}, 403, "SignatureDoesNotMatch"},
		{"query value", func(a *atkSigned) { a.target = "/v4/alice/signed.txt?x-id=PutObjectX" }, "", time.Time{}, 403, "SignatureDoesNotMatch"},
		{"query parameter added", func(a *atkSigned) { a.target += "&x-extra=1" }, "", time.Time{}, 403, "SignatureDoesNotMatch"},
		{"signed header", func(a *atkSigned) { a.header.Set("X-Amz-Meta-Owner", "mallory") }, "", time.Time{}, 403, "SignatureDoesNotMatch"},
		{"signed header dropped", func(a *atkSigned) { a.header.Del("Content-Type") }, "", time.Time{}, 403, "SignatureDoesNotMatch"},
		{"date", func(a *atkSigned) { a.header.Set("X-Amz-Date", now.Add(time.Second).Format("20060102T150405Z")) }, "", time.Time{}, 403, "SignatureDoesNotMatch"},
		{"body", func(a *atkSigned) { a.body = []byte("tampered body, 32 bytes long....") }, "", time.Time{}, 400, "XAmzContentSHA256Mismatch"},
		{"wrong secret", nil, "not-the-secret", time.Time{}, 403, "SignatureDoesNotMatch"},
		{"clock skewed back", nil, "", now.Add(-time.Hour), 403, "RequestTimeTooSkewed"},
		{"clock skewed forward", nil, "", now.Add(time.Hour), 403, "RequestTimeTooSkewed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			secret, at := atkSecretKey, now
			if tt.secret != "" {
				secret = tt.secret
			}
			if !tt.at.IsZero() {
				at = tt.at
			}
			// A signed header unique to the case keeps the signatures
			// apart, so the replay cache cannot be what refuses them.
			h := meta.Clone()
			h.Set("X-Amz-Meta-Case", tt.name)
			a := atkSign(t, s, "/v4/alice/signed.txt?x-id=PutObject", body, h, secret, at)
			if tt.tamper != nil {
				tt.tamper(a)
			}
			a.send(t, s).want(t, tt.name, tt.status, tt.code)
		})
	}
	for _, f := range s.stored(t, "v4") {
		if f != "alice/control.txt" && f != ".mizuchi/meta/alice/control.txt" {
			t.Errorf("stored: %s", f)
		}
	}
}

// TestAttackOversized sends headers and bodies above the limits.
func TestAttackOversized(t *testing.T) {
	t.Parallel()
	s := atkStart(t)

	t.Run("headers", func(t *testing.T) {
		head := "PUT /open/big-header.bin HTTP/1.1\r\nHost: " + s.addr + "\r\nContent-Length: 1\r\nX-Amz-Meta-Pad: " + strings.Repeat("a", 64<<10)
		r := atkRaw(t, s.addr, head, []byte("x"))
		if r.Status != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("headers over max_header_bytes: %d, want 431", r.Status)
		}
	})
	t.Run("headers just under the limit", func(t *testing.T) {
		head := "PUT /open/header-ok.bin HTTP/1.1\r\nHost: " + s.addr + "\r\nContent-Length: 1\r\nConnection: close\r\nX-Pad: " + strings.Repeat("a", 6<<10)
		atkRaw(t, s.addr, head, []byte("x")).want(t, "headers under max_header_bytes", 200, "")
	})
	tests := []struct {
		name, method, path string
		header             http.Header
		length             int64
		status             int
		code               string
	}{
		{"object over max_object_size", "PUT", "/open/big.bin", nil, atkMaxObject + 1, 400, "EntityTooLarge"},
		{"object of 5 TiB", "PUT", "/open/big.bin", nil, 5 << 40, 400, "EntityTooLarge"},
		{"part over max_object_size", "PUT", "/open/big.bin?partNumber=1&uploadId=x", nil, atkMaxObject + 1, 400, "EntityTooLarge"},
		{"aws-chunked decoded length over max_object_size", "PUT", "/open/big.bin", http.Header{
			"X-Amz-Content-Sha256":         {"STREAMING-UNSIGNED-PAYLOAD-TRAILER"},
			"Content-Encoding":             {"aws-chunked"},
			"X-Amz-Decoded-Content-Length": {fmt.Sprint(atkMaxObject + 1)},
		}, 100, 400, "EntityTooLarge"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			azExpect(t, s.URL, tt.method, tt.path, tt.header, tt.length).want(t, tt.name, tt.status, tt.code)
		})
	}
	t.Run("no length", func(t *testing.T) {
		head := "PUT /open/chunked.bin HTTP/1.1\r\nHost: " + s.addr + "\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\nConnection: close"
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, head+"\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		azParse(resp, string(b)).want(t, "chunked transfer without a length", 411, "MissingContentLength")
	})
	for _, f := range s.stored(t, "open") {
		if !strings.Contains(f, "header-ok.bin") {
			t.Errorf("stored: %s", f)
		}
	}
}

// TestAttackSlowloris trickles headers and stalls a body.
func TestAttackSlowloris(t *testing.T) {
	t.Parallel()
	s := atkStart(t)

	// Headers, one byte every 200 ms: the whole head would take about
	// 20 s; read_header_timeout is 2 s.
	slow, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	head := "PUT /open/slow-head.bin HTTP/1.1\r\nHost: " + s.addr + "\r\nContent-Length: 4\r\nX-Amz-Meta-A: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\nslow"
	start := time.Now()
	trickled := make(chan int, 1)
	go func() {
		i := 0
		for ; i < len(head); i++ {
			if _, err := slow.Write([]byte{head[i]}); err != nil {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		trickled <- i
	}()
	// Meanwhile the server serves others.
	time.Sleep(500 * time.Millisecond)
	azDo(t, "PUT", s.URL+"/open/normal.bin", "", []byte("normal\n")).want(t, "a normal upload during a slowloris", 200, "")
	_ = slow.SetReadDeadline(time.Now().Add(15 * time.Second))
	buf := make([]byte, 512)
	n, rerr := slow.Read(buf)
	closedAfter := time.Since(start)
	// Go's server answers 400 (or nothing) and closes the connection.
	if n > 0 {
		answer := string(buf[:n])
		if !strings.HasPrefix(answer, "HTTP/1.1 400 ") && !strings.HasPrefix(answer, "HTTP/1.1 408 ") || !strings.Contains(answer, "Connection: close") {
			t.Fatalf("the server answered a trickled head: %q", answer)
		}
		t.Logf("slowloris head answered %q", strings.SplitN(answer, "\r\n", 2)[0])
		for rerr == nil {
			_, rerr = slow.Read(buf)
		}
	}
	if ne, ok := rerr.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the connection of a trickled head was still open after %v", closedAfter)
	}
	t.Logf("slowloris head: connection closed after %v (read: %v)", closedAfter.Round(100*time.Millisecond), rerr)
	slow.Close()
	if sent := <-trickled; sent >= len(head) {
		t.Fatal("the whole trickled head was accepted")
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "open/slow-head.bin")); err == nil {
		t.Fatal("the trickled upload was stored")
	}

	// Body: the head and 1 KiB arrive, then nothing. body_idle_timeout
	// is 2 s: the upload is answered RequestTimeout, others are served
	// meanwhile, and nothing is left behind.
	stall, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer stall.Close()
	fmt.Fprintf(stall, "PUT /open/stalled.bin HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n", s.addr, 64<<10)
	stall.Write(randomBytes(t, 1<<10))
	stallStart := time.Now()
	azDo(t, "PUT", s.URL+"/open/normal2.bin", "", []byte("normal\n")).want(t, "a normal upload during a stalled body", 200, "")
	atkWantTimeout(t, "stalled body", stall, stallStart)
	if _, err := os.Stat(filepath.Join(s.Dir, "open/stalled.bin")); err == nil {
		t.Fatal("a stalled upload became an object")
	}

	// The same for a CompleteMultipartUpload document that stops halfway.
	r := azDo(t, "POST", s.URL+"/open/stalled-mp.bin?uploads", "", nil)
	r.want(t, "create", 200, "")
	var created struct {
		UploadID string `xml:"UploadId"`
	}
	if err := xml.Unmarshal([]byte(r.Body), &created); err != nil {
		t.Fatal(err)
	}
	stallMP, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer stallMP.Close()
	fmt.Fprintf(stallMP, "POST /open/stalled-mp.bin?uploadId=%s HTTP/1.1\r\nHost: %s\r\nContent-Length: 4096\r\n\r\n<CompleteMultipartUpload><Part>", created.UploadID, s.addr)
	atkWantTimeout(t, "stalled Complete document", stallMP, time.Now())

	waitFor(t, "no upload in flight", func() bool {
		for _, f := range s.stored(t, "open") {
			if strings.Contains(f, "stalled") || strings.Contains(f, ".mizuchi-tmp-") {
				return false
			}
		}
		return azMetric(t, s.MetricsURL, "mizuchi_inflight_uploads", `bucket="open"`) == 0
	})
}

// atkWantTimeout reads the answer on a connection whose client stalled:
// 400 RequestTimeout after about body_idle_timeout (2 s).
func atkWantTimeout(t *testing.T, what string, c net.Conn, since time.Time) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%s: no answer after %v: %v", what, time.Since(since), err)
	}
	b, _ := io.ReadAll(resp.Body)
	azParse(resp, string(b)).want(t, what, 400, "RequestTimeout")
	t.Logf("%s answered RequestTimeout after %v", what, time.Since(since).Round(100*time.Millisecond))
}

// TestAttackMultipartForgery attacks a multipart upload's part numbers
// and its Complete document; the upload survives every attempt and
// completes with the real parts.
func TestAttackMultipartForgery(t *testing.T) {
	t.Parallel()
	s := atkStart(t)
	base := s.URL + "/open/mp.bin"
	r := azDo(t, "POST", base+"?uploads", "", nil)
	r.want(t, "create", 200, "")
	var created struct {
		UploadID string `xml:"UploadId"`
	}
	if err := xml.Unmarshal([]byte(r.Body), &created); err != nil || created.UploadID == "" {
		t.Fatalf("no upload id in %q: %v", r.Body, err)
	}
	id := created.UploadID
	for _, n := range []string{"0", "10001", "-1", "1.5", "", "99999999999"} {
		azExpect(t, s.URL, "PUT", "/open/mp.bin?partNumber="+n+"&uploadId="+id, nil, 2048).
			want(t, "part number "+n, 400, "InvalidArgument")
	}
	p1, p2 := randomBytes(t, 2048), randomBytes(t, 100)
	e1 := azDo(t, "PUT", fmt.Sprintf("%s?partNumber=1&uploadId=%s", base, id), "", p1)
	e1.want(t, "part 1", 200, "")
	e2 := azDo(t, "PUT", fmt.Sprintf("%s?partNumber=2&uploadId=%s", base, id), "", p2)
	e2.want(t, "part 2", 200, "")
	et1, et2 := e1.Header.Get("ETag"), e2.Header.Get("ETag")
	forged := `"` + md5hex([]byte("forged")) + `"`

	part := func(n int, etag string) string {
		return fmt.Sprintf("<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", n, etag)
	}
	doc := func(parts ...string) []byte {
		return []byte("<CompleteMultipartUpload>" + strings.Join(parts, "") + "</CompleteMultipartUpload>")
	}
	laughs := `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">` +
		`<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>` +
		`<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>&lol3;</ETag></Part></CompleteMultipartUpload>`
	external := `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>` +
		`<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>&e;</ETag></Part></CompleteMultipartUpload>`
	huge := doc(strings.Repeat(part(1, et1), 1) + "<Pad>" + strings.Repeat("x", 5<<20) + "</Pad>")
	tests := []struct {
		name   string
		body   []byte
		status int
		code   string
	}{
		{"forged ETag", doc(part(1, forged), part(2, et2)), 400, "InvalidPart"},
		{"ETag of another part", doc(part(1, et2), part(2, et1)), 400, "InvalidPart"},
		{"part never uploaded", doc(part(1, et1), part(3, et2)), 400, "InvalidPart"},
		{"empty ETag", doc(part(1, ""), part(2, et2)), 400, "InvalidPart"},
		{"out of order", doc(part(2, et2), part(1, et1)), 400, "InvalidPartOrder"},
		{"duplicate part", doc(part(1, et1), part(1, et1), part(2, et2)), 400, "InvalidPartOrder"},
		{"part number 0", doc(part(0, et1), part(2, et2)), 400, "InvalidArgument"},
		{"part number 10001", doc(part(1, et1), part(10001, et2)), 400, "InvalidArgument"},
		{"no parts", doc(), 400, "MalformedXML"},
		{"not XML", []byte("{\"parts\": [1, 2]}"), 400, "MalformedXML"},
		{"entity expansion", []byte(laughs), 400, "MalformedXML"},
		{"external entity", []byte(external), 400, "MalformedXML"},
		{"5 MiB document", huge, 400, "MaxMessageLengthExceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			head := fmt.Sprintf("POST /open/mp.bin?uploadId=%s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nConnection: close", id, s.addr, len(tt.body))
			atkRaw(t, s.addr, head, tt.body).want(t, tt.name, tt.status, tt.code)
			if _, err := os.Stat(filepath.Join(s.Dir, "open/mp.bin")); err == nil {
				t.Fatal("the object exists after a refused Complete")
			}
		})
	}
	azDo(t, "POST", base+"?uploadId="+id, "", doc(part(1, et1), part(2, et2))).want(t, "the real Complete", 200, "")
	assertFile(t, filepath.Join(s.Dir, "open/mp.bin"), append(append([]byte{}, p1...), p2...))
}
