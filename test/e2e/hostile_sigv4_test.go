package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// hsReplayEntries is the replay set of the hostile-SigV4 bucket: small, so
// that the requests that must not count fill it many times over.
const hsReplayEntries = 200

// hsConfig: "v4" is SigV4 with replay protection over four keys; "plain",
// "nest" and "nest/inner" are anonymous, "sv" and "sv/inner" SigV4 without
// replay protection, for the raw path cases.
const hsConfig = `server:
  address: "127.0.0.1:{{S3_PORT}}"
  shutdown_grace_seconds: 2
metrics:
  address: "127.0.0.1:{{METRICS_PORT}}"
buckets:
  - name: v4
    path_prefix: /v4
    filesystem: { root: "{{DIR}}/v4" }
    upload: { max_object_size: 16 }
    auth:
      enabled: true
      sigv4:
        region: us-east-1
        replay_protection: true
        replay_max_entries: 200
        credentials:
          - { access_key: carol, secret_key: secret-carol, subject: carol }
          - { access_key: alice, secret_key: secret-alice, subject: alice }
          - { access_key: bob, secret_key: secret-bob, subject: bob }
          - { access_key: dave, secret_key: secret-dave, subject: dave }
  - name: uploads
    path_prefix: /uploads
    filesystem: { root: "{{DIR}}/uploads" }
  - name: nest
    path_prefix: /nest
    filesystem: { root: "{{DIR}}/nest" }
  - name: inner
    path_prefix: /nest/inner
    filesystem: { root: "{{DIR}}/inner" }
  - name: sv
    path_prefix: /sv
    filesystem: { root: "{{DIR}}/sv" }
    auth:
      enabled: true
      sigv4:
        region: us-east-1
        credentials: [{ access_key: alice, secret_key: secret-alice, subject: alice }]
  - name: svinner
    path_prefix: /sv/inner
    filesystem: { root: "{{DIR}}/svinner" }
    auth:
      enabled: true
      sigv4:
        region: us-east-1
        credentials: [{ access_key: alice, secret_key: secret-alice, subject: alice }]
`

// hsSigned is a request signed for canonicalPath (the S3 canonical URI,
// with its query if any), to be sent with any request-target.
type hsSigned struct {
	method string
	header http.Header
	body   []byte
}

func hsSign(t *testing.T, host, key, method, canonicalPath string, body []byte, extra http.Header) *hsSigned {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+host+"/", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	canonicalPath, req.URL.RawQuery, _ = strings.Cut(canonicalPath, "?")
	dec, err := url.PathUnescape(canonicalPath)
	if err != nil {
		t.Fatal(err)
	}
	req.URL.Path, req.URL.RawPath = dec, canonicalPath
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	req.Header.Set("X-Amz-Content-Sha256", hash)
	for k, vs := range extra {
		req.Header[k] = vs
	}
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	creds := aws.Credentials{AccessKeyID: key, SecretAccessKey: "secret-" + key}
	if err := signer.SignHTTP(context.Background(), creds, req, hash, "s3", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	return &hsSigned{method: method, header: req.Header, body: body}
}

// hsClient sends signed requests on kept-alive connections.
type hsClient struct {
	base string
	c    *http.Client
}

func (c *hsClient) send(t *testing.T, target string, s *hsSigned) azResult {
	t.Helper()
	req, err := http.NewRequest(s.method, c.base+target, strings.NewReader(string(s.body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = s.header.Clone()
	req.ContentLength = int64(len(s.body))
	resp, err := c.c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", s.method, target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return azParse(resp, string(b))
}

// put signs and sends a PUT of a 4-byte body to /v4/<object>.
func (c *hsClient) put(t *testing.T, key, object string) azResult {
	t.Helper()
	host := strings.TrimPrefix(c.base, "http://")
	return c.send(t, "/v4/"+object, hsSign(t, host, key, "PUT", "/v4/"+object, []byte("data"), nil))
}

// TestHostileReplaySetCostsTheSender: one key flooding the replay-
// protected bucket with requests that write nothing (bucket probes,
// ListParts, refused uploads) takes no entry; one key writing more than
// its share is refused with SlowDown and Retry-After while the others go
// on writing; a replay is refused whoever sends it.
func TestHostileReplaySetCostsTheSender(t *testing.T) {
	t.Parallel()
	m := startMizuchi(t, hsConfig)
	host := strings.TrimPrefix(m.URL, "http://")
	c := &hsClient{base: m.URL, c: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}}

	seq := 0
	next := func() http.Header { seq++; return http.Header{"X-Seq": {fmt.Sprint(seq)}} }
	for range 3 * hsReplayEntries {
		if r := c.send(t, "/v4", hsSign(t, host, "carol", "HEAD", "/v4", nil, next())); r.Status != 200 {
			t.Fatalf("HeadBucket: %d", r.Status)
		}
		c.send(t, "/v4?location", hsSign(t, host, "carol", "GET", "/v4?location", nil, next())).want(t, "GetBucketLocation", 200, "")
		c.send(t, "/v4/carol/k?uploadId=none", hsSign(t, host, "carol", "GET", "/v4/carol/k?uploadId=none", nil, next())).want(t, "ListParts", 404, "NoSuchUpload")
		c.send(t, "/v4/carol/big", hsSign(t, host, "carol", "PUT", "/v4/carol/big", []byte(strings.Repeat("x", 32)), next())).want(t, "PUT over max_object_size", 400, "EntityTooLarge")
	}
	for _, who := range []string{"alice", "carol"} {
		c.put(t, who, who+"/after-the-flood").want(t, who+"'s PUT after 2400 requests that write nothing", 200, "")
	}

	first := hsSign(t, host, "carol", "PUT", "/v4/carol/0", []byte("data"), nil)
	c.send(t, "/v4/carol/0", first).want(t, "carol's first PUT", 200, "")
	refusedAt := 0
	for i := 1; i <= 2*hsReplayEntries; i++ {
		r := c.put(t, "carol", fmt.Sprintf("carol/%d", i))
		if r.Status == 200 {
			continue
		}
		r.want(t, "carol over her share", 503, "SlowDown")
		if r.Header.Get("Retry-After") == "" {
			t.Fatal("SlowDown without Retry-After")
		}
		refusedAt = i
		break
	}
	if refusedAt == 0 {
		t.Fatalf("carol wrote %d signed PUTs into a replay set of %d", 2*hsReplayEntries+1, hsReplayEntries)
	}
	t.Logf("carol refused after %d signed PUTs", refusedAt)
	for i := range hsReplayEntries / 4 {
		for _, who := range []string{"alice", "bob", "dave"} {
			c.put(t, who, fmt.Sprintf("%s/%d", who, i)).want(t, who+"'s PUT while carol is over her share", 200, "")
		}
	}
	if r := c.send(t, "/v4/carol/0", first); r.Status == 200 {
		t.Fatal("carol's first PUT replayed and accepted")
	}
	a := hsSign(t, host, "alice", "PUT", "/v4/alice/once", []byte("data"), nil)
	c.send(t, "/v4/alice/once", a).want(t, "alice", 200, "")
	c.send(t, "/v4/alice/once", a).want(t, "alice's PUT replayed", 403, "AccessDenied")
}

// TestHostileEncodedSlashNextToReescapedCharacters: a path holding %2F
// and a character net/url re-escapes (| " { …) is routed from its
// segments as sent, exactly like its canonical spelling: %2F never
// becomes a separator, so it neither reaches a bucket whose name it
// spells nor a nested bucket.
func TestHostileEncodedSlashNextToReescapedCharacters(t *testing.T) {
	t.Parallel()
	m := startMizuchi(t, hsConfig)
	addr := strings.TrimPrefix(m.URL, "http://")
	raw := func(target string) azResult {
		t.Helper()
		head := "PUT " + target + " HTTP/1.1\r\nHost: " + addr + "\r\nContent-Length: 4\r\nConnection: close"
		return atkRaw(t, addr, head, []byte("evil"))
	}
	for _, target := range []string{"/uploads%2Falice/k|", "/uploads%2Falice/k%7C", "/uploads%2falice/k\"", "/uploads%2Falice/k{"} {
		raw(target).want(t, "PUT "+target, 404, "NoSuchBucket")
	}
	for _, target := range []string{"/nest/inner%2Falice/f{", "/nest/inner%2Falice/f%7B"} {
		raw(target).want(t, "PUT "+target, 200, "")
		assertFile(t, filepath.Join(m.Dir, "nest", "inner", "alice", "f{"), []byte("evil"))
		if err := os.Remove(filepath.Join(m.Dir, "nest", "inner", "alice", "f{")); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range []string{"uploads", "inner"} {
		if files := visibleFiles(t, filepath.Join(m.Dir, b)); len(files) > 0 {
			t.Errorf("bucket %s holds %v", b, files)
		}
	}

	// Signed: the request verifies against the canonical URI of the same
	// segments it is routed by, in the outer bucket; signed for the inner
	// bucket instead, it does not verify.
	for _, target := range []string{"/sv/inner%2Falice/f{", "/sv/inner%2Falice/f%7B", "/sv/inner%2Falice/f%7b"} {
		s := hsSign(t, addr, "alice", "PUT", "/sv/inner%2Falice/f%7B", []byte("data"), nil)
		hsRaw(t, addr, target, s).want(t, "signed PUT "+target, 200, "")
		assertFile(t, filepath.Join(m.Dir, "sv", "inner", "alice", "f{"), []byte("data"))
		s = hsSign(t, addr, "alice", "PUT", "/sv/inner/alice/f%7B", []byte("data"), nil)
		hsRaw(t, addr, target, s).want(t, "PUT "+target+" signed for the nested bucket", 403, "SignatureDoesNotMatch")
	}
	if files := visibleFiles(t, filepath.Join(m.Dir, "svinner")); len(files) > 0 {
		t.Errorf("bucket svinner holds %v", files)
	}
}

// hsRaw sends a signed request with target as the request-target, byte
// for byte.
func hsRaw(t *testing.T, addr, target string, s *hsSigned) azResult {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nConnection: close", s.method, target, addr, len(s.body))
	for k, vs := range s.header {
		for _, v := range vs {
			fmt.Fprintf(&b, "\r\n%s: %s", k, v)
		}
	}
	return atkRaw(t, addr, b.String(), s.body)
}
