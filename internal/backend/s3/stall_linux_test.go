//go:build linux

package s3

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/mizuchi-uploadr/mizuchi/internal/backend"
	"github.com/mizuchi-uploadr/mizuchi/internal/config"
	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

// startDeafStore accepts connections, reads one request's headers and then
// never reads again, with a receive buffer so small that the request's
// body cannot all be taken by the kernel.
func startDeafStore(t *testing.T) string {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
			go func() { _, _ = http.ReadRequest(bufio.NewReaderSize(c, 1024)) }()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String()
}

// TestStoreThatStopsReadingTheLastBytesIsDetected covers a store that
// stops reading while the transport writes the last bytes of the body:
// everything was read from the body, yet the request is not fully
// written, so the response header timeout has not started. The stall
// watchdog must still fail it instead of waiting for the client to give
// up. (The body fits in one write of the transport and is larger than
// what the two small socket buffers take.)
func TestStoreThatStopsReadingTheLastBytesIsDetected(t *testing.T) {
	addr := startDeafStore(t)
	s, err := New(context.Background(), Options{
		Config: config.S3Backend{Bucket: "b", Region: "us-east-1", Endpoint: "http://" + addr,
			ForcePathStyle: true, AccessKey: "AKTEST", SecretKey: "secret-test-value"},
		// The client side's send buffer is small too, so what the kernel
		// takes is far less than the transport's 256 KiB write buffer.
		WrapTransport: func(rt http.RoundTripper) http.RoundTripper {
			tr := rt.(*http.Transport)
			dial := tr.DialContext
			tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := dial(ctx, network, addr)
				if tc, ok := c.(*net.TCPConn); ok {
					_ = tc.SetWriteBuffer(4096)
				}
				return c, err
			}
			return tr
		},
		StallTimeout:          time.Second,
		ResponseHeaderTimeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	data := randBytes(30 << 10)
	_, err = s.PutObject(ctx, &backend.PutObjectInput{Key: "k", Body: bytes.NewReader(data), Size: int64(len(data))})
	if !errors.Is(err, s3err.ErrServiceUnavailable) {
		t.Fatalf("err = %v, want ServiceUnavailable (a stalled store) before the client's deadline", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("the stall was only ended by the caller's deadline")
	}
}

// TestSlowAnswerAfterTheWholeBodyIsNotAStall: once the request is written,
// waiting for the answer is the response header timeout's business, not
// the stall watchdog's.
func TestSlowAnswerAfterTheWholeBodyIsNotAStall(t *testing.T) {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		time.Sleep(2 * time.Second)
		w.Header().Set("ETag", `"etag"`)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	s, err := New(context.Background(), Options{
		Config: config.S3Backend{Bucket: "b", Region: "us-east-1", Endpoint: "http://" + ln.Addr().String(),
			ForcePathStyle: true, AccessKey: "AKTEST", SecretKey: "secret-test-value"},
		StallTimeout:          500 * time.Millisecond,
		ResponseHeaderTimeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	data := randBytes(30 << 10)
	out, err := s.PutObject(ctxT(t), &backend.PutObjectInput{Key: "k", Body: bytes.NewReader(data), Size: int64(len(data))})
	if err != nil || out.ETag != `"etag"` {
		t.Fatalf("PutObject = %+v, %v", out, err)
	}
}
