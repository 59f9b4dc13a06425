package fs

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/mizuchi-uploadr/mizuchi/internal/backend"
	"github.com/mizuchi-uploadr/mizuchi/internal/checksum"
	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

const copyBufferSize = 256 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, copyBufferSize); return &b }}

// PutObject streams Body into a temp file beside the target, verifies
// it and renames it into place.
func (s *Store) PutObject(ctx context.Context, in *backend.PutObjectInput) (*backend.PutObjectOutput, error) {
	if err := validateKey(in.Key); err != nil {
		return nil, err
	}
	if in.Size < 0 {
		return nil, s3err.ErrMissingContentLength
	}
	v, err := newVerifier(in.Integrity, "")
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.precheck(in.Key); err != nil {
		return nil, err
	}
	t, err := s.openTemp(in.Key)
	if err != nil {
		return nil, err
	}
	defer t.discard()
	if err := copyBody(ctx, t.f, in.Body, in.Size, v); err != nil {
		return nil, err
	}
	if err := v.verify(); err != nil {
		return nil, err
	}
	rec := &objectRecord{
		Key: in.Key, Size: in.Size, ETag: v.etag(),
		LastModified: time.Now().UTC(), Metadata: in.Metadata,
	}
	out := &backend.PutObjectOutput{ETag: rec.ETag}
	if v.alg != "" {
		out.Checksum = backend.Checksum{Algorithm: v.alg, Value: v.checksum()}
		rec.Checksum = &out.Checksum
	}
	if err := t.commit(rec); err != nil {
		return nil, err
	}
	if err := s.syncDirs(t.created, path.Dir(in.Key)); err != nil {
		// The object is visible but its directory entry may not survive
		// a crash: report the failure so that the client retries.
		s.log.Warn("fsync of object directory failed", "error", err)
		return nil, err
	}
	return out, nil
}

// verifier hashes a body as it streams and checks it against what the
// client declared.
type verifier struct {
	md5        hash.Hash
	contentMD5 string
	alg        string
	sum        hash.Hash
	want       string
	sha        hash.Hash
	wantSHA    []byte
}

// newVerifier validates the declared values. alg is the algorithm the
// upload requires (multipart parts); a different declared algorithm is
// refused.
func newVerifier(in backend.Integrity, alg string) (*verifier, error) {
	v := &verifier{md5: md5.New(), contentMD5: in.ContentMD5}
	if in.ContentMD5 != "" && !checksum.ValidMD5(in.ContentMD5) {
		return nil, s3err.ErrInvalidDigest
	}
	declared := strings.ToUpper(in.Checksum.Algorithm)
	alg = strings.ToUpper(alg)
	switch {
	case declared != "" && alg != "" && declared != alg:
		return nil, s3err.ErrInvalidRequest.WithMessage(
			"Checksum Type mismatch occurred, expected checksum Type: %s, actual checksum Type: %s",
			strings.ToLower(alg), strings.ToLower(declared))
	case declared != "":
		alg = declared
	}
	if alg != "" {
		v.sum = checksum.New(alg)
		if v.sum == nil {
			return nil, s3err.ErrInvalidRequest.WithMessage("Checksum algorithm %q is not supported.", in.Checksum.Algorithm)
		}
		v.alg = alg
		if in.Checksum.Value != "" {
			if !checksum.ValidValue(alg, in.Checksum.Value) {
				return nil, s3err.ErrInvalidRequest.WithMessage("Value for %s header is invalid.", checksum.Header(alg))
			}
			v.want = in.Checksum.Value
		}
	}
	if in.SHA256 != "" {
		b, err := hex.DecodeString(in.SHA256)
		if err != nil || len(b) != sha256.Size {
			return nil, s3err.ErrInvalidArgument.WithMessage("x-amz-content-sha256 must be a valid sha256 value.")
		}
		v.sha, v.wantSHA = sha256.New(), b
	}
	return v, nil
}

func (v *verifier) Write(p []byte) (int, error) {
	v.md5.Write(p)
	if v.sum != nil {
		v.sum.Write(p)
	}
	if v.sha != nil {
		v.sha.Write(p)
	}
	return len(p), nil
}

func (v *verifier) verify() error {
	if v.contentMD5 != "" && !checksum.Equal(v.md5.Sum(nil), v.contentMD5) {
		return s3err.ErrBadDigest
	}
	if v.want != "" && !checksum.Equal(v.sum.Sum(nil), v.want) {
		return s3err.ErrBadDigest.WithMessage("The %s you specified did not match the calculated checksum.", v.alg)
	}
	if v.sha != nil && subtle.ConstantTimeCompare(v.sha.Sum(nil), v.wantSHA) != 1 {
		return s3err.ErrXAmzContentSHA256Mismatch
	}
	return nil
}

func (v *verifier) md5Hex() string { return hex.EncodeToString(v.md5.Sum(nil)) }

func (v *verifier) etag() string { return `"` + v.md5Hex() + `"` }

func (v *verifier) checksum() string {
	if v.sum == nil {
		return ""
	}
	return base64.StdEncoding.EncodeToString(v.sum.Sum(nil))
}

// copyBody writes exactly size bytes of body to f through one pooled
// buffer, feeding v. (The MD5 of the ETag needs every byte in user space,
// so a kernel-side copy would only add a second pass over the data.)
func copyBody(ctx context.Context, f *os.File, body io.Reader, size int64, v *verifier) error {
	if size == 0 {
		return nil
	}
	if body == nil {
		return s3err.ErrIncompleteBody
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	var n int64
	for n < size {
		if err := ctx.Err(); err != nil {
			return err
		}
		m, rerr := body.Read(buf[:min(int64(len(buf)), size-n)])
		if m > 0 {
			if _, err := f.Write(buf[:m]); err != nil {
				return err
			}
			v.Write(buf[:m])
			n += int64(m)
		}
		if rerr != nil && n < size {
			if cerr := ctx.Err(); cerr != nil {
				return cerr
			}
			return bodyErr(rerr)
		}
	}
	return ctx.Err()
}

// bodyErr maps a read error of the client's body: a body that ends early
// is IncompleteBody, anything else is a technical failure.
func bodyErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return s3err.ErrIncompleteBody.WithCause(err)
	}
	return fmt.Errorf("read body: %w", err)
}
