package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/redisserver"
	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/versitygw"
)

// Limits: the built binary in front of versitygw, with one bucket per
// limit; alice and bob are two SigV4 credentials (two subjects).

const (
	limStore       = "limits-store"
	limAliceKey    = "AKIALIMITSALICE00001"
	limAliceSecret = "limitsAliceSecret/For+SigV4/00000000001"
	limBobKey      = "AKIALIMITSBOB0000001"
	limBobSecret   = "limitsBobSecret/For+SigV4/0000000000001"
)

// limConfig: %[1]s versitygw endpoint, %[2]s/%[3]s its keys, %[4]s a
// state section.
const limConfig = `server:
  address: 127.0.0.1:{{S3_PORT}}
  upload_id_keys: ["limits-upload-id-key-0123456789abcdef0123"]
metrics:
  address: 127.0.0.1:{{METRICS_PORT}}
logging:
  level: warn
%[4]s
buckets:
  - name: conc
    path_prefix: /conc
    s3: &s3
      bucket: ` + limStore + `
      region: us-east-1
      endpoint: %[1]s
      force_path_style: true
      access_key: %[2]s
      secret_key: %[3]s
    auth: &auth
      enabled: true
      sigv4:
        region: us-east-1
        credentials:
          - { access_key: ` + limAliceKey + `, secret_key: "` + limAliceSecret + `", subject: alice }
          - { access_key: ` + limBobKey + `, secret_key: "` + limBobSecret + `", subject: bob }
    limits: { per_subject: { concurrent_uploads: 2 } }
  - name: rate
    path_prefix: /rate
    s3: *s3
    auth: *auth
    limits: { per_subject: { requests_per_second: 5, burst: 5 } }
  - name: bw
    path_prefix: /bw
    s3: *s3
    auth: *auth
    limits: { per_subject: { bytes_per_second: 10MiB } }
  - name: quota
    path_prefix: /quota
    s3: *s3
    auth: *auth
    limits: { per_subject: { bytes_per_day: 30MiB } }
`

func limStart(t *testing.T) (*Mizuchi, *versitygw.Server) {
	t.Helper()
	vgw := versitygw.Start(t)
	vgw.CreateBucket(t, limStore)
	m := startMizuchi(t, fmt.Sprintf(limConfig, vgw.Endpoint, vgw.AccessKey, vgw.SecretKey, ""))
	return m, vgw
}

// limPut sends a header-signed PutObject with an unsigned payload of
// size bytes read from body, as a streaming client does.
func limPut(ctx context.Context, endpoint, path, ak, sk string, body io.Reader, size int64) (*http.Response, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, endpoint+path, body)
	if err != nil {
		return nil, "", err
	}
	req.ContentLength = size
	if size == 0 {
		req.Body = http.NoBody
	}
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	creds := aws.Credentials{AccessKeyID: ak, SecretAccessKey: sk}
	if err := cliSigner().SignHTTP(ctx, creds, req, "UNSIGNED-PAYLOAD", "s3", "us-east-1", time.Now()); err != nil {
		return nil, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b), nil
}

func limMustPut(t *testing.T, endpoint, path, ak, sk string, body []byte) *http.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	resp, text, err := limPut(ctx, endpoint, path, ak, sk, bytes.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatalf("PUT %s: %v", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT %s: %d %s", path, resp.StatusCode, text)
	}
	return resp
}

// limWantRefusal checks a refusal's status, S3 code and Retry-After.
func limWantRefusal(t *testing.T, what string, resp *http.Response, text string, status int, code string, retryAfter bool) {
	t.Helper()
	if resp.StatusCode != status || !strings.Contains(text, "<Code>"+code+"</Code>") {
		t.Fatalf("%s: got %d %s, want %d %s", what, resp.StatusCode, text, status, code)
	}
	if got := resp.Header.Get("Retry-After"); retryAfter && got == "" {
		t.Fatalf("%s: no Retry-After", what)
	}
}

// waitMetric waits until a metric (summed over lines with labels) is want.
func waitMetric(t *testing.T, metricsURL, name string, want float64, labels ...string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := azMetric(t, metricsURL, name, labels...)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s%v = %v, want %v", name, labels, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// heldUpload is a PutObject whose body the test releases when it wants.
type heldUpload struct {
	w    *io.PipeWriter
	done chan heldResult
	data []byte
}

type heldResult struct {
	status int
	text   string
	err    error
}

// limHold starts a PutObject of size bytes and sends its first KiB.
func limHold(t *testing.T, endpoint, path, ak, sk string, size int) *heldUpload {
	t.Helper()
	pr, pw := io.Pipe()
	h := &heldUpload{w: pw, done: make(chan heldResult, 1), data: randomBytes(t, size)}
	go func() {
		resp, text, err := limPut(context.Background(), endpoint, path, ak, sk, pr, int64(size))
		r := heldResult{text: text, err: err}
		if resp != nil {
			r.status = resp.StatusCode
		}
		_ = pr.CloseWithError(errors.New("request over"))
		h.done <- r
	}()
	go func() { _, _ = pw.Write(h.data[:1024]) }()
	return h
}

// finish sends the rest of the body and returns the answer.
func (h *heldUpload) finish(t *testing.T) heldResult {
	t.Helper()
	go func() {
		_, _ = h.w.Write(h.data[1024:])
		_ = h.w.Close()
	}()
	select {
	case r := <-h.done:
		return r
	case <-time.After(time.Minute):
		t.Fatal("held upload never answered")
	}
	return heldResult{}
}

// TestLimitsConcurrencyPerSubject: with concurrent_uploads 2, alice's
// third simultaneous upload is refused at once (before its body is
// read, nothing stored) while bob's proceeds; a finished upload frees
// its slot.
func TestLimitsConcurrencyPerSubject(t *testing.T) {
	m, vgw := limStart(t)
	a1 := limHold(t, m.URL, "/conc/held-1", limAliceKey, limAliceSecret, 64<<10)
	a2 := limHold(t, m.URL, "/conc/held-2", limAliceKey, limAliceSecret, 64<<10)
	waitMetric(t, m.MetricsURL, "mizuchi_inflight_uploads", 2, `bucket="conc"`)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	// The third body never arrives: the refusal cannot wait for it.
	pr, pw := io.Pipe()
	defer pw.Close()
	resp, text, err := limPut(ctx, m.URL, "/conc/third", limAliceKey, limAliceSecret, pr, 1<<20)
	if err != nil {
		t.Fatalf("third upload: %v", err)
	}
	limWantRefusal(t, "third upload of alice", resp, text, 503, "SlowDown", true)
	t.Logf("third upload refused in %v", time.Since(start))
	if vgw.Head(t, limStore, "third") != nil {
		t.Fatal("the refused upload stored an object")
	}

	limMustPut(t, m.URL, "/conc/bob", limBobKey, limBobSecret, []byte("bob is not alice"))

	for i, h := range []*heldUpload{a1, a2} {
		if r := h.finish(t); r.err != nil || r.status != 200 {
			t.Fatalf("held upload %d: %d %s %v", i+1, r.status, r.text, r.err)
		}
		if got := vgw.Object(t, limStore, fmt.Sprintf("held-%d", i+1)); !bytes.Equal(got, h.data) {
			t.Fatalf("held upload %d stored %d bytes, not what was sent", i+1, len(got))
		}
	}
	// Slots are freed when an upload ends.
	limMustPut(t, m.URL, "/conc/after", limAliceKey, limAliceSecret, []byte("again"))
	if n := azMetric(t, m.MetricsURL, "mizuchi_limit_refusals_total", `bucket="conc"`, `limit="concurrent_uploads"`); n != 1 {
		t.Fatalf("refusals{concurrent_uploads} = %v, want 1", n)
	}
}

// TestLimitsRatePerSubject: with 5 requests/s and a burst of 5, of 20
// back-to-back PUTs by alice all past what the bucket refills are refused
// with Retry-After; bob is unaffected.
func TestLimitsRatePerSubject(t *testing.T) {
	m, vgw := limStart(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ok, refused := 0, 0
	start := time.Now()
	for i := range 20 {
		resp, text, err := limPut(ctx, m.URL, fmt.Sprintf("/rate/alice-%d", i), limAliceKey, limAliceSecret, strings.NewReader("x"), 1)
		if err != nil {
			t.Fatal(err)
		}
		switch resp.StatusCode {
		case 200:
			ok++
		default:
			limWantRefusal(t, fmt.Sprintf("PUT %d", i), resp, text, 503, "SlowDown", true)
			refused++
			if vgw.Head(t, limStore, fmt.Sprintf("alice-%d", i)) != nil {
				t.Fatalf("refused PUT %d stored an object", i)
			}
		}
	}
	elapsed := time.Since(start)
	// The burst plus what 5/s refilled while the loop ran (+1 for the
	// token being refilled when the loop ended).
	allowed := 5 + int(elapsed.Seconds()*5) + 1
	t.Logf("%d accepted, %d refused in %v (at most %d may pass)", ok, refused, elapsed, allowed)
	if ok < 5 || ok > allowed || refused == 0 {
		t.Fatalf("%d accepted, %d refused in %v: want at least the burst of 5 and at most %d accepted", ok, refused, elapsed, allowed)
	}
	for i := range 5 {
		limMustPut(t, m.URL, fmt.Sprintf("/rate/bob-%d", i), limBobKey, limBobSecret, []byte("b"))
	}
	if n := azMetric(t, m.MetricsURL, "mizuchi_limit_refusals_total", `bucket="rate"`, `limit="requests_per_second"`); n != float64(refused) {
		t.Fatalf("refusals{requests_per_second} = %v, want %d", n, refused)
	}
}

// TestLimitsBandwidthPerSubject: at 10 MiB/s a 50 MiB PUT takes about
// 5 s and arrives intact; two subjects uploading at once are each shaped
// to their own 10 MiB/s.
func TestLimitsBandwidthPerSubject(t *testing.T) {
	m, vgw := limStart(t)
	data := randomBytes(t, 50<<20)
	start := time.Now()
	limMustPut(t, m.URL, "/bw/fifty", limAliceKey, limAliceSecret, data)
	if d := time.Since(start); d < 3500*time.Millisecond {
		t.Fatalf("50 MiB at 10 MiB/s took %v, want about 5s", d)
	} else {
		t.Logf("50 MiB at 10 MiB/s took %v", d)
	}
	if got := vgw.Object(t, limStore, "fifty"); !bytes.Equal(got, data) {
		t.Fatalf("stored %d bytes, not what was sent", len(got))
	}

	// Two subjects at once: two shapers of 10 MiB/s each.
	a := limHold(t, m.URL, "/bw/two-alice", limAliceKey, limAliceSecret, 20<<20)
	b := limHold(t, m.URL, "/bw/two-bob", limBobKey, limBobSecret, 20<<20)
	waitMetric(t, m.MetricsURL, "mizuchi_limit_shaped_bytes_per_second", 2*10<<20, `bucket="bw"`)
	start = time.Now()
	var wg sync.WaitGroup
	results := make([]heldResult, 2)
	for i, h := range []*heldUpload{a, b} {
		wg.Go(func() { results[i] = h.finish(t) })
	}
	wg.Wait()
	d := time.Since(start)
	for i, r := range results {
		if r.err != nil || r.status != 200 {
			t.Fatalf("upload %d: %d %s %v", i, r.status, r.text, r.err)
		}
	}
	if d < 1500*time.Millisecond {
		t.Fatalf("two 20 MiB uploads at 10 MiB/s each took %v, want about 2s", d)
	}
	t.Logf("two 20 MiB uploads of two subjects took %v together", d)
	if !bytes.Equal(vgw.Object(t, limStore, "two-alice"), a.data) || !bytes.Equal(vgw.Object(t, limStore, "two-bob"), b.data) {
		t.Fatal("a shaped upload was not stored intact")
	}
	waitMetric(t, m.MetricsURL, "mizuchi_limit_shaped_bytes_per_second", 0, `bucket="bw"`)
}

// TestLimitsDailyQuota: 30 MiB a day per subject, counting multipart
// parts; uploads past it are refused with 403 QuotaExceeded before their
// body is read, and nothing of them is stored.
func TestLimitsDailyQuota(t *testing.T) {
	m, vgw := limStart(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	alice := s3Client(t, m.URL, limAliceKey, limAliceSecret)

	// 20 MiB in two parts.
	up, err := alice.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("quota"), Key: aws.String("multi")})
	if err != nil {
		t.Fatal(err)
	}
	var parts []types.CompletedPart
	for n := int32(1); n <= 2; n++ {
		out, err := alice.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("quota"), Key: aws.String("multi"),
			UploadId: up.UploadId, PartNumber: aws.Int32(n), Body: bytes.NewReader(randomBytes(t, 10<<20))})
		if err != nil {
			t.Fatalf("part %d: %v", n, err)
		}
		parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(n), ETag: out.ETag})
	}
	if _, err := alice.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("quota"), Key: aws.String("multi"),
		UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}); err != nil {
		t.Fatal(err)
	}
	// 28 MiB.
	limMustPut(t, m.URL, "/quota/eight", limAliceKey, limAliceSecret, randomBytes(t, 8<<20))

	// 5 MiB more would be 33 MiB: refused before the body is read.
	pr, pw := io.Pipe()
	defer pw.Close()
	resp, text, err := limPut(ctx, m.URL, "/quota/over", limAliceKey, limAliceSecret, pr, 5<<20)
	if err != nil {
		t.Fatal(err)
	}
	limWantRefusal(t, "PUT past the quota", resp, text, 403, "QuotaExceeded", false)
	if vgw.Head(t, limStore, "over") != nil {
		t.Fatal("the refused PUT stored an object")
	}

	// A part counts as well: refused, and the upload holds no part.
	up2, err := alice.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("quota"), Key: aws.String("multi-over")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = alice.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("quota"), Key: aws.String("multi-over"),
		UploadId: up2.UploadId, PartNumber: aws.Int32(1), Body: bytes.NewReader(randomBytes(t, 5<<20))})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "QuotaExceeded" {
		t.Fatalf("part past the quota: got %v, want QuotaExceeded", err)
	}
	lp, err := alice.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("quota"), Key: aws.String("multi-over"), UploadId: up2.UploadId})
	if err != nil {
		t.Fatal(err)
	}
	if len(lp.Parts) != 0 {
		t.Fatalf("the refused part was stored: %d parts", len(lp.Parts))
	}
	if _, err := alice.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String("quota"), Key: aws.String("multi-over"), UploadId: up2.UploadId}); err != nil {
		t.Fatal(err)
	}

	// The refusals consumed nothing: exactly the 2 MiB left still fit.
	limMustPut(t, m.URL, "/quota/last", limAliceKey, limAliceSecret, randomBytes(t, 2<<20))
	resp, text, err = limPut(ctx, m.URL, "/quota/one-more", limAliceKey, limAliceSecret, strings.NewReader("x"), 1)
	if err != nil {
		t.Fatal(err)
	}
	limWantRefusal(t, "one byte past the quota", resp, text, 403, "QuotaExceeded", false)

	// Bob has his own quota.
	limMustPut(t, m.URL, "/quota/bob", limBobKey, limBobSecret, randomBytes(t, 10<<20))
	if n := azMetric(t, m.MetricsURL, "mizuchi_limit_refusals_total", `bucket="quota"`, `limit="bytes_per_day"`); n != 3 {
		t.Fatalf("refusals{bytes_per_day} = %v, want 3", n)
	}
}

// TestLimitsSharedByReplicas: two replicas with one redis-server share
// the counters: one concurrency limit and one rate limit between them,
// whichever replica a request reaches; with the store down, limited
// requests are refused (fail closed).
func TestLimitsSharedByReplicas(t *testing.T) {
	vgw := versitygw.Start(t)
	vgw.CreateBucket(t, limStore)
	redis := redisserver.Start(t, soRedisPass)
	state := "state:\n  backend: redis\n  redis:\n    address: " + redis.Addr + "\n    password: \"" + soRedisPass + "\"\n    key_prefix: \"lim:\"\n    timeout_seconds: 1\n"
	cfg := fmt.Sprintf(limConfig, vgw.Endpoint, vgw.AccessKey, vgw.SecretKey, state)
	r1, r2 := startMizuchi(t, cfg), startMizuchi(t, cfg)
	soWaitReady(t, r1)
	soWaitReady(t, r2)

	// One upload of alice on each replica: her third, on either, is refused.
	h1 := limHold(t, r1.URL, "/conc/on-one", limAliceKey, limAliceSecret, 64<<10)
	h2 := limHold(t, r2.URL, "/conc/on-two", limAliceKey, limAliceSecret, 64<<10)
	waitMetric(t, r1.MetricsURL, "mizuchi_inflight_uploads", 1, `bucket="conc"`)
	waitMetric(t, r2.MetricsURL, "mizuchi_inflight_uploads", 1, `bucket="conc"`)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, r := range []*Mizuchi{r1, r2} {
		resp, text, err := limPut(ctx, r.URL, "/conc/third", limAliceKey, limAliceSecret, strings.NewReader("x"), 1)
		if err != nil {
			t.Fatal(err)
		}
		limWantRefusal(t, "third upload on "+r.URL, resp, text, 503, "SlowDown", true)
	}
	limMustPut(t, r1.URL, "/conc/bob", limBobKey, limBobSecret, []byte("bob"))
	for _, h := range []*heldUpload{h1, h2} {
		if r := h.finish(t); r.err != nil || r.status != 200 {
			t.Fatalf("held upload: %d %s %v", r.status, r.text, r.err)
		}
	}
	limMustPut(t, r2.URL, "/conc/after", limAliceKey, limAliceSecret, []byte("again"))

	// 20 back-to-back PUTs alternating between the replicas: one bucket
	// of 5 tokens for both, not 5 each.
	ok := 0
	start := time.Now()
	for i := range 20 {
		r := []*Mizuchi{r1, r2}[i%2]
		resp, text, err := limPut(ctx, r.URL, fmt.Sprintf("/rate/shared-%d", i), limAliceKey, limAliceSecret, strings.NewReader("x"), 1)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == 200 {
			ok++
			continue
		}
		limWantRefusal(t, fmt.Sprintf("PUT %d", i), resp, text, 503, "SlowDown", true)
	}
	elapsed := time.Since(start)
	allowed := 5 + int(elapsed.Seconds()*5) + 1
	t.Logf("%d of 20 accepted by two replicas in %v (at most %d may pass)", ok, elapsed, allowed)
	if ok < 5 || ok > allowed {
		t.Fatalf("%d accepted in %v: want between 5 and %d", ok, elapsed, allowed)
	}

	// The store is down: limited requests fail closed.
	redis.Stop()
	resp, text, err := limPut(ctx, r1.URL, "/rate/store-down", limBobKey, limBobSecret, strings.NewReader("x"), 1)
	if err != nil {
		t.Fatal(err)
	}
	limWantRefusal(t, "PUT with the store down", resp, text, 503, "SlowDown", true)
	if vgw.Head(t, limStore, "store-down") != nil {
		t.Fatal("a request refused with the store down stored an object")
	}
	if n := azMetric(t, r1.MetricsURL, "mizuchi_limit_refusals_total", `bucket="rate"`, `limit="unavailable"`); n != 1 {
		t.Fatalf("refusals{unavailable} = %v, want 1", n)
	}
}

// limPolicy lowers alice's burst to 2 (and her refill to nearly none);
// bob gets a plain true and keeps the bucket's limits.
const limPolicy = `package mizuchi

default allow := true

allow := {"allow": true, "limits": {"requests_per_second": 0.001, "burst": 2}} if input.subject == "alice"
`

// TestLimitsSetByPolicy: an OPA decision with limits overrides the
// bucket's per-subject limits for that subject; a plain true keeps them.
func TestLimitsSetByPolicy(t *testing.T) {
	vgw := versitygw.Start(t)
	vgw.CreateBucket(t, limStore)
	policy := filepath.Join(t.TempDir(), "limits.rego")
	if err := os.WriteFile(policy, []byte(limPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(limConfig, vgw.Endpoint, vgw.AccessKey, vgw.SecretKey, "") + `  - name: policed
    path_prefix: /policed
    s3: *s3
    auth: *auth
    authz: { enabled: true, opa: { policy_file: "` + policy + `" } }
    limits: { per_subject: { requests_per_second: 0.01, burst: 5 } }
`
	m := startMizuchi(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	put := func(path, ak, sk string) (*http.Response, string) {
		resp, text, err := limPut(ctx, m.URL, path, ak, sk, strings.NewReader("x"), 1)
		if err != nil {
			t.Fatal(err)
		}
		return resp, text
	}
	for i := range 2 {
		if resp, text := put(fmt.Sprintf("/policed/alice-%d", i), limAliceKey, limAliceSecret); resp.StatusCode != 200 {
			t.Fatalf("alice PUT %d: %d %s", i, resp.StatusCode, text)
		}
	}
	resp, text := put("/policed/alice-2", limAliceKey, limAliceSecret)
	limWantRefusal(t, "alice's third PUT (policy burst 2)", resp, text, 503, "SlowDown", true)
	// Bob keeps the bucket's burst of 5 (and its refill of 1 per 100 s).
	for i := range 5 {
		if resp, text := put(fmt.Sprintf("/policed/bob-%d", i), limBobKey, limBobSecret); resp.StatusCode != 200 {
			t.Fatalf("bob PUT %d: %d %s", i, resp.StatusCode, text)
		}
	}
	resp, text = put("/policed/bob-5", limBobKey, limBobSecret)
	limWantRefusal(t, "bob's sixth PUT (bucket burst 5)", resp, text, 503, "SlowDown", true)
}
