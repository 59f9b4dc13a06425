package sigv4

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"

	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

// hashReader passes the body through while hashing it and never hands
// out the body's last byte unless the SHA-256 matches.
type hashReader struct {
	src    io.ReadCloser
	h      hash.Hash
	want   string
	left   int64 // bytes still expected; -1 when the length is unknown
	held   [1]byte
	isHeld bool // unknown length: the last byte read is held back
	// verified: EOF was seen and the digest matched; only the held byte
	// remains to be handed out.
	verified bool
	err      error
}

func newHashReader(src io.ReadCloser, length int64, want string) *hashReader {
	if length < 0 {
		length = -1
	}
	return &hashReader{src: src, h: sha256.New(), want: want, left: length}
}

func (r *hashReader) verify() error {
	if hex.EncodeToString(r.h.Sum(nil)) != r.want {
		return s3err.ErrXAmzContentSHA256Mismatch
	}
	return nil
}

func (r *hashReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if r.left >= 0 {
		return r.readKnown(p)
	}
	return r.readUnknown(p)
}

func (r *hashReader) fail(err error) (int, error) {
	r.err = err
	return 0, err
}

func (r *hashReader) readKnown(p []byte) (int, error) {
	if r.left == 0 {
		// At once for a declared empty body (an HTTP/2 request still has
		// a body reader): its hash is checked like any other.
		if verr := r.verify(); verr != nil {
			return r.fail(verr)
		}
		r.err = io.EOF
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.src.Read(p)
	r.h.Write(p[:n])
	r.left -= int64(n)
	if r.left == 0 {
		if verr := r.verify(); verr != nil {
			return r.fail(verr)
		}
		return n, nil
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			return r.fail(s3err.ErrIncompleteBody)
		}
		return r.fail(err)
	}
	return n, nil
}

// readUnknown keeps the most recent byte back until EOF shows it was the
// last one and the digest has been checked.
func (r *hashReader) readUnknown(p []byte) (int, error) {
	if r.verified {
		if r.isHeld {
			p[0] = r.held[0]
			r.isHeld = false
			return 1, nil
		}
		r.err = io.EOF
		return 0, io.EOF
	}
	if r.isHeld && len(p) == 1 {
		// No room for the held byte plus new data: read one byte aside.
		var b [1]byte
		n, err := r.src.Read(b[:])
		r.h.Write(b[:n])
		if err != nil && !errors.Is(err, io.EOF) {
			return r.fail(err)
		}
		if n == 1 {
			p[0], r.held[0] = r.held[0], b[0]
			if errors.Is(err, io.EOF) {
				if verr := r.verify(); verr != nil {
					return r.fail(verr)
				}
				r.verified = true
			}
			return 1, nil
		}
		if errors.Is(err, io.EOF) {
			if verr := r.verify(); verr != nil {
				return r.fail(verr)
			}
			p[0] = r.held[0]
			r.isHeld = false
			r.err = io.EOF
			return 1, nil
		}
		return 0, nil
	}
	off := 0
	if r.isHeld {
		p[0] = r.held[0]
		off = 1
	}
	n, err := r.src.Read(p[off:])
	r.h.Write(p[off : off+n])
	total := off + n
	if err != nil && !errors.Is(err, io.EOF) {
		return r.fail(err)
	}
	if errors.Is(err, io.EOF) {
		if verr := r.verify(); verr != nil {
			return r.fail(verr)
		}
		r.isHeld = false
		r.err = io.EOF
		if total == 0 {
			return 0, io.EOF
		}
		return total, nil
	}
	if total == 0 {
		return 0, nil
	}
	r.held[0] = p[total-1]
	r.isHeld = true
	return total - 1, nil
}

func (r *hashReader) Close() error { return r.src.Close() }
