package checksum

import (
	"encoding/hex"
	"net/http"
	"testing"
)

// Check values for "123456789" from the CRC catalogue and the hash specs.
func TestCheckValues(t *testing.T) {
	tests := []struct {
		alg  string
		want string
	}{
		{CRC32, "cbf43926"},
		{CRC32C, "e3069283"},
		{CRC64NVME, "ae8b14860a799888"},
		{SHA1, "f7c3bc1d808e04732adf679965ccc34ca7ae3441"},
		{SHA256, "15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225"},
	}
	for _, tt := range tests {
		t.Run(tt.alg, func(t *testing.T) {
			h := New(tt.alg)
			h.Write([]byte("123456789"))
			if got := hex.EncodeToString(h.Sum(nil)); got != tt.want {
				t.Fatalf("%s = %s, want %s", tt.alg, got, tt.want)
			}
			if !Equal(h.Sum(nil), Encode(h.Sum(nil))) || !ValidValue(tt.alg, Encode(h.Sum(nil))) {
				t.Fatal("round trip failed")
			}
		})
	}
	if New("md4") != nil {
		t.Fatal("unknown algorithm accepted")
	}
}

func TestFromHeader(t *testing.T) {
	h := http.Header{}
	if _, _, ok, bad := FromHeader(h); ok || bad {
		t.Fatal("empty header")
	}
	h.Set("X-Amz-Checksum-Crc32", "AAAAAA==")
	if alg, _, ok, bad := FromHeader(h); !ok || bad || alg != CRC32 {
		t.Fatalf("crc32: %v %v %v", alg, ok, bad)
	}
	h.Set("X-Amz-Checksum-Sha1", "AAAAAA==")
	if _, _, _, bad := FromHeader(h); !bad {
		t.Fatal("two algorithms accepted")
	}
	h = http.Header{"X-Amz-Checksum-Sha256": {"AAAAAA=="}}
	if _, _, _, bad := FromHeader(h); !bad {
		t.Fatal("short sha256 accepted")
	}
}
