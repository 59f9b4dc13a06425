package sigv4

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
	"time"
)

func BenchmarkVerifyHeader(b *testing.B) {
	a, err := New(testConfig(), Options{Now: func() time.Time { return fixedNow }})
	if err != nil {
		b.Fatal(err)
	}
	r := signedForBench(b)
	auth := r.Header.Get("Authorization")
	b.ReportAllocs()
	for b.Loop() {
		r.Header.Set("Authorization", auth)
		r.Body = http.NoBody
		if _, err := a.Authenticate(context.Background(), r); err != nil {
			b.Fatal(err)
		}
	}
}

func signedForBench(b *testing.B) *http.Request {
	return signed(b, defaultSpec(), func(r *http.Request) { r.Header.Set("Content-Type", "application/octet-stream") })
}

func BenchmarkChunkedDecode(b *testing.B) {
	a, err := New(testConfig(), Options{Now: func() time.Time { return fixedNow }})
	if err != nil {
		b.Fatal(err)
	}
	const size = 8 << 20
	buf := make([]byte, 32<<10)
	b.SetBytes(size)
	b.ReportAllocs()
	// The wire is generated once so only decoding is measured.
	proto := streamingRequest(b, size, 64<<10)
	wire, err := io.ReadAll(proto.Body)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		r := proto.Clone(context.Background())
		r.Body = io.NopCloser(bytes.NewReader(wire))
		if _, err := a.Authenticate(context.Background(), r); err != nil {
			b.Fatal(err)
		}
		if _, err := io.CopyBuffer(io.Discard, r.Body, buf); err != nil {
			b.Fatal(err)
		}
	}
}
