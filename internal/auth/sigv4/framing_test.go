package sigv4

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

// TestDecodeFramingWithoutSecret decodes signed streaming bodies whose
// signatures cannot be checked (a bucket without SigV4), so chunk framing
// never becomes part of an object.
func TestDecodeFramingWithoutSecret(t *testing.T) {
	r := streamingRequest(t, 200000, 65536)
	r.Header.Del("Authorization")
	if err := DecodeFraming(r); err != nil {
		t.Fatal(err)
	}
	if r.ContentLength != 200000 || r.Header.Get("Content-Encoding") != "" {
		t.Fatalf("length %d, encoding %q", r.ContentLength, r.Header.Get("Content-Encoding"))
	}
	got, err := io.ReadAll(r.Body)
	if err != nil || len(got) != 200000 {
		t.Fatalf("decoded %d bytes: %v", len(got), err)
	}
	if err := DecodeFraming(r); err != nil {
		t.Fatal("second call must leave the decoded body alone")
	}
}

func unsignedTrailerRequest(data []byte, crc string) *http.Request {
	var wire bytes.Buffer
	wire.WriteString(strconv.FormatInt(int64(len(data)), 16) + "\r\n")
	wire.Write(data)
	wire.WriteString("\r\n0\r\nx-amz-checksum-crc32:" + crc + "\r\n\r\n")
	r := httptest.NewRequest(http.MethodPut, "http://h/bucket/k", bytes.NewReader(wire.Bytes()))
	r.Header.Set("X-Amz-Content-Sha256", StreamingUnsignedTrail)
	r.Header.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(len(data)))
	r.Header.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
	r.Header.Set("Content-Encoding", "aws-chunked,gzip")
	return r
}

func TestDecodeFramingVerifiesTrailingChecksum(t *testing.T) {
	data := []byte("123456789")
	good := unsignedTrailerRequest(data, "y/Q5Jg==") // CRC32 of "123456789" is cbf43926
	if err := DecodeFraming(good); err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(good.Body); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("decoded %q, %v", got, err)
	}
	if good.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding %q", good.Header.Get("Content-Encoding"))
	}
	if alg, v, ok := TrailerChecksum(good.Body); !ok || alg != "CRC32" || v != "y/Q5Jg==" {
		t.Fatalf("trailer %s %s %v", alg, v, ok)
	}

	bad := unsignedTrailerRequest(data, "AAAAAA==")
	if err := DecodeFraming(bad); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(bad.Body)
	if !errors.Is(err, s3err.ErrBadDigest) {
		t.Fatalf("bad checksum: %v", err)
	}
	if len(got) == len(data) {
		t.Fatal("the last byte was handed out before the checksum was verified")
	}
}

func TestDecodeFramingLeavesOtherPayloadsAlone(t *testing.T) {
	r := httptest.NewRequest(http.MethodPut, "http://h/bucket/k", bytes.NewReader([]byte("plain")))
	r.Header.Set("X-Amz-Content-Sha256", UnsignedPayload)
	body := r.Body
	if err := DecodeFraming(r); err != nil || r.Body != body {
		t.Fatalf("changed an unsigned payload: %v", err)
	}
}
