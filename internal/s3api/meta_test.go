package s3api

import (
	"net/http"
	"testing"

	"github.com/mizuchi-uploadr/mizuchi/internal/backend"
)

// A checksum sent in an aws-chunked trailer is named by X-Amz-Trailer;
// its algorithm reaches the backend (the value follows the body), so a
// store whose multipart upload was created with that algorithm can be
// given the part's checksum.
func TestIntegrityFromNamesTrailingChecksum(t *testing.T) {
	tests := []struct {
		name   string
		header map[string]string
		want   backend.Checksum
	}{
		{"crc32 trailer", map[string]string{"X-Amz-Trailer": "x-amz-checksum-crc32"}, backend.Checksum{Algorithm: "CRC32"}},
		{"crc64nvme trailer, odd case", map[string]string{"X-Amz-Trailer": " X-Amz-Checksum-CRC64NVME "}, backend.Checksum{Algorithm: "CRC64NVME"}},
		{"sha256 trailer", map[string]string{"X-Amz-Trailer": "x-amz-checksum-sha256"}, backend.Checksum{Algorithm: "SHA256"}},
		{"unknown algorithm", map[string]string{"X-Amz-Trailer": "x-amz-checksum-md4"}, backend.Checksum{}},
		{"not a checksum trailer", map[string]string{"X-Amz-Trailer": "x-amz-meta-foo"}, backend.Checksum{}},
		{"no trailer", nil, backend.Checksum{}},
		{"header value wins", map[string]string{"X-Amz-Trailer": "x-amz-checksum-sha256", "X-Amz-Checksum-Crc32": "AAAAAA=="},
			backend.Checksum{Algorithm: "CRC32", Value: "AAAAAA=="}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.header {
				h.Set(k, v)
			}
			got, err := integrityFrom(h)
			if err != nil {
				t.Fatal(err)
			}
			if got.Checksum != tt.want {
				t.Fatalf("checksum %+v, want %+v", got.Checksum, tt.want)
			}
		})
	}
}
