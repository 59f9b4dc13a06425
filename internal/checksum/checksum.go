// Package checksum computes S3's additional checksums (CRC32, CRC32C,
// CRC64NVME, SHA1, SHA256) and the Content-MD5, and compares them with the
// base64 values clients send.
package checksum

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"net/http"
	"strings"
)

// Algorithms in S3's spelling.
const (
	CRC32     = "CRC32"
	CRC32C    = "CRC32C"
	CRC64NVME = "CRC64NVME"
	SHA1      = "SHA1"
	SHA256    = "SHA256"
)

// Algorithms lists every supported algorithm.
var Algorithms = []string{CRC32, CRC32C, CRC64NVME, SHA1, SHA256}

var (
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
	// CRC-64/NVME: reflected polynomial of 0xad93d23594c93659; Go's crc64
	// already applies the all-ones initial value and final xor.
	nvme = crc64.MakeTable(0x9a6c9329ac4bc9b5)
)

// New returns a hash for alg (case-insensitive), or nil if unknown.
func New(alg string) hash.Hash {
	switch strings.ToUpper(alg) {
	case CRC32:
		return crc32.NewIEEE()
	case CRC32C:
		return crc32.New(castagnoli)
	case CRC64NVME:
		return crc64.New(nvme)
	case SHA1:
		return sha1.New()
	case SHA256:
		return sha256.New()
	}
	return nil
}

// Header returns the request/response header carrying alg's value,
// e.g. "x-amz-checksum-crc32".
func Header(alg string) string { return "x-amz-checksum-" + strings.ToLower(alg) }

// FromHeader finds the single x-amz-checksum-<alg> header in h. It returns
// ok=false when none is present and an error string when more than one
// algorithm is sent or the value is not valid base64 of the right size.
func FromHeader(h http.Header) (alg, value string, ok bool, bad bool) {
	for _, a := range Algorithms {
		v := h.Get(Header(a))
		if v == "" {
			continue
		}
		if ok {
			return "", "", false, true
		}
		alg, value, ok = a, v, true
	}
	if ok && !ValidValue(alg, value) {
		return "", "", false, true
	}
	return alg, value, ok, false
}

// ValidValue reports whether value is base64 of alg's digest size.
func ValidValue(alg, value string) bool {
	h := New(alg)
	if h == nil {
		return false
	}
	b, err := base64.StdEncoding.DecodeString(value)
	return err == nil && len(b) == h.Size()
}

// Encode returns the base64 form of a digest.
func Encode(sum []byte) string { return base64.StdEncoding.EncodeToString(sum) }

// Equal compares a computed digest with a client's base64 value in
// constant time.
func Equal(sum []byte, value string) bool {
	want, err := base64.StdEncoding.DecodeString(value)
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare(sum, want) == 1
}

// ValidMD5 reports whether v is a base64 Content-MD5 value.
func ValidMD5(v string) bool {
	b, err := base64.StdEncoding.DecodeString(v)
	return err == nil && len(b) == md5.Size
}
