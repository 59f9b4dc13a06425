package sigv4

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func FuzzParseAuthorization(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
	f.Add("AWS4-HMAC-SHA256 Credential=a/b/c/d/e/f,SignedHeaders=,Signature=")
	f.Add("AWS4-HMAC-SHA256 ,,,=,==")
	f.Add("AWS4-HMAC-SHA256")
	f.Fuzz(func(t *testing.T, h string) {
		in, err := parseAuthorization(h)
		if (in == nil) == (err == nil) {
			t.Fatal("exactly one of result and error expected")
		}
		if in != nil && (len(in.signature) != 64 || len(in.signedHeaders) == 0) {
			t.Fatal("accepted an invalid header")
		}
		// The whole verifier must not panic either.
		a, _ := New(testConfig(), Options{Now: func() time.Time { return fixedNow }})
		r := &http.Request{Method: "PUT", URL: &url.URL{Path: "/b/k"}, Host: "h", Header: http.Header{"Authorization": {h}, "X-Amz-Date": {"20260314T120000Z"}, "X-Amz-Content-Sha256": {UnsignedPayload}}, Body: http.NoBody}
		_, _ = a.Authenticate(context.Background(), r)
	})
}

func FuzzPresignedQuery(f *testing.F) {
	f.Add("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAMIZUCHITEST%2F20260314%2Feu-west-3%2Fs3%2Faws4_request&X-Amz-Date=20260314T120000Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host&X-Amz-Signature=" + strings.Repeat("a", 64))
	f.Add("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=-1&&=&%zz")
	f.Add("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=%2F%2F%2F%2F&X-Amz-Date=x&X-Amz-Expires=99999999999999999999&X-Amz-SignedHeaders=;&X-Amz-Signature=")
	f.Fuzz(func(t *testing.T, q string) {
		_ = canonicalQuery(parseQuery(q), qSignature)
		in, err := parsePresigned(parseQuery(q))
		if (in == nil) == (err == nil) {
			t.Fatal("exactly one of result and error expected")
		}
		if in != nil && (in.expires < 1 || in.expires > maxPresignExpires) {
			t.Fatalf("accepted expires %d", in.expires)
		}
		a, _ := New(testConfig(), Options{Now: func() time.Time { return fixedNow }})
		r := &http.Request{Method: "PUT", URL: &url.URL{Path: "/b/k", RawQuery: q}, Host: "h", Header: http.Header{}, Body: http.NoBody}
		_, _ = a.Authenticate(context.Background(), r)
	})
}

func FuzzChunkedDecoder(f *testing.F) {
	key := signingKey(testSK, "20260314", testRegion, "s3")
	f.Add([]byte("4\r\nabcd\r\n0\r\n\r\n"), uint8(0), int64(4))
	f.Add([]byte("0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n"), uint8(2), int64(0))
	f.Add([]byte("4;chunk-signature="+strings.Repeat("0", 64)+"\r\nabcd\r\n0;chunk-signature="+strings.Repeat("1", 64)+"\r\n\r\n"), uint8(1), int64(4))
	f.Add([]byte("0;chunk-signature="+strings.Repeat("0", 64)+"\r\nx-amz-checksum-crc32:AAAAAA==\n\r\nx-amz-trailer-signature:"+strings.Repeat("2", 64)+"\r\n\r\n"), uint8(3), int64(0))
	f.Fuzz(func(t *testing.T, wire []byte, mode uint8, decoded int64) {
		if decoded < 0 {
			decoded = -decoded
		}
		cfg := chunkedConfig{
			signed: mode&1 != 0, trailer: mode&2 != 0, decodedLength: decoded % (1 << 20),
			key: key, amzDate: "20260314T120000Z", scope: "20260314/" + testRegion + "/s3/aws4_request",
			seed: strings.Repeat("0", 64),
		}
		if mode&4 != 0 {
			cfg.checksumAlg = "CRC32"
		}
		cr := newChunkedReader(io.NopCloser(strings.NewReader(string(wire))), cfg)
		n, err := io.Copy(io.Discard, cr)
		if err == nil && n != cfg.decodedLength {
			t.Fatalf("decoded %d bytes without error, declared %d", n, cfg.decodedLength)
		}
		if n > int64(len(wire)) {
			t.Fatal("more bytes out than in")
		}
	})
}
