package s3

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mizuchi-uploadr/mizuchi/internal/backend"
	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/faultproxy"
)

func isPart(r *http.Request) bool { return r.URL.Query().Has("partNumber") }

func TestStoreFaultsLeaveNoPartialObjectAndNoOpenUpload(t *testing.T) {
	e := startEnv(t)
	tcp := faultproxy.StartTCP(t, e.gw.Addr)
	hp := faultproxy.StartHTTP(t, e.gw.Addr)
	data := randBytes(12 << 20)

	type result int
	const (
		fails result = iota
		succeeds
	)
	cases := []struct {
		name    string
		http    bool // through the HTTP injector instead of the TCP proxy
		conc    int  // 0: plain PutObject below the threshold
		arm     func()
		want    result
		wantErr *s3err.Error
	}{
		{name: "reset mid-body of a single put", arm: func() { tcp.Arm(faultproxy.Fault{Action: faultproxy.Reset, AfterBytes: 3 << 20, Times: 1}) },
			want: fails, wantErr: s3err.ErrServiceUnavailable},
		{name: "reset mid-body of a streamed part", conc: 1, arm: func() { tcp.Arm(faultproxy.Fault{Action: faultproxy.Reset, AfterBytes: 7 << 20, Times: 1}) },
			want: fails, wantErr: s3err.ErrServiceUnavailable},
		{name: "reset mid-body of a buffered part is retried", conc: 4, arm: func() { tcp.Arm(faultproxy.Fault{Action: faultproxy.Reset, AfterBytes: 7 << 20, Times: 2}) },
			want: succeeds},
		{name: "store stalls mid-body of a single put", arm: func() { tcp.Arm(faultproxy.Fault{Action: faultproxy.Stall, AfterBytes: 2 << 20, Times: 1}) },
			want: fails, wantErr: s3err.ErrServiceUnavailable},
		{name: "store never answers", arm: func() { tcp.Arm(faultproxy.Fault{Action: faultproxy.Stall, AfterBytes: 0, Times: 1}) },
			want: fails, wantErr: s3err.ErrServiceUnavailable},
		{name: "store stalls a streamed part", conc: 1, arm: func() { tcp.Arm(faultproxy.Fault{Action: faultproxy.Stall, AfterBytes: 6 << 20, Times: 1}) },
			want: fails, wantErr: s3err.ErrServiceUnavailable},
		{name: "store stalls a buffered part past its deadline, retried", conc: 4, arm: func() { tcp.Arm(faultproxy.Fault{Action: faultproxy.Stall, AfterBytes: 6 << 20, Times: 1}) },
			want: succeeds},
		{name: "500 on parts then success", http: true, conc: 4, arm: func() {
			hp.Inject(faultproxy.Injection{Match: isPart, Times: 2, Status: 500, Code: "InternalError", DrainBody: true})
		}, want: succeeds},
		{name: "503 SlowDown on create and complete then success", http: true, conc: 4, arm: func() {
			hp.Inject(faultproxy.Injection{Match: func(r *http.Request) bool { return r.Method == http.MethodPost }, Times: 2, Status: 503, Code: "SlowDown"})
		}, want: succeeds},
		{name: "503 SlowDown on a single put is the client's answer", http: true, arm: func() {
			hp.Inject(faultproxy.Injection{Times: 1, Status: 503, Code: "SlowDown", DrainBody: true})
		}, want: fails, wantErr: s3err.ErrSlowDown},
		{name: "503 SlowDown on a streamed part is not retried", http: true, conc: 1, arm: func() {
			hp.Inject(faultproxy.Injection{Match: isPart, Times: 1, Status: 503, Code: "SlowDown", DrainBody: true})
		}, want: fails, wantErr: s3err.ErrSlowDown},
		{name: "persistent 500 on parts gives up and aborts", http: true, conc: 4, arm: func() {
			hp.Inject(faultproxy.Injection{Match: isPart, Status: 500, Code: "InternalError", DrainBody: true})
		}, want: fails, wantErr: s3err.ErrInternalError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			endpoint := "http://" + tcp.Addr
			if tc.http {
				endpoint = hp.URL
			}
			s := e.store(t, endpoint, func(o *Options) {
				o.StallTimeout = time.Second
				o.ResponseHeaderTimeout = 2 * time.Second
				o.MaxAttempts = 3
				if tc.conc > 0 {
					o.Upload.MultipartThreshold = 8 << 20
					o.Upload.ConcurrentParts = tc.conc
					o.Memory = NewMemoryBudget(8 << 20)
				}
			})
			body := data
			if tc.conc == 0 {
				body = data[:5<<20]
			}
			key := strings.ReplaceAll(tc.name, " ", "_")
			tc.arm()
			t.Cleanup(func() { tcp.Disarm(); hp.Clear() })
			start := time.Now()
			_, err := s.PutObject(ctxT(t), &backend.PutObjectInput{Key: key, Body: bytes.NewReader(body), Size: int64(len(body))})
			t.Logf("took %v: %v", time.Since(start).Round(time.Millisecond), err)
			tcp.Disarm()
			hp.Clear()
			if tc.want == succeeds {
				if err != nil {
					t.Fatalf("PutObject: %v", err)
				}
				assertStored(t, e, key, body)
				if n := e.gw.OpenUploads(t, testBucket); n != 0 {
					t.Errorf("%d uploads left open", n)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %s", err, tc.wantErr.Code)
			}
			e.assertClean(t, key)
		})
	}
}

// cancelAfter cancels the request's context once n bytes were read, as a
// client disconnect does.
type cancelAfter struct {
	r      io.Reader
	n      int64
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n -= int64(n)
	if c.n <= 0 {
		c.cancel()
	}
	return n, err
}

func TestClientDisconnectAbortsTheStoreUpload(t *testing.T) {
	e := startEnv(t)
	data := randBytes(20 << 20)
	for _, conc := range []int{0, 1, 4} {
		t.Run(map[int]string{0: "single put", 1: "streamed parts", 4: "buffered parts"}[conc], func(t *testing.T) {
			s := e.store(t, e.gw.Endpoint, func(o *Options) {
				if conc > 0 {
					o.Upload.MultipartThreshold = 8 << 20
					o.Upload.ConcurrentParts = conc
				}
			})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			key := "gone"
			_, err := s.PutObject(ctx, &backend.PutObjectInput{Key: key, Size: int64(len(data)),
				Body: &cancelAfter{r: bytes.NewReader(data), n: 13 << 20, cancel: cancel}})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			e.assertClean(t, key)
		})
	}
}

func TestErrorsNeverLeakTheStoreAddressBucketOrCredentials(t *testing.T) {
	e := startEnv(t)
	secrets := func(o Options) []string {
		return []string{o.Config.Endpoint, "127.0.0.1", o.Config.Bucket, o.Config.AccessKey, o.Config.SecretKey}
	}
	cases := []struct {
		name string
		mod  func(*Options)
		code string
	}{
		{name: "wrong secret", mod: func(o *Options) { o.Config.SecretKey = "wrong-secret-value" }, code: "SignatureDoesNotMatch"},
		{name: "unknown access key", mod: func(o *Options) { o.Config.AccessKey = "AKUNKNOWNKEY" }, code: "XAdminUserNotFound"}, // versitygw's own code, kept,
		{name: "missing bucket", mod: func(o *Options) { o.Config.Bucket = "private-store-bucket" }, code: "NoSuchBucket"},
		{name: "unreachable store", mod: func(o *Options) { o.Config.Endpoint = "http://127.0.0.1:1" }, code: "ServiceUnavailable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var opts Options
			s := e.store(t, e.gw.Endpoint, func(o *Options) { tc.mod(o); opts = *o })
			_, err := s.PutObject(ctxT(t), &backend.PutObjectInput{Key: "k", Body: strings.NewReader("x"), Size: 1})
			var se *s3err.Error
			if !errors.As(err, &se) || se.Code != tc.code {
				t.Fatalf("err = %v, want %s", err, tc.code)
			}
			mustNotContain(t, se.Message, secrets(opts)...)
			mustNotContain(t, se.Code, secrets(opts)...)
		})
	}
}
