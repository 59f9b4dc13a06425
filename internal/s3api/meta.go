package s3api

import (
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/mizuchi-uploadr/mizuchi/internal/backend"
	"github.com/mizuchi-uploadr/mizuchi/internal/checksum"
	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

// maxUserMetadata is S3's limit on the size of user-defined metadata.
const maxUserMetadata = 2048

// metadataFrom extracts the object metadata S3 stores from request headers.
func metadataFrom(h http.Header) (backend.Metadata, error) {
	m := backend.Metadata{
		ContentType:        h.Get("Content-Type"),
		ContentDisposition: h.Get("Content-Disposition"),
		ContentEncoding:    stripAWSChunked(h.Get("Content-Encoding")),
		ContentLanguage:    h.Get("Content-Language"),
		CacheControl:       h.Get("Cache-Control"),
		Expires:            h.Get("Expires"),
		Tagging:            h.Get("X-Amz-Tagging"),
		StorageClass:       h.Get("X-Amz-Storage-Class"),
	}
	size := 0
	for name, vs := range h {
		lower := strings.ToLower(name)
		if !strings.HasPrefix(lower, "x-amz-meta-") || len(vs) == 0 {
			continue
		}
		if m.User == nil {
			m.User = map[string]string{}
		}
		k := strings.TrimPrefix(lower, "x-amz-meta-")
		v := strings.Join(vs, ",")
		m.User[k] = v
		size += len(k) + len(v)
	}
	if size > maxUserMetadata {
		return m, s3err.ErrMetadataTooLarge
	}
	return m, nil
}

// stripAWSChunked removes the aws-chunked coding, which describes the
// transfer framing, not the object.
func stripAWSChunked(ce string) string {
	if ce == "" {
		return ""
	}
	var keep []string
	for _, c := range strings.Split(ce, ",") {
		c = strings.TrimSpace(c)
		if c != "" && !strings.EqualFold(c, "aws-chunked") {
			keep = append(keep, c)
		}
	}
	return strings.Join(keep, ",")
}

// integrityFrom reads what the client declared about the body.
func integrityFrom(h http.Header) (backend.Integrity, error) {
	var in backend.Integrity
	if v, ok := h["Content-Md5"]; ok {
		if len(v) != 1 || !checksum.ValidMD5(v[0]) {
			return in, s3err.ErrInvalidDigest
		}
		in.ContentMD5 = v[0]
	}
	alg, val, ok, bad := checksum.FromHeader(h)
	if bad {
		return in, s3err.ErrInvalidRequest.WithMessage("The x-amz-checksum-* header is invalid or more than one checksum was sent.")
	}
	if ok {
		in.Checksum = backend.Checksum{Algorithm: alg, Value: val}
	} else if alg := trailerAlgorithm(h); alg != "" {
		// The value follows the body in an aws-chunked trailer (verified
		// by the decoder): name the algorithm so a backend can compute
		// the checksum and hand it to a store that requires it.
		in.Checksum = backend.Checksum{Algorithm: alg}
	}
	if sha := h.Get("X-Amz-Content-Sha256"); len(sha) == 64 {
		if _, err := hex.DecodeString(sha); err == nil {
			in.SHA256 = strings.ToLower(sha)
		}
	}
	return in, nil
}

// trailerAlgorithm is the checksum algorithm named by X-Amz-Trailer
// (x-amz-checksum-crc32 → CRC32), or "" when there is none or it is not
// a checksum algorithm.
func trailerAlgorithm(h http.Header) string {
	tr := strings.ToLower(strings.TrimSpace(h.Get("X-Amz-Trailer")))
	alg, ok := strings.CutPrefix(tr, "x-amz-checksum-")
	if !ok || checksum.New(strings.ToUpper(alg)) == nil {
		return ""
	}
	return strings.ToUpper(alg)
}

// setChecksumHeader echoes a checksum in S3's response header.
func setChecksumHeader(h http.Header, c backend.Checksum) {
	if c.Algorithm != "" && c.Value != "" {
		h.Set(checksum.Header(c.Algorithm), c.Value)
	}
}
