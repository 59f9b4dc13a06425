package sigv4

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/minio/minio-go/v7/pkg/signer"

	"github.com/mizuchi-uploadr/mizuchi/internal/checksum"
	"github.com/mizuchi-uploadr/mizuchi/internal/config"
	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

const (
	testAK     = "AKIAMIZUCHITEST"
	testSK     = "mizuchi/test/secret+key"
	testRegion = "eu-west-3"
)

func testConfig() config.SigV4 {
	return config.SigV4{Region: testRegion, MaxClockSkewSeconds: 300, Credentials: []config.Credential{
		{AccessKey: testAK, SecretKey: testSK, Subject: "alice"},
		{AccessKey: "AKIATOKEN", SecretKey: "token-secret", SessionToken: "session-token-1", Subject: "bob"},
	}}
}

// result is what the test server saw for one request.
type result struct {
	subject  string
	body     []byte
	err      error
	length   int64
	encoding []string
	alg, sum string
}

// startServer serves a's verification over real HTTP on loopback and
// reports each request's outcome.
func startServer(t *testing.T, a *Authenticator) (*httptest.Server, func() result) {
	t.Helper()
	var mu sync.Mutex
	var last result
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var res result
		p, err := a.Authenticate(r.Context(), r)
		if err == nil {
			res.subject = p.Subject
			res.length = r.ContentLength
			res.encoding = r.Header.Values("Content-Encoding")
			res.body, err = io.ReadAll(r.Body)
			res.alg, res.sum, _ = TrailerChecksum(r.Body)
		}
		res.err = err
		mu.Lock()
		last = res
		mu.Unlock()
		if err != nil {
			e := s3err.As(err)
			http.Error(w, e.Code, e.Status)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	return srv, func() result { mu.Lock(); defer mu.Unlock(); return last }
}

func do(t *testing.T, req *http.Request) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		// The server may refuse before the whole body is sent.
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

func hexSHA(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func newAuth(t testing.TB, cfg config.SigV4) *Authenticator {
	t.Helper()
	a, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAWSSDKSignedRequests(t *testing.T) {
	a := newAuth(t, testConfig())
	srv, last := startServer(t, a)
	creds := aws.Credentials{AccessKeyID: testAK, SecretAccessKey: testSK}
	s3opts := func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }
	body := []byte("hello, mizuchi uploads")
	keyPath := "/bucket/dir/a key+with$odd=chars~ü.txt"
	escaped := "/bucket/dir/a%20key%2Bwith%24odd%3Dchars~%C3%BC.txt"

	cases := []struct {
		name     string
		payload  string // x-amz-content-sha256
		sendBody []byte
		wantErr  *s3err.Error
	}{
		{name: "hex sha256", payload: hexSHA(body), sendBody: body},
		{name: "unsigned payload", payload: UnsignedPayload, sendBody: body},
		{name: "hex sha256 of other bytes", payload: hexSHA([]byte("other")), sendBody: body, wantErr: s3err.ErrXAmzContentSHA256Mismatch},
	}
	for _, c := range cases {
		t.Run("header/"+c.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPut, srv.URL+escaped+"?x-id=PutObject", bytes.NewReader(c.sendBody))
			req.URL.RawPath = escaped
			req.Header.Set("X-Amz-Content-Sha256", c.payload)
			req.Header.Set("Content-Type", "text/plain")
			if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, c.payload, "s3", testRegion, time.Now(), s3opts); err != nil {
				t.Fatal(err)
			}
			do(t, req)
			res := last()
			if c.wantErr != nil {
				if !errors.Is(res.err, c.wantErr) {
					t.Fatalf("err %v, want %v", res.err, c.wantErr)
				}
				return
			}
			if res.err != nil || res.subject != "alice" || !bytes.Equal(res.body, c.sendBody) {
				t.Fatalf("err %v subject %q body %q", res.err, res.subject, res.body)
			}
		})
	}
	t.Run("header/path as sent", func(t *testing.T) {
		if !strings.Contains(keyPath, " ") {
			t.Fatal("bad fixture")
		}
		req, _ := http.NewRequest(http.MethodPut, srv.URL+escaped, bytes.NewReader(body))
		req.Header.Set("X-Amz-Content-Sha256", hexSHA(body))
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hexSHA(body), "s3", testRegion, time.Now(), s3opts); err != nil {
			t.Fatal(err)
		}
		do(t, req)
		if res := last(); res.err != nil {
			t.Fatal(res.err)
		}
	})
	t.Run("header/wrong secret", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPut, srv.URL+"/bucket/k", bytes.NewReader(body))
		req.Header.Set("X-Amz-Content-Sha256", hexSHA(body))
		bad := creds
		bad.SecretAccessKey = "wrong"
		_ = v4.NewSigner().SignHTTP(context.Background(), bad, req, hexSHA(body), "s3", testRegion, time.Now(), s3opts)
		do(t, req)
		if res := last(); !errors.Is(res.err, s3err.ErrSignatureDoesNotMatch) {
			t.Fatalf("err %v", res.err)
		}
	})
	t.Run("header/skewed clock", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPut, srv.URL+"/bucket/k", bytes.NewReader(body))
		req.Header.Set("X-Amz-Content-Sha256", hexSHA(body))
		_ = v4.NewSigner().SignHTTP(context.Background(), creds, req, hexSHA(body), "s3", testRegion, time.Now().Add(-10*time.Minute), s3opts)
		do(t, req)
		if res := last(); !errors.Is(res.err, s3err.ErrRequestTimeTooSkewed) {
			t.Fatalf("err %v", res.err)
		}
	})
	t.Run("presigned", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPut, srv.URL+escaped+"?partNumber=1&uploadId=abc&X-Amz-Expires=900", nil)
		uri, hdr, err := v4.NewSigner().PresignHTTP(context.Background(), creds, req, UnsignedPayload, "s3", testRegion, time.Now(), s3opts)
		if err != nil {
			t.Fatal(err)
		}
		put, _ := http.NewRequest(http.MethodPut, uri, bytes.NewReader(body))
		for k, v := range hdr {
			put.Header[k] = v
		}
		do(t, put)
		if res := last(); res.err != nil || !bytes.Equal(res.body, body) {
			t.Fatalf("err %v body %q", res.err, res.body)
		}
		// A changed query parameter breaks the signature.
		put, _ = http.NewRequest(http.MethodPut, strings.Replace(uri, "partNumber=1", "partNumber=2", 1), bytes.NewReader(body))
		do(t, put)
		if res := last(); !errors.Is(res.err, s3err.ErrSignatureDoesNotMatch) {
			t.Fatalf("err %v", res.err)
		}
	})
	t.Run("presigned/expired", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPut, srv.URL+"/bucket/k", nil)
		q := req.URL.Query()
		q.Set("X-Amz-Expires", "60")
		req.URL.RawQuery = q.Encode()
		uri, _, err := v4.NewSigner().PresignHTTP(context.Background(), creds, req, UnsignedPayload, "s3", testRegion, time.Now().Add(-2*time.Minute), s3opts)
		if err != nil {
			t.Fatal(err)
		}
		put, _ := http.NewRequest(http.MethodPut, uri, bytes.NewReader(body))
		do(t, put)
		res := last()
		if !errors.Is(res.err, s3err.ErrAccessDenied) || !strings.Contains(s3err.As(res.err).Message, "expired") {
			t.Fatalf("err %v", res.err)
		}
	})
}

type sha256Hasher struct{ hash.Hash }

func (sha256Hasher) Close() {}

func TestMinioStreamingBodies(t *testing.T) {
	a := newAuth(t, testConfig())
	srv, last := startServer(t, a)
	data := bytes.Repeat([]byte("0123456789abcdef"), 10000) // 160000 bytes: 3 chunks of 64 KiB
	crc := crc32.ChecksumIEEE(data)
	crcB64 := checksum.Encode([]byte{byte(crc >> 24), byte(crc >> 16), byte(crc >> 8), byte(crc)})

	signed := func(trailer bool) *http.Request {
		req, _ := http.NewRequest(http.MethodPut, srv.URL+"/bucket/stream.bin", bytes.NewReader(data))
		if trailer {
			req.Trailer = http.Header{"x-amz-checksum-crc32": {crcB64}}
		}
		return signer.StreamingSignV4(req, testAK, testSK, "", testRegion, int64(len(data)), time.Now().UTC(), sha256Hasher{sha256.New()})
	}
	unsigned := func() *http.Request {
		req, _ := http.NewRequest(http.MethodPut, srv.URL+"/bucket/stream.bin", bytes.NewReader(data))
		req.Header.Set("X-Amz-Content-Sha256", StreamingUnsignedTrail)
		return signer.SignV4Trailer(*req, testAK, testSK, "", testRegion, http.Header{"x-amz-checksum-crc32": {crcB64}})
	}

	// tamper re-frames a request body through f.
	tamper := func(req *http.Request, f func([]byte) []byte) *http.Request {
		wire, err := io.ReadAll(req.Body)
		if err != nil {
			t.Fatal(err)
		}
		wire = f(wire)
		req.Body = io.NopCloser(bytes.NewReader(wire))
		req.ContentLength = int64(len(wire))
		return req
	}
	flipAt := func(substr string, off int) func([]byte) []byte {
		return func(b []byte) []byte {
			i := bytes.Index(b, []byte(substr))
			if i < 0 {
				t.Fatalf("%q not in body", substr)
			}
			b = bytes.Clone(b)
			b[i+off] ^= 0x01
			return b
		}
	}

	cases := []struct {
		name    string
		req     func() *http.Request
		wantErr *s3err.Error
		wantCRC bool
	}{
		{name: "signed chunks", req: func() *http.Request { return signed(false) }},
		{name: "signed chunks with signed trailer", req: func() *http.Request { return signed(true) }, wantCRC: true},
		{name: "unsigned chunks with trailer", req: unsigned, wantCRC: true},
		{name: "signed: chunk data changed", req: func() *http.Request { return tamper(signed(false), flipAt("\r\n0123", 2+70000)) }, wantErr: s3err.ErrSignatureDoesNotMatch},
		{name: "signed: chunk signature changed", req: func() *http.Request {
			return tamper(signed(false), func(b []byte) []byte {
				i := bytes.Index(b, []byte("chunk-signature=")) + len("chunk-signature=")
				return []byte(string(b[:i]) + flipHex(string(b[i:i+64]), 3) + string(b[i+64:]))
			})
		}, wantErr: s3err.ErrSignatureDoesNotMatch},
		{name: "signed trailer: checksum changed", req: func() *http.Request {
			return tamper(signed(true), func(b []byte) []byte {
				return bytes.Replace(b, []byte(crcB64), []byte("AAAAAA=="), 1)
			})
		}, wantErr: s3err.ErrSignatureDoesNotMatch},
		{name: "signed trailer: trailer signature changed", req: func() *http.Request {
			return tamper(signed(true), func(b []byte) []byte {
				i := bytes.Index(b, []byte("x-amz-trailer-signature:")) + len("x-amz-trailer-signature:")
				return []byte(string(b[:i]) + flipHex(string(b[i:i+64]), 0) + string(b[i+64:]))
			})
		}, wantErr: s3err.ErrSignatureDoesNotMatch},
		{name: "unsigned: data changed", req: func() *http.Request { return tamper(unsigned(), flipAt("\r\n0123", 2+5)) }, wantErr: s3err.ErrBadDigest},
		{name: "unsigned: checksum changed", req: func() *http.Request {
			return tamper(unsigned(), func(b []byte) []byte {
				return bytes.Replace(b, []byte(crcB64), []byte("AAAAAA=="), 1)
			})
		}, wantErr: s3err.ErrBadDigest},
		{name: "unsigned: truncated", req: func() *http.Request {
			return tamper(unsigned(), func(b []byte) []byte { return b[:len(b)-40] })
		}, wantErr: s3err.ErrIncompleteBody},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			do(t, c.req())
			res := last()
			if c.wantErr != nil {
				if !errors.Is(res.err, c.wantErr) {
					t.Fatalf("err %v, want %s", res.err, c.wantErr.Code)
				}
				return
			}
			if res.err != nil {
				t.Fatal(res.err)
			}
			if !bytes.Equal(res.body, data) || res.length != int64(len(data)) || len(res.encoding) != 0 {
				t.Fatalf("decoded %d bytes (equal %v), length %d, encoding %q", len(res.body), bytes.Equal(res.body, data), res.length, res.encoding)
			}
			if c.wantCRC && (res.alg != checksum.CRC32 || res.sum != crcB64) {
				t.Fatalf("trailer checksum %q %q", res.alg, res.sum)
			}
		})
	}
}
