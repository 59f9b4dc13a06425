package e2e

import (
	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/testproc"

	"bufio"
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mizuchi-uploadr/mizuchi/internal/auth/jwt"
	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/opaserver"
	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/openfgaserver"
)

// azSecret is the HS256 secret of the authorization tests' buckets.
const azSecret = "e2e-authz-secret-0123456789abcdef0123456789"

// azToken mints an HS256 token for sub with secret.
func azToken(t *testing.T, secret, sub string) string {
	t.Helper()
	tok, err := jwt.Mint(jwt.MintOptions{Subject: sub, Secret: []byte(secret), TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// azConfig is a configuration with one filesystem bucket "files" at
// /files, HS256 JWT authentication and the given authz section (indented
// for the bucket level).
func azConfig(authz string) string {
	return `server:
  address: "127.0.0.1:{{S3_PORT}}"
  shutdown_grace_seconds: 2
metrics:
  address: "127.0.0.1:{{METRICS_PORT}}"
logging:
  level: debug
buckets:
  - name: files
    path_prefix: /files
    filesystem: { root: "{{DIR}}/files" }
    auth:
      enabled: true
      jwt: { algorithm: HS256, secret: "` + azSecret + `" }
    authz:
      enabled: true
` + authz + `
    upload:
      min_part_size: 1024
`
}

// azResult is an answer read off the wire.
type azResult struct {
	Status int
	Code   string // the S3 error code, if any
	Header http.Header
	Body   string
}

var azCodeRE = regexp.MustCompile(`<Code>([^<]*)</Code>`)

func azParse(resp *http.Response, body string) azResult {
	r := azResult{Status: resp.StatusCode, Header: resp.Header, Body: body}
	if m := azCodeRE.FindStringSubmatch(body); m != nil {
		r.Code = m[1]
	}
	return r
}

func (r azResult) want(t *testing.T, what string, status int, code string) {
	t.Helper()
	if r.Status != status || r.Code != code {
		t.Fatalf("%s: %d %q, want %d %q\n%.500s", what, r.Status, r.Code, status, code, r.Body)
	}
}

// azDo sends a request with a bearer token (none when empty).
func azDo(t *testing.T, method, url, token string, body []byte) azResult {
	t.Helper()
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	resp, b := rawRequest(t, method, url, rd, h)
	return azParse(resp, b)
}

// azExpect writes a request's head with "Expect: 100-continue" and a
// Content-Length on a raw connection and reads the answer without ever
// sending the body. A server that wants the body answers 100 Continue;
// that is reported as a failure, since the body must not be needed.
func azExpect(t *testing.T, base, method, path string, header http.Header, contentLength int64) azResult {
	t.Helper()
	addr := strings.TrimPrefix(base, "http://")
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nExpect: 100-continue\r\n", method, path, addr, contentLength)
	for k, vs := range header {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(c, b.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %s: reading the answer to the head: %v", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusContinue {
		t.Fatalf("%s %s: the server asked for the body (100 Continue)", method, path)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return azParse(resp, string(body))
}

// azMetric sums the samples of a metric whose label set contains every
// label given ("name" alone sums all series).
func azMetric(t *testing.T, metricsURL, name string, labels ...string) float64 {
	t.Helper()
	resp, body := rawRequest(t, "GET", metricsURL+"/metrics", nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("metrics: %d", resp.StatusCode)
	}
	var sum float64
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains(line, l) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum += v
	}
	return sum
}

// azCreate starts a multipart upload and returns its id.
func azCreate(t *testing.T, m *Mizuchi, token, key string) string {
	t.Helper()
	r := azDo(t, "POST", m.URL+"/files/"+key+"?uploads", token, nil)
	r.want(t, "CreateMultipartUpload "+key, 200, "")
	var res struct {
		UploadID string `xml:"UploadId"`
	}
	if err := xml.Unmarshal([]byte(r.Body), &res); err != nil || res.UploadID == "" {
		t.Fatalf("CreateMultipartUpload answer %q: %v", r.Body, err)
	}
	return res.UploadID
}

// azCompleteXML is a CompleteMultipartUpload document for the parts'
// ETags, in the order given, numbered from 1.
func azCompleteXML(etags ...string) []byte {
	var b strings.Builder
	b.WriteString("<CompleteMultipartUpload>")
	for i, e := range etags {
		fmt.Fprintf(&b, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", i+1, e)
	}
	b.WriteString("</CompleteMultipartUpload>")
	return []byte(b.String())
}

// azEngine is one policy engine setup under test.
type azEngine struct {
	name   string
	engine string // metric label
	// calls counts decisions that reached the engine; for engines
	// without a server count, the uncached decisions in Mizuchi's metrics.
	calls func(t *testing.T, m *Mizuchi) float64
	stop  func(t *testing.T) // nil: the engine cannot go down
}

func azUncached(engine string) func(t *testing.T, m *Mizuchi) float64 {
	return func(t *testing.T, m *Mizuchi) float64 {
		return azMetric(t, m.MetricsURL, "mizuchi_authz_decisions_total", `engine="`+engine+`"`, `cached="false"`)
	}
}

// azScenario runs the allow/deny/cache/multipart story against a running
// Mizuchi whose bucket "files" lets each subject write only under
// "{subject}/".
func azScenario(t *testing.T, m *Mizuchi, e azEngine) {
	alice, bob := azToken(t, azSecret, "alice"), azToken(t, azSecret, "bob")
	root := filepath.Join(m.Dir, "files")

	// Allowed: stored, bytes intact.
	data := randomBytes(t, 64<<10)
	azDo(t, "PUT", m.URL+"/files/alice/ok.bin", alice, data).want(t, "alice's own upload", 200, "")
	assertFile(t, filepath.Join(root, "alice/ok.bin"), data)

	// Denied before the body: the head alone is answered.
	h := http.Header{"Authorization": {"Bearer " + alice}, "Content-Type": {"application/octet-stream"}}
	azExpect(t, m.URL, "PUT", "/files/bob/intrusion.bin", h, 1<<20).want(t, "alice writing under bob/", 403, "AccessDenied")
	azExpect(t, m.URL, "POST", "/files/bob/intrusion.bin?uploads", h, 0).want(t, "alice starting a multipart upload under bob/", 403, "AccessDenied")
	if _, err := os.Stat(filepath.Join(root, "bob")); err == nil {
		t.Fatalf("something was stored under bob/: %v", visibleFiles(t, root))
	}

	// The decision cache: identical requests (same token, key, size)
	// reach the engine once; a different size is a different input.
	before := e.calls(t, m)
	same := randomBytes(t, 1000)
	for range 5 {
		azDo(t, "PUT", m.URL+"/files/alice/same.bin", alice, same).want(t, "repeated upload", 200, "")
	}
	if got := e.calls(t, m) - before; got != 1 {
		t.Fatalf("5 identical uploads made %v engine calls, want 1", got)
	}
	azDo(t, "PUT", m.URL+"/files/alice/same.bin", alice, same[:999]).want(t, "upload of another size", 200, "")
	if got := e.calls(t, m) - before; got != 2 {
		t.Fatalf("an upload of another size made %v engine calls in all, want 2 (content_length is part of the input)", got)
	}
	for range 3 {
		azExpect(t, m.URL, "PUT", "/files/bob/intrusion.bin", h, 1<<20).want(t, "repeated deny", 403, "AccessDenied")
	}
	if got := e.calls(t, m) - before; got != 2 {
		t.Fatalf("a repeated deny reached the engine again (%v calls in all)", got)
	}

	// Multipart: bound to alice and her key at creation.
	id := azCreate(t, m, alice, "alice/big.bin")
	afterCreate := e.calls(t, m)
	part1, part2 := randomBytes(t, 3000), randomBytes(t, 1500)
	partURL := func(key string, n int) string {
		return fmt.Sprintf("%s/files/%s?partNumber=%d&uploadId=%s", m.URL, key, n, id)
	}
	bh := http.Header{"Authorization": {"Bearer " + bob}}
	azExpect(t, m.URL, "PUT", strings.TrimPrefix(partURL("alice/big.bin", 1), m.URL), bh, int64(len(part1))).
		want(t, "bob uploading a part of alice's upload", 403, "AccessDenied")
	azExpect(t, m.URL, "PUT", strings.TrimPrefix(partURL("alice/other.bin", 1), m.URL), http.Header{"Authorization": {"Bearer " + alice}}, int64(len(part1))).
		want(t, "alice uploading a part of her upload under another key", 404, "NoSuchUpload")
	azDo(t, "GET", m.URL+"/files/alice/big.bin?uploadId="+id, bob, nil).want(t, "bob listing alice's parts", 403, "AccessDenied")
	azDo(t, "DELETE", m.URL+"/files/alice/big.bin?uploadId="+id, bob, nil).want(t, "bob aborting alice's upload", 403, "AccessDenied")
	r1 := azDo(t, "PUT", partURL("alice/big.bin", 1), alice, part1)
	r1.want(t, "alice's part 1", 200, "")
	r2 := azDo(t, "PUT", partURL("alice/big.bin", 2), alice, part2)
	r2.want(t, "alice's part 2", 200, "")
	doc := azCompleteXML(r1.Header.Get("ETag"), r2.Header.Get("ETag"))
	azDo(t, "POST", m.URL+"/files/alice/big.bin?uploadId="+id, bob, doc).want(t, "bob completing alice's upload", 403, "AccessDenied")
	azDo(t, "GET", m.URL+"/files/alice/big.bin?uploadId="+id, alice, nil).want(t, "alice listing her parts", 200, "")
	azDo(t, "POST", m.URL+"/files/alice/big.bin?uploadId="+id, alice, doc).want(t, "alice completing", 200, "")
	assertFile(t, filepath.Join(root, "alice/big.bin"), append(append([]byte{}, part1...), part2...))
	if got := e.calls(t, m) - afterCreate; got != 0 {
		t.Fatalf("parts, list and complete of a bound upload made %v engine calls, want 0", got)
	}

	// Every decision is counted, by outcome and cache use.
	lb := `bucket="files"`
	en := `engine="` + e.engine + `"`
	for _, c := range []struct {
		labels []string
		min    float64
	}{
		{[]string{lb, en, `decision="allow"`, `cached="false"`}, 4},
		{[]string{lb, en, `decision="allow"`, `cached="true"`}, 4},
		{[]string{lb, en, `decision="deny"`, `cached="false"`}, 2},
		{[]string{lb, en, `decision="deny"`, `cached="true"`}, 3},
	} {
		if got := azMetric(t, m.MetricsURL, "mizuchi_authz_decisions_total", c.labels...); got < c.min {
			t.Errorf("mizuchi_authz_decisions_total%v = %v, want ≥ %v", c.labels, got, c.min)
		}
	}

	if e.stop == nil {
		return
	}
	// Engine down: fail closed, nothing stored. A new key so the cache
	// cannot answer.
	e.stop(t)
	azExpect(t, m.URL, "PUT", "/files/alice/while-down.bin", http.Header{"Authorization": {"Bearer " + alice}}, 100).
		want(t, "upload while the engine is down", 503, "ServiceUnavailable")
	r := azDo(t, "PUT", m.URL+"/files/alice/while-down2.bin", alice, randomBytes(t, 100))
	r.want(t, "upload while the engine is down (body sent)", 503, "ServiceUnavailable")
	for _, f := range []string{"alice/while-down.bin", "alice/while-down2.bin"} {
		if _, err := os.Stat(filepath.Join(root, f)); err == nil {
			t.Fatalf("%s stored although the engine was down", f)
		}
	}
	if got := azMetric(t, m.MetricsURL, "mizuchi_authz_decisions_total", lb, en, `decision="error"`); got < 2 {
		t.Errorf("decision=error counted %v times, want ≥ 2", got)
	}
	// A cached decision keeps working for its TTL.
	azDo(t, "PUT", m.URL+"/files/alice/same.bin", alice, same).want(t, "cached allow while the engine is down", 200, "")
}

func azPolicy(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../examples/policy.rego")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestAuthzOPARemote(t *testing.T) {
	t.Parallel()
	opa := opaserver.Start(t, azPolicy(t))
	m := startMizuchi(t, azConfig(`      opa:
        url: "`+opa.URL+`"
        policy_path: mizuchi/allow
        timeout_seconds: 2
        cache_ttl_seconds: 300`))
	azScenario(t, m, azEngine{
		name: "opa-remote", engine: "opa",
		calls: func(*testing.T, *Mizuchi) float64 { return float64(opa.Decisions()) },
		stop:  func(t *testing.T) { opa.Stop(t) },
	})
}

func TestAuthzOPAEmbedded(t *testing.T) {
	t.Parallel()
	policy := filepath.Join(t.TempDir(), "policy.rego")
	if err := os.WriteFile(policy, []byte(azPolicy(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	m := startMizuchi(t, azConfig(`      opa:
        policy_file: "`+policy+`"
        query: data.mizuchi.allow
        cache_ttl_seconds: 300`))
	azScenario(t, m, azEngine{name: "opa-embedded", engine: "opa", calls: azUncached("opa")})
}

// azFGATuples: alice may write under files/alice/ only; nobody is a
// bucket-level writer.
var azFGATuples = []openfgaserver.Tuple{{User: "user:alice", Relation: "writer", Object: "prefix:files/alice/"}}

func azFGAConfig(transport, url string, s *openfgaserver.Server) string {
	return `      openfga:
        transport: ` + transport + `
        url: "` + url + `"
        store_id: "` + s.StoreID + `"
        model_id: "` + s.ModelID + `"
        user: "user:{subject}"
        relation: writer
        object: "prefix:{bucket}/{prefix}"
        objects: ["bucket:{bucket}"]
        timeout_seconds: 2
        cache_ttl_seconds: 300`
}

func TestAuthzOpenFGAGRPC(t *testing.T) {
	t.Parallel()
	fga := openfgaserver.Start(t, azFGATuples...)
	m := startMizuchi(t, azConfig(azFGAConfig("grpc", fga.GRPCAddr, fga)))
	azScenario(t, m, azEngine{name: "openfga-grpc", engine: "openfga", calls: azUncached("openfga"), stop: func(t *testing.T) { fga.Stop(t) }})
}

func TestAuthzOpenFGAHTTP(t *testing.T) {
	t.Parallel()
	fga := openfgaserver.Start(t, azFGATuples...)
	m := startMizuchi(t, azConfig(azFGAConfig("http", fga.HTTPURL, fga)))
	azScenario(t, m, azEngine{name: "openfga-http", engine: "openfga", calls: azUncached("openfga"), stop: func(t *testing.T) { fga.Stop(t) }})
}

// TestAuthzEngineTimeoutIsServiceUnavailable points every engine at a
// listener that never answers: each request fails closed within the
// engine timeout, and nothing is stored.
func TestAuthzEngineTimeoutIsServiceUnavailable(t *testing.T) {
	t.Parallel()
	hole := testproc.BlackHole(t).Addr
	bucket := func(name, authz string) string {
		return `
  - name: ` + name + `
    path_prefix: /` + name + `
    filesystem: { root: "{{DIR}}/` + name + `" }
    auth:
      enabled: true
      jwt: { algorithm: HS256, secret: "` + azSecret + `" }
    authz:
      enabled: true
` + authz
	}
	fake := &openfgaserver.Server{StoreID: "01HZZZZZZZZZZZZZZZZZZZZZZZ", ModelID: "01HZZZZZZZZZZZZZZZZZZZZZZZ"}
	cfg := `server:
  address: "127.0.0.1:{{S3_PORT}}"
metrics:
  address: "127.0.0.1:{{METRICS_PORT}}"
buckets:` +
		bucket("opa", `      opa: { url: "http://`+hole+`", policy_path: mizuchi/allow, timeout_seconds: 1 }`) +
		bucket("fgagrpc", azFGAConfig("grpc", hole, fake)) +
		bucket("fgahttp", azFGAConfig("http", "http://"+hole, fake))
	m := startMizuchi(t, cfg)
	alice := azToken(t, azSecret, "alice")
	for _, b := range []string{"opa", "fgagrpc", "fgahttp"} {
		t.Run(b, func(t *testing.T) {
			start := time.Now()
			azExpect(t, m.URL, "PUT", "/"+b+"/alice/x.bin", http.Header{"Authorization": {"Bearer " + alice}}, 10).
				want(t, "upload with a silent engine", 503, "ServiceUnavailable")
			// The engine timeout is 1-2 s; far more would mean it is not applied.
			if d := time.Since(start); d > 10*time.Second {
				t.Fatalf("the answer took %v", d)
			}
			if files := visibleFiles(t, filepath.Join(m.Dir, b)); len(files) != 0 {
				t.Fatalf("stored: %v", files)
			}
		})
	}
	if got := azMetric(t, m.MetricsURL, "mizuchi_authz_decisions_total", `decision="error"`); got != 3 {
		t.Errorf("decision=error counted %v times, want 3", got)
	}
	if got := azMetric(t, m.MetricsURL, "mizuchi_authz_decisions_total", `decision="allow"`); got != 0 {
		t.Errorf("an allow was counted with a silent engine: %v", got)
	}
}

// TestAuthzMultipartAcrossReplicas runs two replicas with the same
// upload id keys on one storage root and one OPA: a multipart upload
// created on one replica is continued on the other, whose upload id names
// its creator. Another subject is refused on both, and neither replica
// asks the policy for calls on the upload.
func TestAuthzMultipartAcrossReplicas(t *testing.T) {
	t.Parallel()
	opa := opaserver.Start(t, azPolicy(t))
	shared := filepath.Join(t.TempDir(), "files")
	cfg := strings.Replace(azConfig(`      opa:
        url: "`+opa.URL+`"
        policy_path: mizuchi/allow
        cache_ttl_seconds: 300`), "{{DIR}}/files", shared, 1)
	cfg = strings.Replace(cfg, "server:\n", "server:\n  upload_id_keys: [\"replicas-share-this-upload-id-key-0123456789\"]\n", 1)
	a, b := startMizuchi(t, cfg), startMizuchi(t, cfg)
	alice, bob := azToken(t, azSecret, "alice"), azToken(t, azSecret, "bob")

	id := azCreate(t, a, alice, "alice/replicated.bin")
	part := func(m *Mizuchi, token string, n int, data []byte) azResult {
		return azDo(t, "PUT", fmt.Sprintf("%s/files/alice/replicated.bin?partNumber=%d&uploadId=%s", m.URL, n, id), token, data)
	}
	p1, p2 := randomBytes(t, 2048), randomBytes(t, 512)

	calls := opa.Decisions()
	part(b, bob, 1, p1).want(t, "bob's part on the other replica", 403, "AccessDenied")
	r1 := part(b, alice, 1, p1)
	r1.want(t, "alice's part on the other replica", 200, "")
	r2 := part(a, alice, 2, p2)
	r2.want(t, "alice's part on the creating replica", 200, "")
	part(a, bob, 2, p2).want(t, "bob's part on the creating replica", 403, "AccessDenied")
	if got := opa.Decisions() - calls; got != 0 {
		t.Fatalf("calls on the upload made %d policy calls, want none: the upload id says who created it", got)
	}
	doc := azCompleteXML(r1.Header.Get("ETag"), r2.Header.Get("ETag"))
	azDo(t, "POST", b.URL+"/files/alice/replicated.bin?uploadId="+id, bob, doc).want(t, "bob completing on the other replica", 403, "AccessDenied")
	azDo(t, "POST", b.URL+"/files/alice/replicated.bin?uploadId="+id, alice, doc).want(t, "alice completing on the other replica", 200, "")
	assertFile(t, filepath.Join(shared, "alice/replicated.bin"), append(append([]byte{}, p1...), p2...))
}
