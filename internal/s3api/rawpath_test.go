package s3api

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/mizuchi-uploadr/mizuchi/internal/auth"
	"github.com/mizuchi-uploadr/mizuchi/internal/auth/sigv4"
	"github.com/mizuchi-uploadr/mizuchi/internal/backend/fs"
	"github.com/mizuchi-uploadr/mizuchi/internal/config"
)

// rawFixture serves nested buckets /uploads, /nest and /nest/inner, each
// a filesystem backend behind SigV4, on a real listener, so that requests
// are parsed by net/http exactly as in production.
type rawFixture struct {
	srv   *httptest.Server
	addr  string
	roots map[string]string // bucket name → root
}

// rawBuckets are the prefixes of rawFixture, by bucket name.
var rawBuckets = map[string][]string{
	"uploads": {"uploads"},
	"nest":    {"nest"},
	"inner":   {"nest", "inner"},
}

func newRawFixture(t testing.TB) *rawFixture {
	t.Helper()
	f := &rawFixture{roots: map[string]string{}}
	var buckets []*Bucket
	for name, segs := range rawBuckets {
		root := filepath.Join(t.TempDir(), name)
		store, err := fs.New(fs.Options{Root: root, MinPartSize: 1})
		if err != nil {
			t.Fatal(err)
		}
		a, err := sigv4.New(config.SigV4{Region: "us-east-1", Credentials: []config.Credential{
			{AccessKey: "AKIDRAW", SecretKey: "raw-secret", Subject: "alice"},
		}}, sigv4.Options{})
		if err != nil {
			t.Fatal(err)
		}
		f.roots[name] = root
		buckets = append(buckets, &Bucket{
			Name: name, Prefix: "/" + strings.Join(segs, "/"), Backend: store, Region: "us-east-1",
			Auth: auth.NewChain(auth.ChainOptions{Bucket: name, Methods: []auth.Authenticator{a}}),
		})
	}
	f.srv = httptest.NewServer(NewHandler(Options{Buckets: buckets}))
	t.Cleanup(f.srv.Close)
	f.addr = strings.TrimPrefix(f.srv.URL, "http://")
	return f
}

// rawModel is what a raw request path must mean, derived from its
// literal segments alone (independently of the code under test): the
// bucket whose prefix segments equal the first decoded segments (longest
// wins), the key as the remaining segments decoded and joined by "/", and
// the canonical URI that S3 signs (each segment decoded and encoded once).
type rawModel struct {
	bucket    string // "" when no bucket matches
	key       string
	canonical string
}

func modelOf(rawPath string) rawModel {
	segs := strings.Split(strings.TrimPrefix(rawPath, "/"), "/")
	dec := make([]string, len(segs))
	enc := make([]string, len(segs))
	for i, s := range segs {
		d, err := url.PathUnescape(s)
		if err != nil {
			d = s
		}
		dec[i] = d
		var b strings.Builder
		for j := 0; j < len(d); j++ {
			c := d[j]
			if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
				b.WriteByte(c)
			} else {
				fmt.Fprintf(&b, "%%%02X", c)
			}
		}
		enc[i] = b.String()
	}
	m := rawModel{canonical: "/" + strings.Join(enc, "/")}
	best := 0
	for name, prefix := range rawBuckets {
		if len(prefix) <= best || len(prefix) > len(dec) {
			continue
		}
		match := true
		for i, p := range prefix {
			match = match && dec[i] == p
		}
		if match {
			m.bucket, best = name, len(prefix)
		}
	}
	if m.bucket != "" {
		m.key = strings.Join(dec[best:], "/")
	}
	return m
}

// send signs a PUT for the model's canonical URI and sends it with
// rawTarget as the request-target, byte for byte.
func (f *rawFixture) send(t testing.TB, rawTarget, canonical string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, "http://"+f.addr+"/", strings.NewReader("data"))
	if err != nil {
		t.Fatal(err)
	}
	dec, err := url.PathUnescape(canonical)
	if err != nil {
		t.Fatal(err)
	}
	req.URL.Path, req.URL.RawPath = dec, canonical
	if req.URL.EscapedPath() != canonical {
		t.Fatalf("signing %q: EscapedPath %q", canonical, req.URL.EscapedPath())
	}
	const hash = "3a6eb0790f39ac87c94f3856b2dd2c5d110e6811602261a9a923d3bb23adc8b7" // sha256("data")
	req.Header.Set("X-Amz-Content-Sha256", hash)
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	if err := signer.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "AKIDRAW", SecretAccessKey: "raw-secret"}, req, hash, "s3", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "PUT %s HTTP/1.1\r\nHost: %s\r\nContent-Length: 4\r\nConnection: close\r\n", rawTarget, f.addr)
	for k, vs := range req.Header {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString("\r\ndata")
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, b.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("PUT %q: %v", rawTarget, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	code := ""
	if _, rest, ok := strings.Cut(string(body), "<Code>"); ok {
		code, _, _ = strings.Cut(rest, "</Code>")
	}
	return resp.StatusCode, code
}

// checkRawPath sends a PUT to rawPath + "/" + unique and checks that the
// bucket chosen, the key stored and the path verified all come from the
// same literal segments: %2F is never a separator, whatever else the
// path holds and however net/url re-escapes it.
//
// It returns what happened: "<bucket> <status>", or "" when net/http
// refuses the target before Mizuchi sees it.
func (f *rawFixture) checkRawPath(t testing.TB, rawPath, unique string) string {
	t.Helper()
	target := rawPath + "/" + unique
	if _, err := http.ReadRequest(bufio.NewReader(strings.NewReader("PUT " + target + " HTTP/1.1\r\nHost: x\r\n\r\n"))); err != nil {
		return "" // net/http refuses it with 400 before Mizuchi sees it
	}
	m := modelOf(target)
	status, code := f.send(t, target, m.canonical)
	switch {
	case m.bucket == "":
		if status != 404 || code != "NoSuchBucket" {
			t.Fatalf("PUT %q: %d %s, want 404 NoSuchBucket (segments name no bucket)", target, status, code)
		}
	case ValidateKey(m.key) != nil:
		if status != 400 {
			t.Fatalf("PUT %q: %d %s, want 400 for the key %q", target, status, code, m.key)
		}
	case status == 200:
		p := filepath.Join(f.roots[m.bucket], filepath.FromSlash(m.key))
		if b, err := os.ReadFile(p); err != nil || string(b) != "data" {
			t.Fatalf("PUT %q: 200 but bucket %s has no key %q: %v", target, m.bucket, m.key, err)
		}
	default:
		// The backend may refuse a key it cannot store (a name too long
		// for a directory entry): that is not a routing or signing matter.
		if status != 400 && status != 409 || code == "SignatureDoesNotMatch" || code == "NoSuchBucket" {
			t.Fatalf("PUT %q: %d %s, want 200 into bucket %s, key %q", target, status, code, m.bucket, m.key)
		}
	}
	for name, root := range f.roots {
		if name == m.bucket && status == 200 {
			continue
		}
		if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(m.key))); m.key != "" && err == nil {
			t.Fatalf("PUT %q: bucket %s holds key %q", target, name, m.key)
		}
	}
	return fmt.Sprintf("%s %d", m.bucket, status)
}

// TestRawPathsRouteAndSignFromTheSameSegments covers the reported paths
// and random paths built from separators, encoded separators, characters
// net/url re-escapes and bucket names.
func TestRawPathsRouteAndSignFromTheSameSegments(t *testing.T) {
	f := newRawFixture(t)
	for i, p := range []string{
		"/uploads%2Falice/k|",
		"/nest/inner%2Falice/f{",
		"/nest%2Finner/alice/f{",
		"/nest/inner%2falice/x\"y",
		"/nest/inner/alice/f{",
		"/uploads/alice%2Fk|",
		"/uploads/k%7C",
		"/uploads/k|",
		"/nest/inn%65r/a^b",
		"/nest/inner%2F/q`",
		"/uploads/%C3%BC/ü|",
	} {
		f.checkRawPath(t, p, fmt.Sprintf("case%d", i))
	}
	tokens := []string{
		"uploads", "nest", "inner", "alice", "k", "%2F", "%2f", "|", "{", "}", "\"", "^", "`", "%7C", "%7c",
		"%41", "ü", "%C3%BC", "-", ".", "%2E", "+", "%20", "~", "!", "$", "&", "'", "(", ")", "*", ",", ";",
		"=", ":", "@", "[", "]", "%25", "%5C", "\\", "<", ">",
	}
	rng := rand.New(rand.NewPCG(10, 5))
	seen := map[string]int{}
	for i := range 400 {
		var b strings.Builder
		// Mostly under a bucket (or a spelling of one), to reach every
		// outcome; then random segments.
		starts := []string{"/uploads", "/nest", "/nest/inner", "/nest%2Finner", "/uploads%2F", "/upl%6Fads", "/nest/inn%65r", ""}
		b.WriteString(starts[rng.IntN(len(starts))])
		for range rng.IntN(4) {
			b.WriteByte('/')
			for range 1 + rng.IntN(4) {
				b.WriteString(tokens[rng.IntN(len(tokens))])
			}
		}
		seen[f.checkRawPath(t, b.String(), fmt.Sprintf("r%d", i))]++
	}
	t.Logf("outcomes: %v", seen)
	// The random paths must exercise every outcome, or they prove little.
	for _, want := range []string{" 404", "uploads 200", "nest 200", "inner 200", "uploads 400"} {
		if seen[want] < 5 {
			t.Errorf("only %d random paths ended as %q", seen[want], want)
		}
	}
}

// FuzzRawPath checks the same property for arbitrary raw paths.
func FuzzRawPath(f *testing.F) {
	for _, s := range []string{"/uploads%2Falice/k|", "/nest/inner%2Falice/f{", "/nest/inner/x", "/uploads/a%2Fb\"c"} {
		f.Add(s)
	}
	fx := newRawFixture(f)
	n := 0
	f.Fuzz(func(t *testing.T, raw string) {
		if !strings.HasPrefix(raw, "/") || len(raw) > 200 || strings.ContainsAny(raw, "?#") {
			return
		}
		n++
		fx.checkRawPath(t, raw, fmt.Sprintf("f%d", n))
	})
}
