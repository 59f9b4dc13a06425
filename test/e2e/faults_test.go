package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/mizuchi-uploadr/mizuchi/internal/auth/jwt"
	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/faultproxy"
	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/opaserver"
	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/openfgaserver"
	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/testproc"
	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/versitygw"
)

// The fault matrix: every test runs the built binary with S3 buckets on a
// real versitygw, reached through a fault proxy, and uploads with
// aws-sdk-go-v2 (or raw HTTP where a client must misbehave). After each
// scenario it checks, directly on versitygw, that no partial object and
// no multipart upload is left, and, on Mizuchi's metrics endpoint, that
// goroutines and file descriptors came back to their baseline.

const (
	fltStore   = "flt-store"
	fltPart    = 5 << 20
	fltSmall   = 6 << 20  // below the threshold: one streamed PutObject
	fltLarge   = 13 << 20 // above it: three parts of auto-multipart
	fltTimeout = 2 * time.Minute
)

// fltBucket is one Mizuchi bucket of a fault test.
type fltBucket struct {
	name     string
	endpoint string // http://host:port of the store (a proxy)
	conc     int    // concurrent_parts
	extra    string // more YAML under the bucket (auth, authz), indented 4
	// threshold and partSize override 8MiB and 5MiB.
	threshold, partSize string
	// stall, when set, is s3.stall_timeout_seconds and
	// s3.response_header_timeout_seconds.
	stall int
}

// fltConfig is a Mizuchi configuration with the given S3 buckets, all on
// the store bucket fltStore of gw.
func fltConfig(gw *versitygw.Server, top string, buckets ...fltBucket) string {
	var b strings.Builder
	b.WriteString(`server:
  address: 127.0.0.1:{{S3_PORT}}
  shutdown_grace_seconds: 2
metrics:
  address: 127.0.0.1:{{METRICS_PORT}}
logging:
  level: debug
  format: json
`)
	b.WriteString(top)
	b.WriteString("buckets:\n")
	for _, bk := range buckets {
		conc := bk.conc
		if conc == 0 {
			conc = 1
		}
		threshold, partSize := "8MiB", "5MiB"
		if bk.threshold != "" {
			threshold, partSize = bk.threshold, bk.partSize
		}
		timeouts := ""
		if bk.stall > 0 {
			timeouts = fmt.Sprintf("      stall_timeout_seconds: %d\n      response_header_timeout_seconds: %d\n", bk.stall, bk.stall)
		}
		fmt.Fprintf(&b, `  - name: %[1]s
    path_prefix: /%[1]s
    s3:
      bucket: %[2]s
      region: us-east-1
      endpoint: %[3]s
      force_path_style: true
      access_key: %[4]s
      secret_key: %[5]s
%[10]s    upload:
      multipart_threshold: %[8]s
      part_size: %[9]s
      concurrent_parts: %[6]d
%[7]s`, bk.name, fltStore, bk.endpoint, gw.AccessKey, gw.SecretKey, conc, bk.extra, threshold, partSize, timeouts)
	}
	return b.String()
}

// fltClient is an aws-sdk-go-v2 client for Mizuchi, keeping connections
// alive as deployed clients do, with the SDK's default Expect:
// 100-continue above 2 MiB: an error answered in the middle of such a
// body must reach the client, not be lost to a connection reset.
type fltClient struct {
	*s3.Client
	tr *http.Transport
}

// closeIdle drops the client's idle keep-alive connections, so that none
// holds a goroutine or a descriptor in Mizuchi during a leak check.
func (c *fltClient) closeIdle() {
	if c.tr != nil {
		c.tr.CloseIdleConnections()
	}
}

func fltS3(t *testing.T, m *Mizuchi, opts ...func(*s3.Options)) *fltClient {
	t.Helper()
	c := &fltClient{}
	hc := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) { c.tr = tr })
	c.Client = s3Client(t, m.URL, "", "", append([]func(*s3.Options){func(o *s3.Options) {
		o.HTTPClient = hc
	}}, opts...)...)
	return c
}

func fltCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), fltTimeout)
	t.Cleanup(cancel)
	return ctx
}

// fltWantErr checks that err is the S3 error code with HTTP status.
func fltWantErr(t *testing.T, err error, code string, status int) {
	t.Helper()
	if err == nil {
		t.Fatalf("request succeeded, want %d %s", status, code)
	}
	var ae smithy.APIError
	var re *awshttp.ResponseError
	if !errors.As(err, &ae) || !errors.As(err, &re) {
		t.Fatalf("want S3 error %d %s, got %v", status, code, err)
	}
	if ae.ErrorCode() != code || re.HTTPStatusCode() != status {
		t.Fatalf("got %d %s (%s), want %d %s", re.HTTPStatusCode(), ae.ErrorCode(), ae.ErrorMessage(), status, code)
	}
}

// fltPut uploads body to bucket/key through Mizuchi with PutObject.
func fltPut(ctx context.Context, c *fltClient, bucket, key string, body []byte) error {
	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
		Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body)))})
	return err
}

// fltAssertStored checks that key holds exactly body on the store.
func fltAssertStored(t *testing.T, gw *versitygw.Server, key string, body []byte) {
	t.Helper()
	if got := gw.Object(t, fltStore, key); !bytes.Equal(got, body) {
		t.Fatalf("store holds %d bytes for %s, want the %d uploaded", len(got), key, len(body))
	}
}

// fltAssertClean checks, directly on the store, that key does not exist
// (not even truncated) and that no multipart upload is open.
func fltAssertClean(t *testing.T, gw *versitygw.Server, key string) {
	t.Helper()
	if h := gw.Head(t, fltStore, key); h != nil {
		t.Errorf("a partial object of %d bytes exists for %s", aws.ToInt64(h.ContentLength), key)
	}
	if n := gw.OpenUploads(t, fltStore); n != 0 {
		t.Errorf("%d multipart uploads left open on the store", n)
	}
}

// fltParts lists the parts the store holds for an upload.
// The id a client holds is sealed by Mizuchi: the store's own id is that
// of the one upload open for key.
func fltParts(t *testing.T, gw *versitygw.Server, key, _ string) []types.Part {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ups, err := gw.Client().ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(fltStore), Prefix: aws.String(key)})
	if err != nil {
		t.Fatalf("list uploads on the store: %v", err)
	}
	var ids []string
	for _, u := range ups.Uploads {
		if aws.ToString(u.Key) == key {
			ids = append(ids, aws.ToString(u.UploadId))
		}
	}
	if len(ids) != 1 {
		t.Fatalf("%d uploads open on the store for %s, want 1", len(ids), key)
	}
	out, err := gw.Client().ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String(fltStore), Key: aws.String(key), UploadId: aws.String(ids[0])})
	if err != nil {
		t.Fatalf("list parts on the store: %v", err)
	}
	return out.Parts
}

// fltUsage is what a leak would grow: goroutines, open descriptors and
// uploads Mizuchi believes are in flight.
type fltUsage struct{ goroutines, fds, inflight float64 }

func (u fltUsage) String() string {
	return fmt.Sprintf("%.0f goroutines, %.0f fds, %.0f in flight", u.goroutines, u.fds, u.inflight)
}

var fltMetricsClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func fltUsageNow(t *testing.T, m *Mizuchi) fltUsage {
	t.Helper()
	resp, err := fltMetricsClient.Get(m.MetricsURL + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	var u fltUsage
	seen := map[string]bool{}
	for _, line := range strings.Split(buf.String(), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		name := f[0]
		if i := strings.IndexByte(name, '{'); i >= 0 {
			name = name[:i]
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			continue
		}
		switch name {
		case "go_goroutines":
			u.goroutines = v
		case "process_open_fds":
			u.fds = v
		case "mizuchi_inflight_uploads":
			u.inflight += v
		default:
			continue
		}
		seen[name] = true
	}
	if !seen["go_goroutines"] || !seen["process_open_fds"] {
		t.Fatalf("metrics lack go_goroutines or process_open_fds")
	}
	return u
}

// Leak tolerance over the baseline. The baseline is taken after warm-up
// uploads through every bucket, so the store connection pool already
// holds its usual idle connections. What may still differ afterwards is
// that pool: a scenario can leave one or two more idle keep-alive
// connections to the store (one descriptor and two goroutines, read and
// write loop, each) than the warm-up did, or fewer when a fault killed
// them. Idle client connections are closed before every reading, so none
// of them stays open in Mizuchi. A leak per request or per part exceeds this
// within a scenario's few requests only if it is at least that size, so
// the deltas are also logged and summed over the sequence of scenarios
// sharing one process.
const (
	fltTolGoroutines = 6
	fltTolFDs        = 3
)

// fltLeaks is a leak check over a sequence of scenarios on one Mizuchi.
type fltLeaks struct {
	m    *Mizuchi
	base fltUsage
	// clients' idle connections are closed before each check.
	clients []*fltClient
}

// fltBaseline waits for Mizuchi to settle and records its usage; the
// clients' idle connections are closed first.
func fltBaseline(t *testing.T, m *Mizuchi, clients ...*fltClient) *fltLeaks {
	t.Helper()
	for _, c := range clients {
		c.closeIdle()
	}
	var prev fltUsage
	// Settled: two readings 300ms apart agree and nothing is in flight.
	deadline := time.Now().Add(15 * time.Second)
	for {
		time.Sleep(300 * time.Millisecond)
		u := fltUsageNow(t, m)
		if u == prev && u.inflight == 0 || time.Now().After(deadline) {
			t.Logf("baseline: %v", u)
			return &fltLeaks{m: m, base: u, clients: clients}
		}
		prev = u
	}
}

// check waits (up to 20s: aborted uploads finish in the background,
// closed connections are reaped) for usage to come back to the baseline.
func (l *fltLeaks) check(t *testing.T) {
	t.Helper()
	for _, c := range l.clients {
		c.closeIdle()
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		u := fltUsageNow(t, l.m)
		ok := u.inflight == 0 && u.goroutines <= l.base.goroutines+fltTolGoroutines && u.fds <= l.base.fds+fltTolFDs
		if ok {
			t.Logf("after: %v (baseline %v; delta %+.0f goroutines, %+.0f fds)", u, l.base,
				u.goroutines-l.base.goroutines, u.fds-l.base.fds)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("leak: %v, baseline %v", u, l.base)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// fltUniqueKey names a scenario's object.
func fltUniqueKey(t *testing.T) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		return '_'
	}, t.Name()) + ".bin"
}

// fltRawPut starts a PUT on a raw connection, writes sent bytes of a
// body of size bytes and returns the connection (to be reset).
func fltRawPut(t *testing.T, m *Mizuchi, path string, size int, sent []byte) *net.TCPConn {
	t.Helper()
	addr := strings.TrimPrefix(m.URL, "http://")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "PUT %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nContent-Type: application/octet-stream\r\n\r\n", path, addr, size)
	if _, err := c.Write(sent); err != nil {
		t.Fatalf("writing the body: %v", err)
	}
	return c.(*net.TCPConn)
}

// fltEnv is Mizuchi with buckets single (PutObject), mp1 and mp4
// (auto-multipart with 1 and 4 concurrent parts) on a versitygw behind a
// TCP fault proxy, and the same three as hsingle, hmp1 and hmp4 behind an
// HTTP error injector.
type fltEnv struct {
	gw    *versitygw.Server
	tcp   *faultproxy.TCP
	hp    *faultproxy.HTTP
	m     *Mizuchi
	c     *fltClient
	leaks *fltLeaks
}

func fltStart(t *testing.T) *fltEnv {
	t.Helper()
	gw := versitygw.Start(t)
	gw.CreateBucket(t, fltStore)
	tcp := faultproxy.StartTCP(t, gw.Addr)
	hp := faultproxy.StartHTTP(t, gw.Addr)
	ep := "http://" + tcp.Addr
	m := startMizuchi(t, fltConfig(gw, "",
		fltBucket{name: "single", endpoint: ep},
		fltBucket{name: "mp1", endpoint: ep, conc: 1},
		fltBucket{name: "mp4", endpoint: ep, conc: 4},
		fltBucket{name: "hsingle", endpoint: hp.URL},
		fltBucket{name: "hmp1", endpoint: hp.URL, conc: 1},
		fltBucket{name: "hmp4", endpoint: hp.URL, conc: 4}))
	e := &fltEnv{gw: gw, tcp: tcp, hp: hp, m: m, c: fltS3(t, m)}
	e.warmUp(t)
	e.leaks = fltBaseline(t, m, e.c)
	return e
}

// warmUp uploads through every bucket so that pools and caches are in
// their steady state before the baseline.
func (e *fltEnv) warmUp(t *testing.T) {
	t.Helper()
	ctx := fltCtx(t)
	for _, up := range []struct {
		bucket string
		size   int
	}{{"single", fltSmall}, {"mp1", fltLarge}, {"mp4", fltLarge}, {"hsingle", fltSmall}, {"hmp1", fltLarge}, {"hmp4", fltLarge}} {
		body := randomBytes(t, up.size)
		key := "warm-up/" + up.bucket
		if err := fltPut(ctx, e.c, up.bucket, key, body); err != nil {
			t.Fatalf("warm-up upload to %s: %v", up.bucket, err)
		}
		fltAssertStored(t, e.gw, key, body)
	}
}

// TestFaultBackendResetsMidBody resets the store connection in the
// middle of a body: a streamed body cannot be replayed, so the client
// gets 503 ServiceUnavailable and the store keeps nothing; a buffered
// part is retried and the upload succeeds.
func TestFaultBackendResetsMidBody(t *testing.T) {
	t.Parallel()
	e := fltStart(t)
	reset := func(after int64) {
		e.tcp.Arm(faultproxy.Fault{Action: faultproxy.Reset, AfterBytes: after, Times: 1})
	}
	cases := []struct {
		name   string
		bucket string
		size   int
		after  int64
		ok     bool // the upload succeeds anyway
	}{
		{name: "single put", bucket: "single", size: fltSmall, after: 3 << 20},
		{name: "auto-multipart, 1 concurrent part", bucket: "mp1", size: fltLarge, after: 7 << 20},
		{name: "auto-multipart, 4 concurrent parts, part retried", bucket: "mp4", size: fltLarge, after: 7 << 20, ok: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key := fltUniqueKey(t)
			body := randomBytes(t, tc.size)
			reset(tc.after)
			t.Cleanup(e.tcp.Disarm)
			start := time.Now()
			err := fltPut(fltCtx(t), e.c, tc.bucket, key, body)
			t.Logf("took %v: %v", time.Since(start).Round(time.Millisecond), err)
			if e.tcp.Tripped() != 1 {
				t.Fatalf("the reset fired %d times", e.tcp.Tripped())
			}
			e.tcp.Disarm()
			if tc.ok {
				if err != nil {
					t.Fatalf("PutObject: %v", err)
				}
				fltAssertStored(t, e.gw, key, body)
				fltAssertClean(t, e.gw, "never-written")
			} else {
				fltWantErr(t, err, "ServiceUnavailable", http.StatusServiceUnavailable)
				fltAssertClean(t, e.gw, key)
			}
			e.leaks.check(t)
		})
	}

	t.Run("client-driven UploadPart", func(t *testing.T) {
		ctx := fltCtx(t)
		key := fltUniqueKey(t)
		cr, err := e.c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("single"), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		id := cr.UploadId
		part := randomBytes(t, fltSmall)
		upload := func() (*s3.UploadPartOutput, error) {
			return e.c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("single"), Key: aws.String(key), UploadId: id,
				PartNumber: aws.Int32(1), Body: bytes.NewReader(part), ContentLength: aws.Int64(int64(len(part)))})
		}
		reset(3 << 20)
		t.Cleanup(e.tcp.Disarm)
		_, err = upload()
		e.tcp.Disarm()
		fltWantErr(t, err, "ServiceUnavailable", http.StatusServiceUnavailable)
		if parts := fltParts(t, e.gw, key, *id); len(parts) != 0 {
			t.Fatalf("the store kept %d parts of the failed UploadPart (size %d)", len(parts), aws.ToInt64(parts[0].Size))
		}
		// The upload is the client's: it stays open, and the part can be
		// sent again.
		up, err := upload()
		if err != nil {
			t.Fatalf("UploadPart again: %v", err)
		}
		_, err = e.c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("single"), Key: aws.String(key), UploadId: id,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: up.ETag}}}})
		if err != nil {
			t.Fatalf("CompleteMultipartUpload: %v", err)
		}
		fltAssertStored(t, e.gw, key, part)
		fltAssertClean(t, e.gw, "never-written")
		e.leaks.check(t)
	})
}

// fltStoreRequests counts the requests for key the HTTP injector saw
// that match.
func fltStoreRequests(hp *faultproxy.HTTP, key string, match func(faultproxy.Recorded) bool) int {
	n := 0
	for _, r := range hp.Requests() {
		if strings.Contains(r.URL, "/"+fltStore+"/"+key) && match(r) {
			n++
		}
	}
	return n
}

func fltIsPart(r *http.Request) bool { return r.URL.Query().Has("partNumber") }
func fltIsCreate(r *http.Request) bool {
	return r.Method == http.MethodPost && r.URL.Query().Has("uploads")
}
func fltIsComplete(r *http.Request) bool {
	return r.Method == http.MethodPost && r.URL.Query().Has("uploadId")
}
func fltIsPut(r *http.Request) bool { return r.Method == http.MethodPut && !fltIsPart(r) }

// TestFaultBackendErrors answers store calls with 500 InternalError and
// 503 SlowDown. Replayable calls (Create, Complete, buffered parts) are
// retried and the upload succeeds; a streamed body is never replayed, so
// the client gets the store's error; an upload that fails is aborted.
func TestFaultBackendErrors(t *testing.T) {
	t.Parallel()
	e := fltStart(t)
	type want struct {
		code   string // "" for success
		status int
	}
	cases := []struct {
		name   string
		bucket string
		size   int
		inj    faultproxy.Injection
		want   want
		// calls is how many store requests of the injected kind the
		// upload made (1: not retried).
		calls int
	}{
		{name: "500 on a streamed PutObject is not retried", bucket: "hsingle", size: fltSmall,
			inj:  faultproxy.Injection{Match: fltIsPut, Times: 1, Status: 500, Code: "InternalError", DrainBody: true},
			want: want{"InternalError", 500}, calls: 1},
		{name: "503 SlowDown on a streamed PutObject", bucket: "hsingle", size: fltSmall,
			inj:  faultproxy.Injection{Match: fltIsPut, Times: 1, Status: 503, Code: "SlowDown", DrainBody: true},
			want: want{"SlowDown", 503}, calls: 1},
		{name: "500 on a streamed part is not retried", bucket: "hmp1", size: fltLarge,
			inj:  faultproxy.Injection{Match: fltIsPart, Times: 1, Status: 500, Code: "InternalError", DrainBody: true},
			want: want{"InternalError", 500}, calls: 1},
		{name: "500 on buffered parts then success", bucket: "hmp4", size: fltLarge,
			inj:   faultproxy.Injection{Match: fltIsPart, Times: 2, Status: 500, Code: "InternalError", DrainBody: true},
			calls: 3 + 2},
		{name: "persistent 500 on buffered parts gives up and aborts", bucket: "hmp4", size: fltLarge,
			inj:  faultproxy.Injection{Match: fltIsPart, Status: 500, Code: "InternalError", DrainBody: true},
			want: want{"InternalError", 500}, calls: -1},
		{name: "500 on create and complete of auto-multipart then success", bucket: "hmp1", size: fltLarge,
			inj:   faultproxy.Injection{Match: func(r *http.Request) bool { return r.Method == http.MethodPost }, Times: 2, Status: 500, Code: "InternalError"},
			calls: 2 + 2},
		{name: "503 SlowDown on create of auto-multipart until attempts run out", bucket: "hmp1", size: fltLarge,
			inj:  faultproxy.Injection{Match: fltIsCreate, Status: 503, Code: "SlowDown"},
			want: want{"SlowDown", 503}, calls: 5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key := fltUniqueKey(t)
			body := randomBytes(t, tc.size)
			e.hp.Inject(tc.inj)
			t.Cleanup(e.hp.Clear)
			start := time.Now()
			err := fltPut(fltCtx(t), e.c, tc.bucket, key, body)
			t.Logf("took %v, %d injected: %v", time.Since(start).Round(time.Millisecond), e.hp.Injected(), err)
			e.hp.Clear()
			kind := func(r faultproxy.Recorded) bool {
				req, _ := http.NewRequest(r.Method, r.URL, nil)
				return tc.inj.Match(req)
			}
			if n := fltStoreRequests(e.hp, key, kind); tc.calls > 0 && n != tc.calls {
				t.Errorf("the store saw %d requests of the injected kind, want %d", n, tc.calls)
			}
			if tc.want.code == "" {
				if err != nil {
					t.Fatalf("PutObject: %v", err)
				}
				fltAssertStored(t, e.gw, key, body)
				fltAssertClean(t, e.gw, "never-written")
			} else {
				fltWantErr(t, err, tc.want.code, tc.want.status)
				fltAssertClean(t, e.gw, key)
			}
			e.leaks.check(t)
		})
	}

	// The client's own multipart calls.
	t.Run("500 on CreateMultipartUpload and 503 SlowDown on Complete are retried", func(t *testing.T) {
		ctx := fltCtx(t)
		key := fltUniqueKey(t)
		e.hp.Inject(faultproxy.Injection{Match: fltIsCreate, Times: 2, Status: 500, Code: "InternalError"})
		t.Cleanup(e.hp.Clear)
		cr, err := e.c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("hsingle"), Key: aws.String(key)})
		if err != nil {
			t.Fatalf("CreateMultipartUpload: %v", err)
		}
		if e.hp.Injected() != 2 {
			t.Fatalf("%d errors injected", e.hp.Injected())
		}
		part := randomBytes(t, fltSmall)
		up, err := e.c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("hsingle"), Key: aws.String(key), UploadId: cr.UploadId,
			PartNumber: aws.Int32(1), Body: bytes.NewReader(part), ContentLength: aws.Int64(int64(len(part)))})
		if err != nil {
			t.Fatalf("UploadPart: %v", err)
		}
		e.hp.Inject(faultproxy.Injection{Match: fltIsComplete, Times: 2, Status: 503, Code: "SlowDown"})
		_, err = e.c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("hsingle"), Key: aws.String(key), UploadId: cr.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: up.ETag}}}})
		if err != nil {
			t.Fatalf("CompleteMultipartUpload: %v", err)
		}
		if e.hp.Injected() != 2 {
			t.Fatalf("%d errors injected", e.hp.Injected())
		}
		fltAssertStored(t, e.gw, key, part)
		fltAssertClean(t, e.gw, "never-written")
		e.leaks.check(t)
	})

	t.Run("503 SlowDown on a client's UploadPart", func(t *testing.T) {
		ctx := fltCtx(t)
		key := fltUniqueKey(t)
		cr, err := e.c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("hsingle"), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		e.hp.Inject(faultproxy.Injection{Match: fltIsPart, Times: 1, Status: 503, Code: "SlowDown", DrainBody: true})
		t.Cleanup(e.hp.Clear)
		part := randomBytes(t, fltSmall)
		_, err = e.c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("hsingle"), Key: aws.String(key), UploadId: cr.UploadId,
			PartNumber: aws.Int32(1), Body: bytes.NewReader(part), ContentLength: aws.Int64(int64(len(part)))})
		fltWantErr(t, err, "SlowDown", http.StatusServiceUnavailable)
		if n := fltStoreRequests(e.hp, key, func(r faultproxy.Recorded) bool { return strings.Contains(r.URL, "partNumber=") }); n != 1 {
			t.Errorf("the part was sent %d times", n)
		}
		if parts := fltParts(t, e.gw, key, *cr.UploadId); len(parts) != 0 {
			t.Fatalf("the store kept %d parts", len(parts))
		}
		if _, err := e.c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String("hsingle"), Key: aws.String(key), UploadId: cr.UploadId}); err != nil {
			t.Fatalf("AbortMultipartUpload: %v", err)
		}
		fltAssertClean(t, e.gw, key)
		e.leaks.check(t)
	})
}

// fltWaitLogged waits until Mizuchi logged the end of a request for key.
func fltWaitLogged(t *testing.T, m *Mizuchi, key string) {
	t.Helper()
	waitFor(t, "the request for "+key+" to end", func() bool {
		for _, line := range strings.Split(m.Proc.Output(), "\n") {
			if strings.Contains(line, `"msg":"request"`) && strings.Contains(line, `"key":"`+key+`"`) {
				return true
			}
		}
		return false
	})
}

// TestFaultClientDisconnectsMidBody resets the client's connection in the
// middle of a body: the store upload is aborted (or its streamed body
// reset), so no partial object and no upload of Mizuchi's is left.
func TestFaultClientDisconnectsMidBody(t *testing.T) {
	t.Parallel()
	e := fltStart(t)
	cases := []struct {
		name   string
		bucket string
		size   int
		sent   int
	}{
		{name: "single put", bucket: "single", size: fltSmall, sent: 4 << 20},
		{name: "auto-multipart, 1 concurrent part", bucket: "mp1", size: fltLarge, sent: 8 << 20},
		{name: "auto-multipart, 4 concurrent parts", bucket: "mp4", size: fltLarge, sent: 8 << 20},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key := fmt.Sprintf("disconnect-%d.bin", i)
			c := fltRawPut(t, e.m, "/"+tc.bucket+"/"+key, tc.size, randomBytes(t, tc.sent))
			// Let the bytes reach the store before the client goes.
			time.Sleep(300 * time.Millisecond)
			_ = c.SetLinger(0)
			_ = c.Close()
			fltWaitLogged(t, e.m, key)
			fltAssertClean(t, e.gw, key)
			e.leaks.check(t)
		})
	}

	t.Run("client-driven UploadPart", func(t *testing.T) {
		ctx := fltCtx(t)
		key := "disconnect-part.bin"
		cr, err := e.c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("single"), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		c := fltRawPut(t, e.m, "/single/"+key+"?partNumber=1&uploadId="+*cr.UploadId, fltSmall, randomBytes(t, 4<<20))
		time.Sleep(300 * time.Millisecond)
		_ = c.SetLinger(0)
		_ = c.Close()
		waitFor(t, "the UploadPart to end", func() bool {
			return strings.Contains(e.m.Proc.Output(), `"operation":"UploadPart","status":`) &&
				strings.Count(e.m.Proc.Output(), `"key":"`+key+`"`) >= 2
		})
		if parts := fltParts(t, e.gw, key, *cr.UploadId); len(parts) != 0 {
			t.Fatalf("the store kept %d parts (%d bytes) of the cut UploadPart", len(parts), aws.ToInt64(parts[0].Size))
		}
		if _, err := e.c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String("single"), Key: aws.String(key), UploadId: cr.UploadId}); err != nil {
			t.Fatalf("AbortMultipartUpload: %v", err)
		}
		fltAssertClean(t, e.gw, key)
		e.leaks.check(t)
	})
}

// fltStartStall is Mizuchi on a versitygw behind a TCP proxy with
// buckets single (PutObject up to 64 MiB), mp1 (24 MiB streamed parts)
// and mp4: bodies large enough that what is left after the stall does
// not fit in the loopback socket buffers (several MiB), so the store
// visibly stops reading.
func fltStartStall(t *testing.T) *fltEnv {
	t.Helper()
	gw := versitygw.Start(t)
	gw.CreateBucket(t, fltStore)
	tcp := faultproxy.StartTCP(t, gw.Addr)
	ep := "http://" + tcp.Addr
	m := startMizuchi(t, fltConfig(gw, "",
		fltBucket{name: "single", endpoint: ep, threshold: "64MiB", partSize: "5MiB", stall: fltStallSeconds},
		fltBucket{name: "mp1", endpoint: ep, conc: 1, threshold: "32MiB", partSize: "24MiB", stall: fltStallSeconds},
		fltBucket{name: "mp4", endpoint: ep, conc: 4, stall: fltStallSeconds}))
	e := &fltEnv{gw: gw, tcp: tcp, m: m, c: fltS3(t, m)}
	for _, b := range []string{"single", "mp1", "mp4"} {
		if err := fltPut(fltCtx(t), e.c, b, "warm-up/"+b, randomBytes(t, 1<<20)); err != nil {
			t.Fatalf("warm-up upload to %s: %v", b, err)
		}
	}
	e.leaks = fltBaseline(t, m, e.c)
	return e
}

// fltStallSeconds is the stall and response-header timeout of the stall
// test's buckets.
const fltStallSeconds = 5

// TestFaultBackendStalls stops the store from reading a body. The stall
// timeout of the S3 backend (s3.stall_timeout_seconds) fails a streamed
// body with 503 ServiceUnavailable; a buffered part's attempt gets that
// plus a second per MiB, then it is retried and the upload succeeds. The
// three cases run at once, each on its own Mizuchi, so the test takes one
// stall timeout, not three.
//
// When the rest of a streamed body fits in the socket buffers, the store
// has "read" it all and the wait for its answer is bounded by the
// response-header timeout instead (s3.response_header_timeout_seconds).
func TestFaultBackendStalls(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		bucket string
		size   int
		after  int64
		ok     bool
	}{
		{name: "single put", bucket: "single", size: 40 << 20, after: 2 << 20},
		{name: "auto-multipart, 1 concurrent part", bucket: "mp1", size: 50 << 20, after: 26 << 20},
		{name: "auto-multipart, 4 concurrent parts, part retried", bucket: "mp4", size: fltLarge, after: 7 << 20, ok: true},
	}
	type result struct {
		env  *fltEnv
		key  string
		body []byte
		err  error
		took time.Duration
	}
	results := make([]result, len(cases))
	for i, tc := range cases {
		results[i] = result{env: fltStartStall(t), key: fmt.Sprintf("stall-%d.bin", i), body: randomBytes(t, tc.size)}
	}
	done := make(chan int)
	for i, tc := range cases {
		go func() {
			r := &results[i]
			r.env.tcp.Arm(faultproxy.Fault{Action: faultproxy.Stall, AfterBytes: tc.after, Times: 1})
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			start := time.Now()
			r.err = fltPut(ctx, r.env.c, tc.bucket, r.key, r.body)
			r.took = time.Since(start)
			done <- i
		}()
	}
	for range cases {
		<-done
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := results[i]
			t.Logf("took %v: %v", r.took.Round(time.Millisecond), r.err)
			if r.env.tcp.Tripped() != 1 {
				t.Fatalf("the stall fired %d times", r.env.tcp.Tripped())
			}
			if r.took < (fltStallSeconds-1)*time.Second {
				t.Errorf("the upload ended after %v, before the %ds stall timeout", r.took, fltStallSeconds)
			}
			if tc.ok {
				if r.err != nil {
					t.Fatalf("PutObject: %v", r.err)
				}
				fltAssertStored(t, r.env.gw, r.key, r.body)
				fltAssertClean(t, r.env.gw, "never-written")
			} else {
				fltWantErr(t, r.err, "ServiceUnavailable", http.StatusServiceUnavailable)
				fltAssertClean(t, r.env.gw, r.key)
			}
			r.env.leaks.check(t)
		})
	}
}

// fltHTTP sends token-authenticated PUTs with net/http, keeping
// connections alive; closeIdle drops them before a leak check.
type fltHTTP struct {
	tr *http.Transport
	c  *http.Client
}

func newFltHTTP() *fltHTTP {
	tr := &http.Transport{MaxIdleConnsPerHost: 4}
	return &fltHTTP{tr: tr, c: &http.Client{Transport: tr, Timeout: time.Minute}}
}

// put uploads body with a bearer token and returns the status and S3
// error code ("" on success).
func (h *fltHTTP) put(t *testing.T, url, token string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := h.c.Do(req)
	if err != nil {
		t.Fatalf("PUT %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var doc struct{ Code string }
	if resp.StatusCode != http.StatusOK {
		if err := xml.Unmarshal(b, &doc); err != nil {
			t.Fatalf("PUT %s: %s with no S3 error document: %q", url, resp.Status, b)
		}
	}
	return resp.StatusCode, doc.Code
}

// fltCheckHTTP is fltLeaks.check for a net/http client.
func fltCheckHTTP(t *testing.T, l *fltLeaks, h *fltHTTP) {
	t.Helper()
	h.tr.CloseIdleConnections()
	l.check(t)
}

// TestFaultPolicyEnginesDown stops OPA and OpenFGA (and points a bucket
// at an OPA that never answers) after uploads through them worked: every
// upload is refused with 503 ServiceUnavailable, never allowed, and
// nothing reaches the store. Decision caches are off, or the warm-up's
// allow would answer.
func TestFaultPolicyEnginesDown(t *testing.T) {
	t.Parallel()
	gw := versitygw.Start(t)
	gw.CreateBucket(t, fltStore)
	subject := "flt-writer"
	secret := "flt-jwt-secret-0123456789abcdef"
	opa := opaserver.Start(t, "package mizuchi\n\ndefault allow := false\n\nallow if input.subject == \""+subject+"\"\n")
	fga := openfgaserver.Start(t, openfgaserver.Tuple{User: "user:" + subject, Relation: "writer", Object: "bucket:fga"})
	auth := fmt.Sprintf(`    auth:
      enabled: true
      jwt:
        algorithm: HS256
        secret: %s
`, secret)
	m := startMizuchi(t, fltConfig(gw, "",
		fltBucket{name: "opa", endpoint: gw.Endpoint, extra: auth + fmt.Sprintf(`    authz:
      enabled: true
      opa: { url: %s, policy_path: mizuchi/allow, timeout_seconds: 1, cache_ttl_seconds: 0 }
`, opa.URL)},
		fltBucket{name: "opahole", endpoint: gw.Endpoint, extra: auth + fmt.Sprintf(`    authz:
      enabled: true
      opa: { url: "http://%s", policy_path: mizuchi/allow, timeout_seconds: 1, cache_ttl_seconds: 0 }
`, testproc.BlackHole(t).Addr)},
		fltBucket{name: "fga", endpoint: gw.Endpoint, extra: auth + fmt.Sprintf(`    authz:
      enabled: true
      openfga:
        transport: grpc
        url: %s
        store_id: %s
        model_id: %s
        user: "user:{subject}"
        relation: writer
        object: "bucket:{bucket}"
        timeout_seconds: 1
        cache_ttl_seconds: 0
`, fga.GRPCAddr, fga.StoreID, fga.ModelID)}))
	token, err := jwt.Mint(jwt.MintOptions{Subject: subject, Secret: []byte(secret)})
	if err != nil {
		t.Fatal(err)
	}
	h := newFltHTTP()
	body := randomBytes(t, 64<<10)
	for _, b := range []string{"opa", "fga"} {
		if status, code := h.put(t, m.URL+"/"+b+"/warm-up.bin", token, body); status != http.StatusOK {
			t.Fatalf("warm-up upload to %s: %d %s", b, status, code)
		}
		fltAssertStored(t, gw, "warm-up.bin", body)
	}
	leaks := fltBaseline(t, m)
	h.tr.CloseIdleConnections()

	cases := []struct {
		name, bucket string
		stop         func()
	}{
		{name: "OPA never answers", bucket: "opahole"},
		{name: "OPA down", bucket: "opa", stop: func() { opa.Stop(t) }},
		{name: "OpenFGA down", bucket: "fga", stop: func() { fga.Stop(t) }},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.stop != nil {
				tc.stop()
			}
			key := fmt.Sprintf("engine-down-%d.bin", i)
			start := time.Now()
			status, code := h.put(t, m.URL+"/"+tc.bucket+"/"+key, token, body)
			t.Logf("took %v: %d %s", time.Since(start).Round(time.Millisecond), status, code)
			if status != http.StatusServiceUnavailable || code != "ServiceUnavailable" {
				t.Fatalf("got %d %s, want 503 ServiceUnavailable", status, code)
			}
			fltAssertClean(t, gw, key)
			fltCheckHTTP(t, leaks, h)
		})
	}
}

// TestFaultJWKSDownAtStart starts Mizuchi while its JWKS endpoint refuses
// connections: it starts, answers 503 ServiceUnavailable (an outage, not
// a verdict on the token) and stores nothing; once the endpoint is up,
// the background refetch finds the key and the same token uploads.
func TestFaultJWKSDownAtStart(t *testing.T) {
	t.Parallel()
	gw := versitygw.Start(t)
	gw.CreateBucket(t, fltStore)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := key.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	jwks := fmt.Sprintf(`{"keys":[{"kty":"EC","crv":"P-256","alg":"ES256","use":"sig","kid":"flt-1","x":%q,"y":%q}]}`,
		b64(pub[1:33]), b64(pub[33:]))
	addr := "127.0.0.1:" + strconv.Itoa(testproc.FreePort(t))

	m := startMizuchi(t, fltConfig(gw, "", fltBucket{name: "jwks", endpoint: gw.Endpoint, extra: fmt.Sprintf(`    auth:
      enabled: true
      jwt:
        algorithm: ES256
        jwks_url: http://%s/jwks.json
`, addr)}))
	token, err := jwt.Mint(jwt.MintOptions{Subject: "flt-jwks", KeyID: "flt-1",
		PrivateKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})})
	if err != nil {
		t.Fatal(err)
	}
	h := newFltHTTP()
	body := randomBytes(t, 64<<10)
	leaks := fltBaseline(t, m)

	status, code := h.put(t, m.URL+"/jwks/down.bin", token, body)
	if status != http.StatusServiceUnavailable || code != "ServiceUnavailable" {
		t.Fatalf("with the JWKS endpoint down: %d %s, want 503 ServiceUnavailable", status, code)
	}
	fltAssertClean(t, gw, "down.bin")
	fltCheckHTTP(t, leaks, h)

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, jwks)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	start := time.Now()
	deadline := start.Add(90 * time.Second)
	for {
		status, code = h.put(t, m.URL+"/jwks/up.bin", token, body)
		if status == http.StatusOK {
			break
		}
		if status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("after the JWKS endpoint came up: %d %s", status, code)
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("uploads accepted %v after the JWKS endpoint came up", time.Since(start).Round(time.Millisecond))
	fltAssertStored(t, gw, "up.bin", body)
	srv.Close()
	fltCheckHTTP(t, leaks, h)
}

// TestFaultTraceCollectorDown traces every request to a collector that
// refuses connections: single and auto-multipart uploads succeed whole,
// and the failing exporter leaks nothing.
func TestFaultTraceCollectorDown(t *testing.T) {
	t.Parallel()
	gw := versitygw.Start(t)
	gw.CreateBucket(t, fltStore)
	collector := "127.0.0.1:" + strconv.Itoa(testproc.FreePort(t))
	m := startMizuchi(t, fltConfig(gw, fmt.Sprintf(`tracing:
  enabled: true
  otlp: { endpoint: "http://%s", protocol: grpc, timeout_seconds: 1 }
  sampling: { strategy: always }
  batch: { scheduled_delay_millis: 100 }
`, collector), fltBucket{name: "mp4", endpoint: gw.Endpoint, conc: 4}))
	c := fltS3(t, m)
	ctx := fltCtx(t)
	put := func(key string, size int) {
		t.Helper()
		body := randomBytes(t, size)
		if err := fltPut(ctx, c, "mp4", key, body); err != nil {
			t.Fatalf("PutObject %s with the collector down: %v", key, err)
		}
		fltAssertStored(t, gw, key, body)
	}
	put("warm-up-small", 64<<10)
	put("warm-up-large", fltLarge)
	leaks := fltBaseline(t, m, c)
	for i := range 3 {
		put(fmt.Sprintf("small-%d", i), 64<<10)
		put(fmt.Sprintf("large-%d", i), fltLarge)
	}
	fltAssertClean(t, gw, "never-written")
	// Export attempts keep failing in the background while we measure.
	time.Sleep(time.Second)
	leaks.check(t)
}
