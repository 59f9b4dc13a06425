package s3api

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/mizuchi-uploadr/mizuchi/internal/auth"
	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
	"github.com/mizuchi-uploadr/mizuchi/internal/limits"
)

func withLimits(perSubject limits.Set) func(*Options) {
	return func(o *Options) {
		o.Buckets[0].Limits = limits.New(limits.NewMemory(), nil).Bucket("b", perSubject, limits.Set{})
	}
}

// expect makes the client wait for the server before it sends the body.
var expect = map[string]string{"Expect": "100-continue"}

// TestLimitsRefuseBeforeTheBody: a refusal reads nothing and answers the
// S3 error with its status and Retry-After.
func TestLimitsRefuseBeforeTheBody(t *testing.T) {
	f := newFixture(t, config.Upload{MaxObjectSize: 1 << 20}, withLimits(limits.Set{RequestsPerSecond: 0.0001, Burst: 1, BytesPerDay: 100}))
	if resp, body := f.do(t, "PUT", "/b/alice/a", "alice", strings.NewReader("hello"), 5, nil); resp.StatusCode != 200 {
		t.Fatalf("first PUT: %d %s", resp.StatusCode, body)
	}
	rb := &recordingBody{r: strings.NewReader("hello")}
	resp, body := f.do(t, "PUT", "/b/alice/b", "alice", rb, 5, expect)
	if resp.StatusCode != 503 || errorCode(t, body) != "SlowDown" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("second PUT: %d %s (Retry-After %q)", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	if rb.read.Load() {
		t.Fatal("the refused request's body was read")
	}

	g := newFixture(t, config.Upload{MaxObjectSize: 1 << 20}, withLimits(limits.Set{BytesPerDay: 100}))
	rb = &recordingBody{r: strings.NewReader(strings.Repeat("x", 101))}
	resp, body = g.do(t, "PUT", "/b/bob/big", "bob", rb, 101, expect)
	if resp.StatusCode != 403 || errorCode(t, body) != "QuotaExceeded" {
		t.Fatalf("PUT past the quota: %d %s", resp.StatusCode, body)
	}
	if rb.read.Load() {
		t.Fatal("the refused request's body was read")
	}
}

// TestLimitsReleasedOnFailure: an upload that fails after its body was
// read frees its slot and gives its bytes back.
func TestLimitsReleasedOnFailure(t *testing.T) {
	f := newFixture(t, config.Upload{MaxObjectSize: 1 << 20}, withLimits(limits.Set{ConcurrentUploads: 1, BytesPerDay: 100}))
	wrong := md5.Sum([]byte("something else"))
	for range 3 {
		resp, body := f.do(t, "PUT", "/b/alice/a", "alice", strings.NewReader(strings.Repeat("x", 60)), 60,
			map[string]string{"Content-MD5": base64.StdEncoding.EncodeToString(wrong[:])})
		if resp.StatusCode != 400 || errorCode(t, body) != "BadDigest" {
			t.Fatalf("PUT with a wrong Content-MD5: %d %s", resp.StatusCode, body)
		}
	}
	// 3 × 60 bytes failed: refunded, so 100 bytes still fit, and the slot
	// is free.
	if resp, body := f.do(t, "PUT", "/b/alice/b", "alice", strings.NewReader(strings.Repeat("y", 100)), 100, nil); resp.StatusCode != 200 {
		t.Fatalf("PUT after failures: %d %s", resp.StatusCode, body)
	}
	resp, body := f.do(t, "PUT", "/b/alice/c", "alice", strings.NewReader("z"), 1, nil)
	if resp.StatusCode != 403 || errorCode(t, body) != "QuotaExceeded" {
		t.Fatalf("PUT past the quota: %d %s", resp.StatusCode, body)
	}
}

func TestLimitSubject(t *testing.T) {
	for _, tt := range []struct {
		auth, query, want string
	}{
		{"AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00", "", "AKIAEXAMPLE"},
		{"", "X-Amz-Credential=AKIAPRESIGNED%2F20260101%2Fus-east-1%2Fs3%2Faws4_request", "AKIAPRESIGNED"},
		{"Bearer x", "", ""},
	} {
		r := httptestRequest(t, tt.query)
		if tt.auth != "" {
			r.Header.Set("Authorization", tt.auth)
		}
		if got := accessKey(r); got != tt.want {
			t.Errorf("accessKey(%q, %q) = %q, want %q", tt.auth, tt.query, got, tt.want)
		}
	}
}

func httptestRequest(t *testing.T, query string) *http.Request {
	t.Helper()
	r, err := http.NewRequest("PUT", "http://h/b/k?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestLimitSubjectPerMethod(t *testing.T) {
	r := httptestRequest(t, "")
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAONE/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00")
	for _, tt := range []struct {
		p    *auth.Principal
		ip   string
		want string
	}{
		{&auth.Principal{Subject: "shared-subject", Method: auth.MethodSigV4}, "192.0.2.1", "sigv4:AKIAONE"},
		{&auth.Principal{Subject: "alice", Method: auth.MethodJWT}, "192.0.2.1", "jwt:alice"},
		{&auth.Principal{Subject: auth.AnonymousSubject, Method: auth.MethodAnonymous}, "192.0.2.1", "ip:192.0.2.1"},
		{&auth.Principal{Subject: auth.AnonymousSubject, Method: auth.MethodAnonymous}, "192.0.2.2", "ip:192.0.2.2"},
	} {
		if got := limitSubject(r, &Scope{Principal: tt.p, ClientIP: tt.ip}); got != tt.want {
			t.Errorf("%s %s: got %q, want %q", tt.p.Method, tt.ip, got, tt.want)
		}
	}
}

func TestRefusalIsASpanEvent(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	ctx, span := tp.Tracer("t").Start(context.Background(), "request")
	err := refusal(ctx, &limits.Refusal{Limit: limits.LimitConcurrency, Scope: limits.ScopeSubject, RetryAfter: time.Second})
	span.End()
	var e *s3err.Error
	if !errors.As(err, &e) || e.Code != "SlowDown" || e.Header.Get("Retry-After") != "1" {
		t.Fatalf("got %v", err)
	}
	ev := rec.Ended()[0].Events()
	if len(ev) != 1 || ev[0].Name != "limit.refused" {
		t.Fatalf("events %+v", ev)
	}
	attrs := map[string]string{}
	for _, a := range ev[0].Attributes {
		attrs[string(a.Key)] = a.Value.String()
	}
	if attrs["mizuchi.limit"] != "concurrent_uploads" || attrs["mizuchi.limit.scope"] != "per_subject" || len(attrs) != 2 {
		t.Fatalf("event attributes %v", attrs)
	}
}
