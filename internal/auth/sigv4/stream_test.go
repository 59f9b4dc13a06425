package sigv4

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

// chunkedWire generates a signed aws-chunked body on the fly, so a large
// body never exists in memory.
type chunkedWire struct {
	key             []byte
	amzDate, scope  string
	prev            string
	left, chunkSize int
	pending         bytes.Buffer
	done            bool
	chunk           []byte
}

func newChunkedWire(key []byte, amzDate, scope, seed string, size, chunkSize int) *chunkedWire {
	c := &chunkedWire{key: key, amzDate: amzDate, scope: scope, prev: seed, left: size, chunkSize: chunkSize, chunk: make([]byte, chunkSize)}
	for i := range c.chunk {
		c.chunk[i] = byte(i * 7)
	}
	return c
}

func (c *chunkedWire) sign(data []byte) string {
	sum := sha256.Sum256(data)
	sts := "AWS4-HMAC-SHA256-PAYLOAD\n" + c.amzDate + "\n" + c.scope + "\n" + c.prev + "\n" + emptySHA256Hex + "\n" + hex.EncodeToString(sum[:])
	c.prev = signHex(c.key, sts)
	return c.prev
}

func (c *chunkedWire) Read(p []byte) (int, error) {
	for c.pending.Len() == 0 {
		if c.done {
			return 0, io.EOF
		}
		n := min(c.left, c.chunkSize)
		data := c.chunk[:n]
		fmt.Fprintf(&c.pending, "%x;chunk-signature=%s\r\n", n, c.sign(data))
		c.pending.Write(data)
		c.pending.WriteString("\r\n")
		c.left -= n
		if n == 0 {
			c.done = true
		}
	}
	return c.pending.Read(p)
}

func streamingRequest(t testing.TB, size, chunkSize int) *http.Request {
	t.Helper()
	r := httptest.NewRequest(http.MethodPut, "http://uploads.example/bucket/big.bin", nil)
	r.Header.Set("X-Amz-Content-Sha256", StreamingPayload)
	r.Header.Set("X-Amz-Decoded-Content-Length", fmt.Sprint(size))
	r.Header.Set("Content-Encoding", "aws-chunked")
	r.Header.Set("X-Amz-Date", fixedNow.Format(amzDateLayout))
	signedHeaders := "content-encoding;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length"
	scope := fixedNow.Format("20060102") + "/" + testRegion + "/s3/aws4_request"
	key := signingKey(testSK, fixedNow.Format("20060102"), testRegion, "s3")
	sh := strings.Split(signedHeaders, ";")
	seed := signHex(key, stringToSign(fixedNow.Format(amzDateLayout), scope, canonicalRequest(r, "/bucket/big.bin", "", sh, signedHeaders, StreamingPayload)))
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+testAK+"/"+scope+", SignedHeaders="+signedHeaders+", Signature="+seed)
	r.Body = io.NopCloser(newChunkedWire(key, fixedNow.Format(amzDateLayout), scope, seed, size, chunkSize))
	r.ContentLength = -1
	return r
}

// TestLargeStreamedBodyUsesBoundedMemory decodes 64 MiB of signed chunks
// and checks the heap allocated by decoding does not grow with the body.
func TestLargeStreamedBodyUsesBoundedMemory(t *testing.T) {
	a, err := New(testConfig(), Options{Now: func() time.Time { return fixedNow }})
	if err != nil {
		t.Fatal(err)
	}
	measure := func(size int) (uint64, int64) {
		r := streamingRequest(t, size, 64<<10)
		if _, err := a.Authenticate(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		// The generator allocates too; count the decoder's share by
		// comparing a small and a large body.
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		n, err := io.CopyBuffer(io.Discard, r.Body, make([]byte, 32<<10))
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatal(err)
		}
		return after.TotalAlloc - before.TotalAlloc, n
	}
	small, n1 := measure(1 << 20)
	large, n2 := measure(64 << 20)
	if n1 != 1<<20 || n2 != 64<<20 {
		t.Fatalf("decoded %d and %d bytes", n1, n2)
	}
	t.Logf("allocated %d bytes for 1 MiB, %d bytes for 64 MiB", small, large)
	// Per-chunk bookkeeping (hash state, hex strings, the generator's
	// signing) is allowed; copying the payload is not: 64 MiB through
	// 64 KiB chunks is 1024 chunks, so anything near the body size fails.
	if large > 16<<20 {
		t.Fatalf("decoding 64 MiB allocated %d bytes", large)
	}
}

func TestChunkedDecoderRefusesHostileFraming(t *testing.T) {
	key := signingKey(testSK, "20260314", testRegion, "s3")
	cases := []struct {
		name string
		wire string
		cfg  chunkedConfig
		want *s3err.Error
	}{
		{name: "endless size line", wire: strings.Repeat("f", 10000), want: s3err.ErrInvalidRequest},
		{name: "size too large", wire: "fffffffffffffffff\r\n", want: s3err.ErrInvalidRequest},
		{name: "chunk beyond decoded length", wire: "10\r\n0123456789abcdef\r\n0\r\n\r\n", cfg: chunkedConfig{decodedLength: 4}, want: s3err.ErrInvalidRequest},
		{name: "short body", wire: "10\r\n01234", cfg: chunkedConfig{decodedLength: 16}, want: s3err.ErrIncompleteBody},
		{name: "final chunk too early", wire: "4\r\nabcd\r\n0\r\n\r\n", cfg: chunkedConfig{decodedLength: 8}, want: s3err.ErrIncompleteBody},
		{name: "missing CRLF after data", wire: "4\r\nabcdXX0\r\n\r\n", cfg: chunkedConfig{decodedLength: 8}, want: s3err.ErrInvalidRequest},
		{name: "garbage after final chunk", wire: "4\r\nabcd\r\n0\r\n\r\nGET / HTTP/1.1\r\n", cfg: chunkedConfig{decodedLength: 4}, want: s3err.ErrInvalidRequest},
		{name: "endless trailer", wire: "0\r\n" + strings.Repeat("x-a:b\r\n", 100), cfg: chunkedConfig{trailer: true}, want: s3err.ErrInvalidRequest},
		{name: "missing declared trailer", wire: "0\r\n\r\n", cfg: chunkedConfig{trailer: true, checksumAlg: "CRC32"}, want: s3err.ErrInvalidRequest},
		{name: "missing chunk signature", wire: "4\r\nabcd\r\n", cfg: chunkedConfig{signed: true, decodedLength: 4, key: key}, want: s3err.ErrInvalidRequest},
		{name: "signed trailer without signature", wire: "0;chunk-signature=" + strings.Repeat("0", 64) + "\r\n", cfg: chunkedConfig{signed: true, trailer: true, key: key}, want: s3err.ErrSignatureDoesNotMatch},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cr := newChunkedReader(io.NopCloser(strings.NewReader(c.wire)), c.cfg)
			_, err := io.ReadAll(cr)
			if !errors.Is(err, c.want) {
				t.Fatalf("err %v, want %s", err, c.want.Code)
			}
		})
	}
}

func TestHashReaderWithholdsLastByte(t *testing.T) {
	body := []byte("the quick brown fox")
	good := hexSHA(body)
	bad := hexSHA([]byte("something else"))
	for _, length := range []int64{int64(len(body)), -1} {
		for _, one := range []bool{false, true} {
			name := fmt.Sprintf("length %d, one byte reads %v", length, one)
			t.Run(name, func(t *testing.T) {
				var src io.Reader = bytes.NewReader(body)
				if one {
					src = iotest.OneByteReader(src)
				}
				got, err := io.ReadAll(newHashReader(io.NopCloser(src), length, good))
				if err != nil || !bytes.Equal(got, body) {
					t.Fatalf("good body: %q %v", got, err)
				}
				src = bytes.NewReader(body)
				if one {
					src = iotest.OneByteReader(src)
				}
				got, err = io.ReadAll(newHashReader(io.NopCloser(src), length, bad))
				if !errors.Is(err, s3err.ErrXAmzContentSHA256Mismatch) || len(got) >= len(body) {
					t.Fatalf("bad body: %d bytes handed out, err %v", len(got), err)
				}
			})
		}
	}
	// One-byte reads from the consumer side.
	r := newHashReader(io.NopCloser(bytes.NewReader(body)), -1, good)
	got, err := io.ReadAll(iotest.OneByteReader(r))
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("one-byte consumer: %q %v", got, err)
	}
	r = newHashReader(io.NopCloser(bytes.NewReader(body)), -1, bad)
	got, err = io.ReadAll(iotest.OneByteReader(r))
	if err == nil || len(got) >= len(body) {
		t.Fatalf("one-byte consumer, bad body: %d bytes, %v", len(got), err)
	}
	// A short body is IncompleteBody.
	r = newHashReader(io.NopCloser(bytes.NewReader(body[:5])), int64(len(body)), good)
	if _, err := io.ReadAll(r); !errors.Is(err, s3err.ErrIncompleteBody) {
		t.Fatalf("short body: %v", err)
	}
}

// A declared empty body (Content-Length: 0) that still comes with a body
// reader, as HTTP/2 requests do, must match its signed payload hash too.
func TestEmptyBodyIsHashChecked(t *testing.T) {
	for _, c := range []struct {
		name string
		hash string
		want error
	}{
		{name: "empty hash", hash: emptySHA256Hex},
		{name: "hash of other bytes", hash: hexSHA([]byte("not empty")), want: s3err.ErrXAmzContentSHA256Mismatch},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPut, "http://uploads.example/bucket/key.txt", nil)
			r.Header.Set("X-Amz-Content-Sha256", c.hash)
			creds := aws.Credentials{AccessKeyID: testAK, SecretAccessKey: testSK}
			if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, c.hash, "s3", testRegion, fixedNow); err != nil {
				t.Fatal(err)
			}
			r.Body, r.ContentLength = io.NopCloser(strings.NewReader("")), 0
			_, err := fixedAuth(t).Authenticate(context.Background(), r)
			if err == nil {
				_, err = io.ReadAll(r.Body)
			}
			if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("err %v, want %v", err, c.want)
			}
		})
	}
}
