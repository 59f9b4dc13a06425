package s3api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
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

// replayCapacity is the replay set of the signed fixture: small, so that
// the requests that must not count would fill it many times over.
const replayCapacity = 40

// signedFixture is a bucket /b with SigV4 replay protection in front of a
// filesystem backend, keys "<name>" with secret "secret-<name>".
type signedFixture struct {
	srv  *httptest.Server
	root string
}

func newSignedFixture(t *testing.T, names ...string) *signedFixture {
	t.Helper()
	root := t.TempDir()
	store, err := fs.New(fs.Options{Root: root, MinPartSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.SigV4{Region: "us-east-1", ReplayProtection: true, ReplayMaxEntries: replayCapacity}
	for _, n := range names {
		cfg.Credentials = append(cfg.Credentials, config.Credential{AccessKey: n, SecretKey: "secret-" + n, Subject: n})
	}
	v4a, err := sigv4.New(cfg, sigv4.Options{})
	if err != nil {
		t.Fatal(err)
	}
	chain := auth.NewChain(auth.ChainOptions{Bucket: "b", Methods: []auth.Authenticator{v4a}})
	h := NewHandler(Options{Buckets: []*Bucket{{
		Name: "b", Prefix: "/b", Backend: store, Auth: chain, Region: "us-east-1",
		Upload: config.Upload{MaxObjectSize: 16},
	}}})
	f := &signedFixture{srv: httptest.NewServer(h), root: root}
	t.Cleanup(f.srv.Close)
	return f
}

// signed is a request signed by key, ready to be sent (and sent again).
type signed struct {
	method, target string
	header         http.Header
	body           string
}

func (f *signedFixture) sign(t *testing.T, key, method, target, body string, extra http.Header) *signed {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(body))
	hash := hex.EncodeToString(sum[:])
	req.Header.Set("X-Amz-Content-Sha256", hash)
	for k, vs := range extra {
		req.Header[k] = vs
	}
	creds := aws.Credentials{AccessKeyID: key, SecretAccessKey: "secret-" + key}
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	if err := signer.SignHTTP(context.Background(), creds, req, hash, "s3", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	return &signed{method: method, target: target, header: req.Header, body: body}
}

// send returns the status, the S3 error code and the Retry-After header.
func (f *signedFixture) send(t *testing.T, s *signed) (status int, code, retryAfter string) {
	t.Helper()
	req, err := http.NewRequest(s.method, f.srv.URL+s.target, strings.NewReader(s.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = s.header.Clone()
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 && len(b) > 0 {
		code = errorCode(t, string(b))
	}
	return resp.StatusCode, code, resp.Header.Get("Retry-After")
}

func (f *signedFixture) put(t *testing.T, key, objectKey string) (int, string, string) {
	t.Helper()
	return f.send(t, f.sign(t, key, http.MethodPut, "/b/"+objectKey, "data", nil))
}

// TestReplayEntriesAreSpentOnlyByWrites: requests that write nothing
// (bucket probes, ListParts, refused uploads) fill no replay entry, so
// a flood of them locks nobody out.
func TestReplayEntriesAreSpentOnlyByWrites(t *testing.T) {
	f := newSignedFixture(t, "carol", "alice")
	n := 0
	seq := func() http.Header { n++; return http.Header{"X-Seq": {fmt.Sprint(n)}} }
	for range 2 * replayCapacity {
		if st, code, _ := f.send(t, f.sign(t, "carol", http.MethodHead, "/b", "", seq())); st != 200 {
			t.Fatalf("HeadBucket: %d %s", st, code)
		}
		if st, code, _ := f.send(t, f.sign(t, "carol", http.MethodGet, "/b?location", "", seq())); st != 200 {
			t.Fatalf("GetBucketLocation: %d %s", st, code)
		}
		if st, code, _ := f.send(t, f.sign(t, "carol", http.MethodGet, "/b/carol/k?uploadId=nope", "", seq())); st != 404 {
			t.Fatalf("ListParts of an unknown upload: %d %s", st, code)
		}
		if st, code, _ := f.send(t, f.sign(t, "carol", http.MethodPut, "/b/carol/big", strings.Repeat("x", 32), seq())); code != "EntityTooLarge" {
			t.Fatalf("PUT over max_object_size: %d %s", st, code)
		}
	}
	for _, who := range []string{"alice", "carol"} {
		if st, code, _ := f.put(t, who, who+"/after-the-flood"); st != 200 {
			t.Fatalf("%s's PUT after a flood of requests that write nothing: %d %s", who, st, code)
		}
	}
}

// TestReplayCapacityIsSharedFairly: a key that fills the replay set is
// refused with SlowDown and Retry-After; the other keys are not, and a
// replay is still refused whoever sends it.
func TestReplayCapacityIsSharedFairly(t *testing.T) {
	f := newSignedFixture(t, "carol", "alice", "bob")
	first := f.sign(t, "carol", http.MethodPut, "/b/carol/0", "data", nil)
	if st, code, _ := f.send(t, first); st != 200 {
		t.Fatalf("carol's first PUT: %d %s", st, code)
	}
	refused := false
	for i := 1; i <= 2*replayCapacity; i++ {
		st, code, retry := f.put(t, "carol", fmt.Sprintf("carol/%d", i))
		if st == 200 {
			continue
		}
		if st != 503 || code != "SlowDown" || retry == "" {
			t.Fatalf("carol's PUT %d: %d %s, Retry-After %q; want 503 SlowDown with Retry-After", i, st, code, retry)
		}
		refused = true
		break
	}
	if !refused {
		t.Fatalf("carol wrote %d signed PUTs into a replay set of %d", 2*replayCapacity+1, replayCapacity)
	}
	for i := range replayCapacity / 3 {
		for _, who := range []string{"alice", "bob"} {
			if st, code, _ := f.put(t, who, fmt.Sprintf("%s/%d", who, i)); st != 200 {
				t.Fatalf("%s's PUT %d after carol filled the replay set: %d %s", who, i, st, code)
			}
		}
	}
	if st, code, _ := f.send(t, first); st == 200 {
		t.Fatalf("carol's first PUT replayed: %d %s", st, code)
	}
	a := f.sign(t, "alice", http.MethodPut, "/b/alice/once", "data", nil)
	if st, code, _ := f.send(t, a); st != 200 {
		t.Fatalf("alice: %d %s", st, code)
	}
	if st, code, _ := f.send(t, a); st != 403 || code != "AccessDenied" {
		t.Fatalf("alice's PUT replayed: %d %s, want 403 AccessDenied", st, code)
	}
}
