package e2e

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/natsserver"
	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/testproc"
)

const evSecret = "webhook-secret-for-the-events-test"

// evHook is a real HTTP receiver on a fixed loopback port that can be
// taken down and brought back on the same port.
type evHook struct {
	t    *testing.T
	addr string

	mu     sync.Mutex
	srv    *http.Server
	events []evReceived
}

// evReceived is one POST as received, with its signature checked.
type evReceived struct {
	Header   http.Header
	Body     []byte
	SigValid bool
	Doc      evDocument
}

// evDocument is the part of the S3 event document the tests read.
type evDocument struct {
	Records []struct {
		EventVersion string `json:"eventVersion"`
		EventSource  string `json:"eventSource"`
		EventTime    string `json:"eventTime"`
		EventName    string `json:"eventName"`
		EventID      string `json:"eventId"`
		UserIdentity struct {
			PrincipalID string `json:"principalId"`
		} `json:"userIdentity"`
		RequestParameters struct {
			SourceIPAddress string `json:"sourceIPAddress"`
		} `json:"requestParameters"`
		ResponseElements map[string]string `json:"responseElements"`
		S3               struct {
			Bucket struct {
				Name string `json:"name"`
			} `json:"bucket"`
			Object struct {
				Key       string `json:"key"`
				Size      int64  `json:"size"`
				ETag      string `json:"eTag"`
				Sequencer string `json:"sequencer"`
				Checksum  *struct {
					Algorithm string `json:"algorithm"`
					Value     string `json:"value"`
				} `json:"checksum"`
			} `json:"object"`
		} `json:"s3"`
		Traceparent string `json:"traceparent"`
	} `json:"Records"`
}

func startHook(t *testing.T) *evHook {
	h := &evHook{t: t, addr: fmt.Sprintf("127.0.0.1:%d", testproc.FreePort(t))}
	h.up()
	t.Cleanup(h.down)
	return h
}

func (h *evHook) url() string { return "http://" + h.addr + "/hook" }

// up starts listening (again) on the receiver's port.
func (h *evHook) up() {
	h.t.Helper()
	var ln net.Listener
	var err error
	for range 50 { // the port may linger briefly after down
		if ln, err = net.Listen("tcp", h.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		h.t.Fatalf("receiver listen: %v", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(h.serve), ReadHeaderTimeout: 5 * time.Second}
	h.mu.Lock()
	h.srv = srv
	h.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// down closes the listener and every connection: the receiver is gone.
func (h *evHook) down() {
	h.mu.Lock()
	srv := h.srv
	h.srv = nil
	h.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

func (h *evHook) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil || r.Method != http.MethodPost || r.URL.Path != "/hook" {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	// The check a receiver does (docs/EVENTS.md).
	mac := hmac.New(sha256.New, []byte(evSecret))
	mac.Write(body)
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	ev := evReceived{Header: r.Header.Clone(), Body: body,
		SigValid: hmac.Equal([]byte(want), []byte(r.Header.Get("X-Mizuchi-Signature")))}
	if err := json.Unmarshal(body, &ev.Doc); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	h.events = append(h.events, ev)
	h.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (h *evHook) received() []evReceived {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]evReceived(nil), h.events...)
}

// waitKeys waits until an event for each key arrived; it returns every
// event received.
func (h *evHook) waitKeys(t *testing.T, timeout time.Duration, keys ...string) []evReceived {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := h.received()
		missing := evMissing(got, keys)
		if len(missing) == 0 {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v no event for %q (received %d events)", timeout, missing, len(got))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func evMissing(got []evReceived, keys []string) []string {
	seen := map[string]bool{}
	for _, e := range got {
		for _, r := range e.Doc.Records {
			seen[r.S3.Object.Key] = true
		}
	}
	var missing []string
	for _, k := range keys {
		if !seen[evEncode(k)] {
			missing = append(missing, k)
		}
	}
	return missing
}

// evEncode is S3's encoding of a key in event documents.
func evEncode(k string) string { return strings.ReplaceAll(url.QueryEscape(k), "%2F", "/") }

func evPolicy(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "policy.rego")
	rego := "package mizuchi\n\ndefault allow := false\n\nallow if not startswith(input.resource.key, \"denied/\")\n"
	if err := os.WriteFile(p, []byte(rego), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func evConfig(t *testing.T, events, sinks string) string {
	return `server:
  address: "127.0.0.1:{{S3_PORT}}"
  shutdown_grace_seconds: 2
metrics:
  address: "127.0.0.1:{{METRICS_PORT}}"
logging:
  level: debug
events:
  outbox_dir: "{{DIR}}/outbox"
` + events + `
buckets:
  - name: files
    path_prefix: /files
    filesystem: { root: "{{DIR}}/files" }
    auth:
      enabled: true
      sigv4:
        credentials:
          - access_key: ` + cliAccessKey + `
            secret_key: "` + cliSecretKey + `"
            subject: ` + cliSubject + `
    authz:
      enabled: true
      opa:
        policy_file: "` + evPolicy(t) + `"
    upload:
      min_part_size: 1024
    events:
` + sinks
}

func evWebhook(h *evHook) string {
	return `      - type: webhook
        url: "` + h.url() + `"
        secret: "` + evSecret + `"
        timeout_seconds: 2
`
}

func evCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// evMultipart uploads key in two parts and completes it.
func evMultipart(t *testing.T, c *s3.Client, key string, data []byte) *s3.CompleteMultipartUploadOutput {
	t.Helper()
	ctx := evCtx(t)
	cr, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("files"), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	half := len(data) / 2
	var parts []types.CompletedPart
	for i, chunk := range [][]byte{data[:half], data[half:]} {
		up, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("files"), Key: aws.String(key),
			UploadId: cr.UploadId, PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(chunk)})
		if err != nil {
			t.Fatalf("part %d: %v", i+1, err)
		}
		parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: up.ETag,
			ChecksumCRC32: up.ChecksumCRC32})
	}
	out, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("files"), Key: aws.String(key),
		UploadId: cr.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
	if err != nil {
		t.Fatalf("complete: %v", err)
	}
	return out
}

// TestEventsOnePerStoredObject: a PutObject and a multipart upload each
// give exactly one signed event at the webhook and one JetStream message;
// refused, failed, cut and aborted uploads and parts give none.
func TestEventsOnePerStoredObject(t *testing.T) {
	t.Parallel()
	hook := startHook(t)
	ns := natsserver.Start(t)
	ns.CreateStream(t, "UPLOADS", "uploads.>")
	m := startMizuchi(t, evConfig(t, "", evWebhook(hook)+`      - type: nats
        url: "`+ns.URL+`"
        subject: "uploads.{bucket}"
        jetstream: true
`))
	c := s3Client(t, m.URL, cliAccessKey, cliSecretKey)
	ctx := evCtx(t)

	// Failures first: none of them may produce an event.
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("files"), Key: aws.String("denied/x.txt"),
		Body: strings.NewReader("no")}); err == nil {
		t.Fatal("upload to denied/ succeeded")
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("files"), Key: aws.String("bad-checksum.txt"),
		Body: strings.NewReader("some bytes"), ChecksumCRC32: aws.String("AAAAAA==")}); err == nil {
		t.Fatal("upload with a wrong checksum succeeded")
	}
	evCutUpload(t, m, "cut.bin")
	cr, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("files"), Key: aws.String("aborted.bin")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("files"), Key: aws.String("aborted.bin"),
		UploadId: cr.UploadId, PartNumber: aws.Int32(1), Body: bytes.NewReader(make([]byte, 2048))}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String("files"), Key: aws.String("aborted.bin"),
		UploadId: cr.UploadId}); err != nil {
		t.Fatal(err)
	}

	putKey := "photos/red flower+1.jpg"
	putData := []byte("a small photo")
	put, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("files"), Key: aws.String(putKey),
		Body: bytes.NewReader(putData), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32})
	if err != nil {
		t.Fatalf("put: %v", err)
	}
	mpKey := "videos/clip.bin"
	mpData := bytes.Repeat([]byte("0123456789abcdef"), 256) // 4 KiB: two parts of 2 KiB
	mp := evMultipart(t, c, mpKey, mpData)

	hook.waitKeys(t, 20*time.Second, putKey, mpKey)
	// Give a duplicate or a stray event the time to show up.
	time.Sleep(1500 * time.Millisecond)
	got := hook.received()
	if len(got) != 2 {
		for _, e := range got {
			t.Logf("event: %s", e.Body)
		}
		t.Fatalf("webhook received %d events, want 2", len(got))
	}
	ids := map[string]string{}
	for _, e := range got {
		if !e.SigValid {
			t.Errorf("invalid signature %q on %s", e.Header.Get("X-Mizuchi-Signature"), e.Body)
		}
		if ct := e.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
		if len(e.Doc.Records) != 1 {
			t.Fatalf("want one record: %s", e.Body)
		}
		r := e.Doc.Records[0]
		if r.EventVersion == "" || r.EventSource != "mizuchi:s3" || r.UserIdentity.PrincipalID != cliSubject ||
			r.RequestParameters.SourceIPAddress != "127.0.0.1" || r.S3.Bucket.Name != "files" ||
			r.ResponseElements["x-amz-request-id"] == "" || r.S3.Object.Sequencer == "" || r.EventID == "" {
			t.Errorf("record lacks fields: %s", e.Body)
		}
		if _, err := time.Parse(time.RFC3339, r.EventTime); err != nil {
			t.Errorf("eventTime %q: %v", r.EventTime, err)
		}
		if e.Header.Get("X-Mizuchi-Event-Id") != r.EventID {
			t.Errorf("X-Mizuchi-Event-Id %q, record %q", e.Header.Get("X-Mizuchi-Event-Id"), r.EventID)
		}
		ids[r.S3.Object.Key] = r.EventID
		switch r.S3.Object.Key {
		case evEncode(putKey):
			if r.S3.Object.Key != "photos/red+flower%2B1.jpg" {
				t.Errorf("key encoded as %q", r.S3.Object.Key)
			}
			if r.EventName != "ObjectCreated:Put" || r.S3.Object.Size != int64(len(putData)) ||
				`"`+r.S3.Object.ETag+`"` != aws.ToString(put.ETag) {
				t.Errorf("put record: %s (ETag %s)", e.Body, aws.ToString(put.ETag))
			}
			if r.S3.Object.Checksum == nil || r.S3.Object.Checksum.Algorithm != "CRC32" ||
				r.S3.Object.Checksum.Value != aws.ToString(put.ChecksumCRC32) {
				t.Errorf("put checksum: %s (want CRC32 %s)", e.Body, aws.ToString(put.ChecksumCRC32))
			}
		case mpKey:
			if r.EventName != "ObjectCreated:CompleteMultipartUpload" || r.S3.Object.Size != int64(len(mpData)) ||
				`"`+r.S3.Object.ETag+`"` != aws.ToString(mp.ETag) {
				t.Errorf("multipart record: %s (ETag %s)", e.Body, aws.ToString(mp.ETag))
			}
		}
	}
	if ids[evEncode(putKey)] == ids[mpKey] {
		t.Errorf("two events share the id %s", ids[mpKey])
	}

	// JetStream: one message per object, de-duplication id = event id.
	var msgs int
	for deadline := time.Now().Add(15 * time.Second); ; {
		if msgs = len(ns.Messages(t, "UPLOADS")); msgs >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	all := ns.Messages(t, "UPLOADS")
	if len(all) != 2 {
		t.Fatalf("stream holds %d messages, want 2", len(all))
	}
	for _, msg := range all {
		var doc evDocument
		if err := json.Unmarshal(msg.Data, &doc); err != nil || len(doc.Records) != 1 {
			t.Fatalf("message %s: %v", msg.Data, err)
		}
		r := doc.Records[0]
		if msg.Subject != "uploads.files" {
			t.Errorf("subject %q", msg.Subject)
		}
		if want := ids[r.S3.Object.Key]; want == "" || msg.Header.Get("Nats-Msg-Id") != want || r.EventID != want {
			t.Errorf("message for %s: Nats-Msg-Id %q, eventId %q, webhook id %q", r.S3.Object.Key,
				msg.Header.Get("Nats-Msg-Id"), r.EventID, want)
		}
	}
	if v := azMetric(t, m.MetricsURL, "mizuchi_events_total", `sink="webhook.0"`, `result="delivered"`); v != 2 {
		t.Errorf("webhook delivered = %v, want 2", v)
	}
	if v := azMetric(t, m.MetricsURL, "mizuchi_events_total", `sink="nats.1"`, `result="delivered"`); v != 2 {
		t.Errorf("nats delivered = %v, want 2", v)
	}
	if v := azMetric(t, m.MetricsURL, "mizuchi_events_pending"); v != 0 {
		t.Errorf("pending = %v, want 0", v)
	}
}

// evCutUpload sends half of a presigned PUT's body and hangs up.
func evCutUpload(t *testing.T, m *Mizuchi, key string) {
	t.Helper()
	u, err := url.Parse(cliPresignedPut(t, m.URL+"/files/"+key, time.Now(), time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	before := azMetric(t, m.MetricsURL, "mizuchi_uploads_total", `operation="PutObject"`)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "PUT %s HTTP/1.1\r\nHost: %s\r\nContent-Length: 100000\r\n\r\n", u.RequestURI(), u.Host)
	_, _ = conn.Write(make([]byte, 5000))
	time.Sleep(200 * time.Millisecond)
	_ = conn.Close()
	// Wait until the server gave the upload up.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if azMetric(t, m.MetricsURL, "mizuchi_uploads_total", `operation="PutObject"`) > before {
			return
		}
	}
	t.Fatal("the cut upload was never accounted")
}

// TestEventsSurviveOutageAndSIGKILL: events recorded while the receiver is
// down arrive when it is back, also after Mizuchi was killed with SIGKILL.
func TestEventsSurviveOutageAndSIGKILL(t *testing.T) {
	t.Parallel()
	hook := startHook(t)
	hook.down()
	cfg := evConfig(t, "  max_retry_interval_seconds: 1\n  hash_subjects: true\n", evWebhook(hook))
	m := startMizuchi(t, cfg)
	c := s3Client(t, m.URL, cliAccessKey, cliSecretKey)
	ctx := evCtx(t)
	put := func(key string) {
		t.Helper()
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("files"), Key: aws.String(key),
			Body: strings.NewReader("data of " + key)}); err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
	}

	// Down: uploads succeed, events wait.
	first := []string{"outage/a", "outage/b", "outage/c"}
	for _, k := range first {
		put(k)
	}
	time.Sleep(2 * time.Second)
	if v := azMetric(t, m.MetricsURL, "mizuchi_events_pending"); v != 3 {
		t.Errorf("pending while down = %v, want 3", v)
	}
	if v := azMetric(t, m.MetricsURL, "mizuchi_events_total", `result="retried"`); v < 1 {
		t.Errorf("no retry counted while the receiver was down")
	}
	if v := azMetric(t, m.MetricsURL, "mizuchi_events_oldest_pending_seconds"); v < 1 {
		t.Errorf("oldest pending = %v s, want ≥ 1", v)
	}
	hook.up()
	got := hook.waitKeys(t, 15*time.Second, first...)
	for _, e := range got {
		p := e.Doc.Records[0].UserIdentity.PrincipalID
		if p == cliSubject || len(p) != 32 {
			t.Errorf("principalId %q is not a subject hash", p)
		}
	}

	// Down again, then SIGKILL with events pending, then restart.
	hook.down()
	second := []string{"killed/a", "killed/b", "killed/c"}
	for _, k := range second {
		put(k)
	}
	if err := m.Proc.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-m.Proc.Done()
	if n := len(evMissing(hook.received(), second)); n != len(second) {
		t.Fatalf("receiver was down, yet %d events arrived", len(second)-n)
	}
	m2 := runMizuchi(t, m.Dir, m.URL, m.MetricsURL, []string{"serve", "--config", filepath.Join(m.Dir, "config.yaml")})
	hook.up()
	hook.waitKeys(t, 15*time.Second, append(first, second...)...)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		v := azMetric(t, m2.MetricsURL, "mizuchi_events_pending")
		if v == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pending after restart = %v, want 0", v)
		}
	}
	for _, e := range hook.received() {
		if !e.SigValid {
			t.Errorf("invalid signature on %s", e.Body)
		}
	}
}

// TestEventsOutboxFullRefuses: with on_full refuse, a full outbox turns
// new uploads away with 503 SlowDown, storing nothing.
func TestEventsOutboxFullRefuses(t *testing.T) {
	t.Parallel()
	hook := startHook(t)
	hook.down()
	m := startMizuchi(t, evConfig(t, "  max_pending: 2\n  max_retry_interval_seconds: 1\n", evWebhook(hook)))
	c := s3Client(t, m.URL, cliAccessKey, cliSecretKey)
	ctx := evCtx(t)
	for _, k := range []string{"full/1", "full/2"} {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("files"), Key: aws.String(k),
			Body: strings.NewReader("x")}); err != nil {
			t.Fatalf("put %s: %v", k, err)
		}
	}
	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("files"), Key: aws.String("full/3"),
		Body: strings.NewReader("x")})
	var ae interface{ ErrorCode() string }
	if !errors.As(err, &ae) || ae.ErrorCode() != "SlowDown" {
		t.Fatalf("third upload: %v, want SlowDown", err)
	}
	if _, err := os.Stat(filepath.Join(m.Dir, "files", "full", "3")); !os.IsNotExist(err) {
		t.Errorf("refused object was stored (%v)", err)
	}
	hook.up()
	hook.waitKeys(t, 15*time.Second, "full/1", "full/2")
	for deadline := time.Now().Add(10 * time.Second); azMetric(t, m.MetricsURL, "mizuchi_events_pending") != 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("outbox never drained")
		}
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("files"), Key: aws.String("full/3"),
		Body: strings.NewReader("x")}); err != nil {
		t.Fatalf("upload after the outbox drained: %v", err)
	}
	hook.waitKeys(t, 15*time.Second, "full/3")
}

// TestEventsJetStreamOutage: uploads while nats-server is down are
// published, once each, when it is back.
func TestEventsJetStreamOutage(t *testing.T) {
	t.Parallel()
	ns := natsserver.Start(t)
	ns.CreateStream(t, "UPLOADS", "uploads.>")
	m := startMizuchi(t, evConfig(t, "  max_retry_interval_seconds: 1\n", `      - type: nats
        url: "`+ns.URL+`"
        subject: "uploads.{bucket}"
        jetstream: true
        timeout_seconds: 2
`))
	c := s3Client(t, m.URL, cliAccessKey, cliSecretKey)
	ctx := evCtx(t)
	ns.Stop(t)
	for _, k := range []string{"js/1", "js/2", "js/3"} {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("files"), Key: aws.String(k),
			Body: strings.NewReader("x")}); err != nil {
			t.Fatalf("put %s while NATS is down: %v", k, err)
		}
	}
	time.Sleep(2 * time.Second)
	if v := azMetric(t, m.MetricsURL, "mizuchi_events_pending"); v != 3 {
		t.Errorf("pending while NATS is down = %v, want 3", v)
	}
	ns.Restart(t)
	for deadline := time.Now().Add(20 * time.Second); azMetric(t, m.MetricsURL, "mizuchi_events_pending") != 0; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("events still pending 20 s after NATS came back")
		}
	}
	msgs := ns.Messages(t, "UPLOADS")
	keys := map[string]int{}
	for _, msg := range msgs {
		var doc evDocument
		if err := json.Unmarshal(msg.Data, &doc); err != nil {
			t.Fatal(err)
		}
		keys[doc.Records[0].S3.Object.Key]++
	}
	if len(msgs) != 3 || keys["js/1"] != 1 || keys["js/2"] != 1 || keys["js/3"] != 1 {
		t.Errorf("stream holds %d messages for %v, want js/1..3 once each", len(msgs), keys)
	}
}
