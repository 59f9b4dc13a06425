package uploader

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

func newTestUploader(t *testing.T, o Options) *Uploader {
	t.Helper()
	if o.BaseDelay == 0 {
		o.BaseDelay = time.Millisecond
	}
	if o.MaxDelay == 0 {
		o.MaxDelay = 5 * time.Millisecond
	}
	u, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func objectAt(t *testing.T, srv string, path string, body []byte) Object {
	t.Helper()
	u, err := url.Parse(srv)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = path
	return Object{URL: u, Body: bytes.NewReader(body), Size: int64(len(body))}
}

// progressSum is an Object.Progress that adds up what it is told.
type progressSum struct{ n atomic.Int64 }

func (p *progressSum) add(d int64) { p.n.Add(d) }

func TestSmallObjectIsOnePutWithTypeMetadataAndMD5(t *testing.T) {
	f, srv := newFakeS3(t)
	u := newTestUploader(t, Options{MultipartThreshold: 1 << 20})
	body := payload(1000)
	obj := objectAt(t, srv.URL, "/uploads/dir/a file+ü.txt", body)
	obj.ContentType = "text/plain"
	obj.Metadata = map[string]string{"origin": "camera-7"}
	var prog progressSum
	obj.Progress = prog.add
	res, err := u.Upload(context.Background(), obj)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := f.object("/uploads/dir/a file+ü.txt")
	if !ok || !bytes.Equal(got, body) {
		t.Fatalf("stored %d bytes (ok=%v), want the %d sent", len(got), ok, len(body))
	}
	if res.Parts != 0 || res.Size != 1000 || !strings.HasPrefix(res.ETag, `"`) {
		t.Fatalf("result %+v", res)
	}
	h := f.headers["/uploads/dir/a file+ü.txt"]
	if h.Get("Content-Type") != "text/plain" || h.Get("X-Amz-Meta-Origin") != "camera-7" {
		t.Fatalf("headers %v", h)
	}
	if prog.n.Load() != 1000 {
		t.Fatalf("progress %d, want 1000", prog.n.Load())
	}
	reqs, _, _ := f.snapshot()
	if len(reqs) != 1 || reqs[0].Op != "PutObject" {
		t.Fatalf("requests %+v", reqs)
	}
}

func TestEmptyFileIsAZeroBytePut(t *testing.T) {
	f, srv := newFakeS3(t)
	// A zero threshold means the default; even a 1-byte threshold must not
	// turn an empty object into a multipart upload without parts.
	u := newTestUploader(t, Options{MultipartThreshold: 1, PartSize: 1})
	if _, err := u.Upload(context.Background(), objectAt(t, srv.URL, "/uploads/empty", nil)); err != nil {
		t.Fatal(err)
	}
	got, ok := f.object("/uploads/empty")
	if !ok || len(got) != 0 {
		t.Fatalf("stored %v %d", ok, len(got))
	}
	if reqs, _, _ := f.snapshot(); len(reqs) != 1 || reqs[0].Op != "PutObject" || reqs[0].Header.Get("Content-MD5") != "1B2M2Y8AsgTpgAmY7PhCfg==" {
		t.Fatalf("requests %+v", reqs)
	}
}

func TestMultipartPartBoundaries(t *testing.T) {
	tests := []struct {
		name      string
		size      int
		partSize  int64
		wantParts []int
	}{
		{"exactly the threshold, one part", 1000, 1000, []int{1000}},
		{"exact multiple", 3000, 1000, []int{1000, 1000, 1000}},
		{"short last part", 3007, 1000, []int{1000, 1000, 1000, 7}},
		{"one byte over", 1001, 1000, []int{1000, 1}},
		{"part size above size", 1500, 4096, []int{1500}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, srv := newFakeS3(t)
			u := newTestUploader(t, Options{MultipartThreshold: 1000, PartSize: tt.partSize, Concurrency: 3})
			body := payload(tt.size)
			var prog progressSum
			obj := objectAt(t, srv.URL, "/uploads/big.bin", body)
			obj.Progress = prog.add
			obj.ContentType, obj.Metadata = "application/x-test", map[string]string{"k": "v"}
			res, err := u.Upload(context.Background(), obj)
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := f.object("/uploads/big.bin"); !bytes.Equal(got, body) {
				t.Fatalf("reassembled %d bytes differ from the %d sent", len(got), len(body))
			}
			reqs, open, _ := f.snapshot()
			sizes := map[string]int{}
			for _, r := range reqs {
				if strings.HasPrefix(r.Op, "UploadPart") {
					sizes[r.Op] = r.Size
					if r.Header.Get("Content-MD5") == "" {
						t.Errorf("%s without Content-MD5", r.Op)
					}
				}
			}
			if len(sizes) != len(tt.wantParts) {
				t.Fatalf("parts %v, want sizes %v", sizes, tt.wantParts)
			}
			for i, want := range tt.wantParts {
				if got := sizes["UploadPart "+strconv.Itoa(i+1)]; got != want {
					t.Errorf("part %d: %d bytes, want %d", i+1, got, want)
				}
			}
			if res.Parts != len(tt.wantParts) || res.ETag == "" || len(open) != 0 {
				t.Fatalf("result %+v, open uploads %v", res, open)
			}
			if h := f.headers["/uploads/big.bin"]; h.Get("Content-Type") != "application/x-test" || h.Get("X-Amz-Meta-K") != "v" {
				t.Fatalf("CreateMultipartUpload headers %v", h)
			}
			if prog.n.Load() != int64(tt.size) {
				t.Fatalf("progress %d, want %d", prog.n.Load(), tt.size)
			}
		})
	}
}

func TestSlowDownAndServerErrorsAreRetried(t *testing.T) {
	f, srv := newFakeS3(t)
	f.inject = func(_ *http.Request, op string, attempt int) (int, string) {
		switch {
		case op == "PutObject" && attempt == 1:
			return 503, "SlowDown"
		case op == "UploadPart 2" && attempt <= 2:
			return 503, "SlowDown"
		case op == "CreateMultipartUpload" && attempt == 1:
			return 500, "InternalError"
		case op == "CompleteMultipartUpload" && attempt == 1:
			return 200, "InternalError" // error document in a 200 answer
		}
		return 0, ""
	}
	u := newTestUploader(t, Options{MultipartThreshold: 100, PartSize: 100, Concurrency: 2, Retries: 3})

	small := payload(50)
	var p1 progressSum
	obj := objectAt(t, srv.URL, "/uploads/small", small)
	obj.Progress = p1.add
	if _, err := u.Upload(context.Background(), obj); err != nil {
		t.Fatalf("put after SlowDown: %v", err)
	}
	if got, _ := f.object("/uploads/small"); !bytes.Equal(got, small) || f.count("PutObject") != 2 || p1.n.Load() != 50 {
		t.Fatalf("put: stored %d bytes after %d attempts, progress %d", len(got), f.count("PutObject"), p1.n.Load())
	}

	big := payload(350)
	var p2 progressSum
	obj = objectAt(t, srv.URL, "/uploads/big", big)
	obj.Progress = p2.add
	if _, err := u.Upload(context.Background(), obj); err != nil {
		t.Fatalf("multipart after SlowDown: %v", err)
	}
	if got, _ := f.object("/uploads/big"); !bytes.Equal(got, big) {
		t.Fatal("multipart object differs")
	}
	if f.count("UploadPart 2") != 3 || f.count("CreateMultipartUpload") != 2 || f.count("CompleteMultipartUpload") != 2 {
		t.Fatalf("attempts %v", f.attempts)
	}
	if p2.n.Load() != 350 {
		t.Fatalf("progress %d after retries, want 350 (failed attempts taken back)", p2.n.Load())
	}
}

func TestPartFailingPermanentlyAbortsTheUpload(t *testing.T) {
	tests := []struct {
		name         string
		status       int
		code         string
		wantKind     Kind
		wantAttempts int
	}{
		{"server error after retries", 500, "InternalError", KindUnavailable, 3},
		{"slow down after retries", 503, "SlowDown", KindUnavailable, 3},
		{"client error is not retried", 400, "EntityTooSmall", KindFailed, 1},
		{"denied part", 403, "AccessDenied", KindAuth, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, srv := newFakeS3(t)
			f.inject = func(_ *http.Request, op string, _ int) (int, string) {
				if op == "UploadPart 2" {
					return tt.status, tt.code
				}
				return 0, ""
			}
			u := newTestUploader(t, Options{MultipartThreshold: 100, PartSize: 100, Concurrency: 2, Retries: 2})
			_, err := u.Upload(context.Background(), objectAt(t, srv.URL, "/uploads/x", payload(450)))
			var se *Error
			if !errors.As(err, &se) || se.Code != tt.code || se.Op != "UploadPart 2" || se.RequestID != "fake-req" {
				t.Fatalf("error %v, want %s on part 2", err, tt.code)
			}
			if k := Classify(err); k != tt.wantKind {
				t.Fatalf("kind %v, want %v", k, tt.wantKind)
			}
			if n := f.count("UploadPart 2"); n != tt.wantAttempts {
				t.Fatalf("part 2 sent %d times, want %d", n, tt.wantAttempts)
			}
			_, open, aborted := f.snapshot()
			if len(open) != 0 || len(aborted) != 1 {
				t.Fatalf("open uploads %v, aborted %v", open, aborted)
			}
			if _, ok := f.object("/uploads/x"); ok || f.count("CompleteMultipartUpload") != 0 {
				t.Fatal("object completed despite a failed part")
			}
		})
	}
}

func TestCancelMidUploadAbortsTheUpload(t *testing.T) {
	f, srv := newFakeS3(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var once sync.Once
	f.hook = func(r *http.Request, part int) {
		if part == 3 {
			once.Do(cancel) // Ctrl-C while part 3 is in flight
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		}
	}
	u := newTestUploader(t, Options{MultipartThreshold: 100, PartSize: 100, Concurrency: 1, Retries: 3})
	_, err := u.Upload(ctx, objectAt(t, srv.URL, "/uploads/x", payload(1000)))
	if Classify(err) != KindCanceled || !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v (kind %v), want cancellation", err, Classify(err))
	}
	reqs, open, aborted := f.snapshot()
	if len(open) != 0 || len(aborted) != 1 {
		t.Fatalf("open uploads %v, aborted %v", open, aborted)
	}
	for _, r := range reqs {
		if r.Op == "UploadPart 5" || r.Op == "CompleteMultipartUpload" {
			t.Fatalf("%s sent after cancellation", r.Op)
		}
	}
	if f.count("UploadPart 3") != 1 {
		t.Fatal("a cancelled part was retried")
	}
}

func TestBearerTokenOnEveryRequest(t *testing.T) {
	f, srv := newFakeS3(t)
	f.token = "tok.en.value"
	u := newTestUploader(t, Options{MultipartThreshold: 100, PartSize: 100, Signer: Bearer("tok.en.value")})
	if _, err := u.Upload(context.Background(), objectAt(t, srv.URL, "/uploads/x", payload(250))); err != nil {
		t.Fatal(err)
	}
	reqs, _, _ := f.snapshot()
	if len(reqs) != 5 { // create, 3 parts, complete
		t.Fatalf("%d requests", len(reqs))
	}
	for _, r := range reqs {
		if r.Header.Get("Authorization") != "Bearer tok.en.value" {
			t.Fatalf("%s: Authorization %q", r.Op, r.Header.Get("Authorization"))
		}
	}

	anon := newTestUploader(t, Options{Retries: 3})
	_, err := anon.Upload(context.Background(), objectAt(t, srv.URL, "/uploads/y", payload(10)))
	var se *Error
	if !errors.As(err, &se) || se.StatusCode != 401 || Classify(err) != KindAuth || f.count("PutObject") != 1 {
		t.Fatalf("anonymous upload to a token bucket: %v (kind %v, %d attempts)", err, Classify(err), f.count("PutObject"))
	}
}

func TestSigV4SignaturesVerify(t *testing.T) {
	f, srv := newFakeS3(t)
	f.accessKey, f.secretKey, f.region = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "eu-west-3"
	signer := SigV4{AccessKey: f.accessKey, SecretKey: f.secretKey, Region: f.region}
	u := newTestUploader(t, Options{MultipartThreshold: 100, PartSize: 100, Concurrency: 2, Signer: signer})

	for _, key := range []string{"/uploads/plain.bin", "/uploads/dir/spaces and+plus=ü~(1).bin"} {
		for _, size := range []int{0, 60, 250} {
			body := payload(size)
			if _, err := u.Upload(context.Background(), objectAt(t, srv.URL, key, body)); err != nil {
				t.Fatalf("%s (%d bytes): %v", key, size, err)
			}
			if got, _ := f.object(key); !bytes.Equal(got, body) {
				t.Fatalf("%s: stored bytes differ", key)
			}
		}
	}
	reqs, _, _ := f.snapshot()
	for _, r := range reqs {
		if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/") ||
			len(r.Header.Get("X-Amz-Content-Sha256")) != 64 {
			t.Fatalf("%s: not signed with a payload hash: %v", r.Op, r.Header)
		}
	}

	wrong := newTestUploader(t, Options{Retries: 3, Signer: SigV4{AccessKey: f.accessKey, SecretKey: "not-the-secret", Region: f.region}})
	before := f.count("PutObject")
	_, err := wrong.Upload(context.Background(), objectAt(t, srv.URL, "/uploads/z", payload(10)))
	var se *Error
	if !errors.As(err, &se) || se.Code != "SignatureDoesNotMatch" || Classify(err) != KindAuth || f.count("PutObject") != before+1 {
		t.Fatalf("wrong secret: %v", err)
	}
}

// flakyReaderAt returns corrupted bytes on the n-th read at offset 0:
// the digest pass sees the good bytes, the send pass does not.
type flakyReaderAt struct {
	b       []byte
	reads   atomic.Int32
	corrupt int32
}

func (r *flakyReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := bytes.NewReader(r.b).ReadAt(p, off)
	if off == 0 && r.reads.Add(1) == r.corrupt && n > 0 {
		p[0] ^= 0xff
	}
	return n, err
}

func TestCorruptedBodyIsCaughtAndResent(t *testing.T) {
	f, srv := newFakeS3(t)
	body := payload(300)
	u := newTestUploader(t, Options{MultipartThreshold: 1 << 20, Retries: 2})
	obj := objectAt(t, srv.URL, "/uploads/c", body)
	obj.Body = &flakyReaderAt{b: body, corrupt: 2}
	if _, err := u.Upload(context.Background(), obj); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.object("/uploads/c"); !bytes.Equal(got, body) || f.count("PutObject") != 2 {
		t.Fatalf("stored intact=%v after %d attempts", bytes.Equal(got, body), f.count("PutObject"))
	}
}

func TestUnreachableServerIsUnavailableAfterRetries(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	u := newTestUploader(t, Options{Retries: 2})
	_, err = u.Upload(context.Background(), objectAt(t, "http://"+addr, "/uploads/x", payload(10)))
	var te *TransportError
	if !errors.As(err, &te) || Classify(err) != KindUnavailable {
		t.Fatalf("error %v (kind %v)", err, Classify(err))
	}
}

type failingReaderAt struct{}

func (failingReaderAt) ReadAt([]byte, int64) (int, error) { return 0, errors.New("disk on fire") }

func TestUnreadableSourceFailsWithoutRetry(t *testing.T) {
	f, srv := newFakeS3(t)
	u := newTestUploader(t, Options{Retries: 3})
	obj := objectAt(t, srv.URL, "/uploads/x", payload(10))
	obj.Body = failingReaderAt{}
	_, err := u.Upload(context.Background(), obj)
	if err == nil || !strings.Contains(err.Error(), "disk on fire") || Classify(err) != KindFailed || f.count("PutObject") != 0 {
		t.Fatalf("error %v", err)
	}
}

func TestPartSizeGrowsToFitMaxParts(t *testing.T) {
	u := newTestUploader(t, Options{PartSize: 16 << 20})
	tests := []struct {
		name string
		size int64
		want int64
	}{
		{"fits", 100 << 30, 16 << 20},
		{"exactly max parts", MaxParts * (16 << 20), 16 << 20},
		{"one byte more", MaxParts*(16<<20) + 1, 17 << 20},
		{"5 TiB", 5 << 40, 525 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := u.PartSizeFor(tt.size)
			if got != tt.want || (tt.size+got-1)/got > MaxParts {
				t.Fatalf("PartSizeFor(%d) = %d, want %d", tt.size, got, tt.want)
			}
		})
	}
}

func TestS3EscapePath(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"unreserved", "/a/B-c_d.e~f", "/a/B-c_d.e~f"},
		{"space plus equals", "/a b+c=d", "/a%20b%2Bc%3Dd"},
		{"utf-8", "/ü", "/%C3%BC"},
		{"percent", "/100%", "/100%25"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := s3EscapePath(tt.in); got != tt.want {
				t.Fatalf("%q → %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want Kind
	}{
		{"nil", nil, KindOK},
		{"no such bucket", &Error{StatusCode: 404, Code: "NoSuchBucket"}, KindFailed},
		{"unauthorized", &Error{StatusCode: 401, Code: "AccessDenied"}, KindAuth},
		{"forbidden", &Error{StatusCode: 403, Code: "SignatureDoesNotMatch"}, KindAuth},
		{"unavailable", &Error{StatusCode: 503, Code: "ServiceUnavailable"}, KindUnavailable},
		{"transport", &TransportError{Op: "PutObject", Err: io.ErrUnexpectedEOF}, KindUnavailable},
		{"cancelled", context.Canceled, KindCanceled},
		{"joined with abort failure", errors.Join(context.Canceled, &TransportError{Err: io.EOF}), KindCanceled},
		{"local", errors.New("open x: no such file"), KindFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Classify(tt.err); got != tt.want {
				t.Fatalf("Classify(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}
