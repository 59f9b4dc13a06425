package sigv4

import (
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mizuchi-uploadr/mizuchi/internal/checksum"
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

// signedWire frames payload as a signed aws-chunked body (chunks of
// chunkSize), with a signed crc32 trailer when trailer is set.
func signedWire(key []byte, amzDate, scope, seed string, payload []byte, chunkSize int, trailer bool) []byte {
	var b strings.Builder
	prev := seed
	sign := func(data []byte) string {
		prev = signHex(key, "AWS4-HMAC-SHA256-PAYLOAD\n"+amzDate+"\n"+scope+"\n"+prev+"\n"+emptySHA256Hex+"\n"+hexSHA(data))
		return prev
	}
	for rest := payload; ; {
		n := min(len(rest), chunkSize)
		fmt.Fprintf(&b, "%x;chunk-signature=%s\r\n", n, sign(rest[:n]))
		if n == 0 {
			break
		}
		b.Write(rest[:n])
		b.WriteString("\r\n")
		rest = rest[n:]
	}
	if trailer {
		crc := crc32.ChecksumIEEE(payload)
		line := "x-amz-checksum-crc32:" + checksum.Encode([]byte{byte(crc >> 24), byte(crc >> 16), byte(crc >> 8), byte(crc)})
		sig := signHex(key, "AWS4-HMAC-SHA256-TRAILER\n"+amzDate+"\n"+scope+"\n"+prev+"\n"+sha256Hex(line+"\n"))
		b.WriteString(line + "\r\nx-amz-trailer-signature:" + sig + "\r\n")
	}
	b.WriteString("\r\n")
	return []byte(b.String())
}

// FuzzSignedChunksTamper changes a correctly signed aws-chunked body in
// any way (and the declared decoded length): whatever the decoder accepts
// must be exactly the payload that was signed.
func FuzzSignedChunksTamper(f *testing.F) {
	key := signingKey(testSK, "20260314", testRegion, "s3")
	amzDate, scope, seed := "20260314T120000Z", "20260314/"+testRegion+"/s3/aws4_request", strings.Repeat("5", 64)
	payload := []byte("the signed payload of a streaming upload")
	for _, size := range []int{1, 7, 16, len(payload)} {
		for _, trailer := range []bool{false, true} {
			wire := signedWire(key, amzDate, scope, seed, payload, size, trailer)
			cfg := chunkedConfig{signed: true, trailer: trailer, decodedLength: int64(len(payload)), key: key, amzDate: amzDate, scope: scope, seed: seed}
			if trailer {
				cfg.checksumAlg = "CRC32"
			}
			if got, err := io.ReadAll(newChunkedReader(io.NopCloser(bytes.NewReader(wire)), cfg)); err != nil || !bytes.Equal(got, payload) {
				f.Fatalf("seed (chunks of %d, trailer %v) refused: %v", size, trailer, err)
			}
			f.Add(wire, int64(len(payload)), trailer)
		}
	}
	f.Add(signedWire(key, amzDate, scope, seed, nil, 1, false), int64(0), false)
	f.Fuzz(func(t *testing.T, wire []byte, decoded int64, trailer bool) {
		if decoded < 0 {
			decoded = -decoded
		}
		cfg := chunkedConfig{signed: true, trailer: trailer, decodedLength: decoded % (1 << 16), key: key, amzDate: amzDate, scope: scope, seed: seed}
		if trailer {
			cfg.checksumAlg = "CRC32"
		}
		got, err := io.ReadAll(newChunkedReader(io.NopCloser(bytes.NewReader(wire)), cfg))
		if err != nil {
			return
		}
		if !bytes.Equal(got, payload) && !(len(got) == 0 && cfg.decodedLength == 0 && bytes.HasPrefix(wire, []byte("0;"))) {
			t.Fatalf("accepted %q, signed %q", got, payload)
		}
	})
}

// FuzzCanonicalURI: the canonical path keeps the path's segments (an
// encoded slash stays inside its segment) and is made of unreserved
// characters, '/' and %XX only.
func FuzzCanonicalURI(f *testing.F) {
	for _, p := range []string{"/a/b%2Fk", "/a%2fb/c", "/x y/%41%", "//a//./../b", "/%E3%81%82/+~", ""} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		u, err := url.Parse("http://h" + p)
		if err != nil || u.Host != "h" || strings.ContainsAny(p, "?#") {
			return
		}
		esc := u.EscapedPath()
		c := canonicalURI(esc)
		if esc == "" {
			if c != "/" {
				t.Fatalf("empty path gives %q", c)
			}
			return
		}
		segs, csegs := strings.Split(esc, "/"), strings.Split(c, "/")
		if len(segs) != len(csegs) {
			t.Fatalf("%q → %q: segments changed", esc, c)
		}
		for i := range segs {
			if unescape(segs[i]) != unescape(csegs[i]) {
				t.Fatalf("%q → %q: segment %d changed", esc, c, i)
			}
		}
		for i := 0; i < len(c); i++ {
			switch ch := c[i]; {
			case isUnreserved(ch) || ch == '/':
			case ch == '%' && i+2 < len(c) && strings.IndexByte(upperHex, c[i+1]) >= 0 && strings.IndexByte(upperHex, c[i+2]) >= 0:
				i += 2
			default:
				t.Fatalf("%q → %q: byte %d not canonical", esc, c, i)
			}
		}
	})
}
