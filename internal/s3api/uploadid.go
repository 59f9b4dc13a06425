package s3api

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

// An upload id handed to a client is a sealed token, not the backend's id:
//
//	base64url( version | AES-256-GCM( nonce, plaintext, associated data ) )
//	plaintext       = created (unix seconds, 8 bytes) | subject hash (16) | backend upload id
//	associated data = version | len(bucket) | bucket | object key
//
// Any process holding one of the keys opens it, so multipart ownership
// needs no shared table: the id itself says who created the upload, for
// which bucket and key. The bucket and key are authenticated but not
// carried (the request names them); an id used with another bucket or key,
// or altered, truncated or sealed with an unknown key, does not open.

const (
	uploadIDVersion = 1
	// minUploadIDKey is the shortest accepted secret (config checks it too).
	minUploadIDKey = 32
	// maxUploadIDLen bounds the token a request may present; it is decoded
	// only when shorter. S3 backends' ids are well under 400 bytes.
	maxUploadIDLen = 1024
	subjectHashLen = 16
	uploadIDHeader = 1 + 8 + subjectHashLen
)

// UploadIDs seals and opens the multipart upload ids clients see.
type UploadIDs struct {
	aeads []cipher.AEAD // the first seals; all open
	// Ephemeral is set when the key was generated at start: ids then
	// neither survive a restart nor work on another replica.
	Ephemeral bool
}

// uploadToken is what an opened upload id holds.
type uploadToken struct {
	backendID   string
	subjectHash [subjectHashLen]byte
	created     time.Time
}

// NewUploadIDs builds the sealer from server.upload_id_keys. With no key it
// generates a random one (Ephemeral).
func NewUploadIDs(keys []string) (*UploadIDs, error) {
	u := &UploadIDs{}
	if len(keys) == 0 {
		k := make([]byte, 32)
		_, _ = rand.Read(k)
		keys = []string{string(k)}
		u.Ephemeral = true
	}
	for i, k := range keys {
		if len(k) < minUploadIDKey {
			return nil, fmt.Errorf("upload id key %d: shorter than %d bytes", i, minUploadIDKey)
		}
		// The secret is a passphrase of any length; the cipher key is
		// derived from it for this one purpose.
		m := hmac.New(sha256.New, []byte(k))
		m.Write([]byte("mizuchi upload id v1"))
		block, err := aes.NewCipher(m.Sum(nil))
		if err != nil {
			return nil, err
		}
		// Random 96-bit nonces: one key seals up to 2^32 ids safely.
		aead, err := cipher.NewGCMWithRandomNonce(block)
		if err != nil {
			return nil, err
		}
		u.aeads = append(u.aeads, aead)
	}
	return u, nil
}

func subjectHash(subject string) (h [subjectHashLen]byte) {
	s := sha256.Sum256([]byte("mizuchi upload subject\x00" + subject))
	copy(h[:], s[:])
	return h
}

func uploadIDAD(bucket, key string) []byte {
	ad := make([]byte, 0, 1+4+len(bucket)+len(key))
	ad = append(ad, uploadIDVersion)
	ad = binary.BigEndian.AppendUint32(ad, uint32(len(bucket)))
	ad = append(ad, bucket...)
	return append(ad, key...)
}

// Seal makes the client's upload id for a backend upload.
func (u *UploadIDs) Seal(bucket, key, subject, backendID string, created time.Time) string {
	pt := make([]byte, 0, 8+subjectHashLen+len(backendID))
	pt = binary.BigEndian.AppendUint64(pt, uint64(created.Unix()))
	h := subjectHash(subject)
	pt = append(pt, h[:]...)
	pt = append(pt, backendID...)
	out := []byte{uploadIDVersion}
	out = u.aeads[0].Seal(out, nil, pt, uploadIDAD(bucket, key))
	return base64.RawURLEncoding.EncodeToString(out)
}

var errBadUploadID = errors.New("upload id does not open")

// Open returns what a client's upload id holds, or errBadUploadID when it
// was not sealed by one of the keys for this bucket and key.
func (u *UploadIDs) Open(bucket, key, id string) (uploadToken, error) {
	var t uploadToken
	if len(id) > maxUploadIDLen {
		return t, errBadUploadID
	}
	raw, err := base64.RawURLEncoding.DecodeString(id)
	if err != nil || len(raw) < 1 || raw[0] != uploadIDVersion {
		return t, errBadUploadID
	}
	ad := uploadIDAD(bucket, key)
	for _, a := range u.aeads {
		pt, err := a.Open(nil, nil, raw[1:], ad)
		if err != nil || len(pt) < uploadIDHeader-1 {
			continue
		}
		t.created = time.Unix(int64(binary.BigEndian.Uint64(pt[:8])), 0)
		copy(t.subjectHash[:], pt[8:8+subjectHashLen])
		t.backendID = string(pt[8+subjectHashLen:])
		if t.backendID == "" {
			return uploadToken{}, errBadUploadID
		}
		return t, nil
	}
	return t, errBadUploadID
}

// createdBy reports whether subject created the upload.
func (t uploadToken) createdBy(subject string) bool {
	h := subjectHash(subject)
	return subtle.ConstantTimeCompare(h[:], t.subjectHash[:]) == 1
}

func ephemeralUploadIDs() *UploadIDs {
	u, _ := NewUploadIDs(nil) // a generated key cannot be refused
	return u
}

// checkUploadOwner opens the upload id of a call on a multipart upload:
// an id that does not open for this bucket and key is NoSuchUpload (as S3
// answers for an unknown id or another key); another subject than the
// creator gets AccessDenied. The creator needs no policy call: the policy
// decided at CreateMultipartUpload.
func (h *Handler) checkUploadOwner(s *Scope, b *Bucket, id string) error {
	t, err := h.ids.Open(b.Name, s.Key, id)
	if err != nil {
		return s3err.ErrNoSuchUpload
	}
	if !t.createdBy(s.Principal.Subject) {
		return s3err.ErrAccessDenied
	}
	s.backendUploadID = t.backendID
	return nil
}
