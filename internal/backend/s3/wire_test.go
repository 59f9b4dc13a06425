package s3

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"hash/crc32"
	"net/http"
	"strings"
	"testing"

	"github.com/mizuchi-uploadr/mizuchi/internal/backend"
	"github.com/mizuchi-uploadr/mizuchi/internal/checksum"
	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/faultproxy"
)

// TestSDKSendsTheBodyAsIsWithExactLength captures what really reaches the
// store: exact Content-Length, UNSIGNED-PAYLOAD (or the client's SHA-256),
// the client's checksum forwarded, and no aws-chunked encoding, trailer or
// checksum of the SDK's own.
func TestSDKSendsTheBodyAsIsWithExactLength(t *testing.T) {
	e := startEnv(t)
	proxy := faultproxy.StartHTTP(t, e.gw.Addr)
	s := e.store(t, proxy.URL, nil)
	data := randBytes(300 << 10)
	crc := crc32.ChecksumIEEE(data)
	crcB64 := checksum.Encode([]byte{byte(crc >> 24), byte(crc >> 16), byte(crc >> 8), byte(crc)})
	sha := sha256.Sum256(data)

	cases := []struct {
		name     string
		ig       backend.Integrity
		wantHash string
		wantHdr  map[string]string
	}{
		{name: "unsigned", wantHash: "UNSIGNED-PAYLOAD"},
		{name: "client crc32 forwarded", ig: backend.Integrity{Checksum: backend.Checksum{Algorithm: "CRC32", Value: crcB64}},
			wantHash: "UNSIGNED-PAYLOAD", wantHdr: map[string]string{"X-Amz-Checksum-Crc32": crcB64}},
		{name: "client sha256 signed", ig: backend.Integrity{SHA256: hex.EncodeToString(sha[:])},
			wantHash: hex.EncodeToString(sha[:])},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key := strings.ReplaceAll(tc.name, " ", "-")
			before := len(proxy.Requests())
			if _, err := s.PutObject(ctxT(t), &backend.PutObjectInput{Key: key, Body: bytes.NewReader(data),
				Size: int64(len(data)), Integrity: tc.ig}); err != nil {
				t.Fatalf("PutObject: %v", err)
			}
			reqs := proxy.Requests()[before:]
			if len(reqs) != 1 || reqs[0].Method != http.MethodPut {
				t.Fatalf("requests = %+v", reqs)
			}
			h := reqs[0].Header
			if reqs[0].ContentLength != int64(len(data)) {
				t.Errorf("Content-Length %d, want %d", reqs[0].ContentLength, len(data))
			}
			if got := h.Get("X-Amz-Content-Sha256"); got != tc.wantHash {
				t.Errorf("x-amz-content-sha256 = %q, want %q", got, tc.wantHash)
			}
			for _, bad := range []string{"X-Amz-Trailer", "X-Amz-Decoded-Content-Length", "X-Amz-Sdk-Checksum-Algorithm", "Expect"} {
				if v := h.Get(bad); v != "" {
					t.Errorf("SDK added %s: %s", bad, v)
				}
			}
			if strings.Contains(h.Get("Content-Encoding"), "aws-chunked") || len(h.Values("Transfer-Encoding")) > 0 {
				t.Errorf("body re-encoded: %v", h)
			}
			for k := range h {
				lk := strings.ToLower(k)
				if strings.HasPrefix(lk, "x-amz-checksum-") && tc.wantHdr[k] == "" {
					t.Errorf("SDK added its own checksum header %s", k)
				}
			}
			for k, v := range tc.wantHdr {
				if h.Get(k) != v {
					t.Errorf("%s = %q, want %q", k, h.Get(k), v)
				}
			}
			assertStored(t, e, key, data)
		})
	}
}
