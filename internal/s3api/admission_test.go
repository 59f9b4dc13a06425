package s3api

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

func TestAdmissionShares(t *testing.T) {
	a := NewAdmission(5, 2)
	take := func(client string) func() {
		t.Helper()
		r, ok := a.acquire(client)
		if !ok {
			t.Fatalf("%s refused with %d in flight", client, a.InFlight())
		}
		return r
	}
	refused := func(client string) {
		t.Helper()
		if _, ok := a.acquire(client); ok {
			t.Fatalf("%s admitted over a limit (%d in flight)", client, a.InFlight())
		}
	}
	r1 := take("192.0.2.1")
	take("::ffff:192.0.2.1") // the same address, IPv4-mapped
	refused("192.0.2.1")
	take("2001:db8:1:2::1")
	take("2001:db8:1:2:ffff::9")
	refused("2001:db8:1:2::7") // the same /64
	take("192.0.2.2")
	refused("192.0.2.3") // the total
	refused("")          // no address: only the total counts
	r1()
	r1() // a second release changes nothing
	if a.InFlight() != 4 {
		t.Fatalf("in flight %d after one release", a.InFlight())
	}
	take("192.0.2.3")
	refused("192.0.2.4")
}

func TestAdmissionRefusesUploadsBeforeTheBody(t *testing.T) {
	adm := NewAdmission(1, 1)
	f := newFixture(t, config.Upload{}, func(o *Options) { o.Admission = adm })
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		req, err := http.NewRequest("PUT", f.srv.URL+"/b/alice/held.bin", pr)
		if err != nil {
			panic(err)
		}
		req.ContentLength = 4
		req.Header.Set("X-Test-Subject", "alice")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	for adm.InFlight() == 0 {
		select {
		case code := <-done:
			t.Fatalf("the held upload ended: %d", code)
		case <-time.After(time.Millisecond):
		}
	}
	for _, tc := range []struct{ method, path string }{
		{"PUT", "/b/bob/second.bin"},
		{"PUT", "/b/bob/part.bin?partNumber=1&uploadId=x"},
		{"POST", "/b/bob/done.bin?uploadId=x"},
	} {
		body := &recordingBody{r: strings.NewReader("data")}
		resp, b := f.do(t, tc.method, tc.path, "bob", body, 4, map[string]string{"Expect": "100-continue"})
		if resp.StatusCode != 503 || errorCode(t, b) != "SlowDown" || resp.Header.Get("Retry-After") != RetryAfterSeconds {
			t.Fatalf("%s %s over the limit: %d %s, Retry-After %q", tc.method, tc.path, resp.StatusCode, b, resp.Header.Get("Retry-After"))
		}
		if body.read.Load() {
			t.Fatalf("%s %s: the refused body was read", tc.method, tc.path)
		}
	}
	// Requests without an upload body are not counted.
	if resp, b := f.do(t, "POST", "/b/bob/mp.bin?uploads", "bob", nil, 0, nil); resp.StatusCode != 200 {
		t.Fatalf("CreateMultipartUpload: %d %s", resp.StatusCode, b)
	}
	if n := testutil.ToFloat64(f.metrics.LimitRefusals.WithLabelValues("b", "inflight_uploads")); n != 3 {
		t.Fatalf("mizuchi_limit_refusals_total = %v", n)
	}
	_, _ = pw.Write([]byte("held"))
	pw.Close()
	if code := <-done; code != 200 {
		t.Fatalf("the held upload: %d", code)
	}
	if adm.InFlight() != 0 {
		t.Fatalf("%d in flight after the upload", adm.InFlight())
	}
	// A refused or failed upload gives its slot back too.
	if resp, _ := f.do(t, "PUT", "/b/alice/not-bobs.bin", "bob", strings.NewReader("data"), 4, nil); resp.StatusCode != 403 {
		t.Fatalf("a denied upload: %d", resp.StatusCode)
	}
	if resp, b := f.do(t, "PUT", "/b/bob/after.bin", "bob", strings.NewReader("data"), 4, nil); resp.StatusCode != 200 {
		t.Fatalf("after: %d %s", resp.StatusCode, b)
	}
}

func TestDescriptorsExhaustedIsSlowDown(t *testing.T) {
	emfile := &os.PathError{Op: "open", Path: "/data/.tmp", Err: syscall.EMFILE}
	other := errors.New("disk on fire")
	tests := []struct {
		name string
		err  error
		code string
	}{
		{"plain EMFILE", emfile, "SlowDown"},
		{"wrapped ENFILE", fmt.Errorf("dial: %w", syscall.ENFILE), "SlowDown"},
		{"InternalError caused by EMFILE", s3err.ErrInternalError.WithCause(emfile), "SlowDown"},
		{"client error with an EMFILE cause stays", s3err.ErrAccessDenied.WithCause(emfile), "AccessDenied"},
		{"other errors stay", other, "InternalError"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := s3err.As(descriptorsExhausted(tt.err))
			if e.Code != tt.code {
				t.Fatalf("code %s, want %s", e.Code, tt.code)
			}
			if tt.code == "SlowDown" && (e.Status != 503 || e.Header.Get("Retry-After") == "" || !errors.Is(e, syscall.EMFILE) && !errors.Is(e, syscall.ENFILE)) {
				t.Fatalf("%+v", e)
			}
		})
	}
	if descriptorsExhausted(nil) != nil {
		t.Fatal("nil became an error")
	}
}
