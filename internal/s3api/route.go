package s3api

import (
	"net/url"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/mizuchi-uploadr/mizuchi/internal/backend"
	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

// Router matches request paths to buckets by path prefix, on whole
// segments, longest prefix first.
type Router struct {
	buckets []*Bucket // sorted by number of prefix segments, longest first
}

// NewRouter builds a router over buckets. Prefixes are assumed validated
// by the config package (leading slash, no trailing slash, unique).
func NewRouter(buckets []*Bucket) *Router {
	bs := append([]*Bucket(nil), buckets...)
	for _, b := range bs {
		b.segments = splitSegments(b.Prefix)
	}
	sort.SliceStable(bs, func(i, j int) bool { return len(bs[i].segments) > len(bs[j].segments) })
	return &Router{buckets: bs}
}

func splitSegments(prefix string) []string {
	p := strings.Trim(prefix, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// Match finds the bucket for an escaped request path (as sent, never
// normalised) and returns the rest of the path, still escaped, without its
// leading slash. hasKey is false when the path names the bucket itself
// ("/uploads" or "/uploads/"). ok is false when no bucket matches.
//
// Segments are split on literal slashes only and each prefix segment is
// compared after percent-decoding that segment alone, so "%2F" can never
// move a request across a segment boundary into another bucket.
func (rt *Router) Match(escapedPath string) (b *Bucket, rawKey string, ok bool) {
	if !strings.HasPrefix(escapedPath, "/") {
		return nil, "", false
	}
	rest := escapedPath[1:]
	for _, cand := range rt.buckets {
		if k, matched := matchSegments(rest, cand.segments); matched {
			return cand, k, true
		}
	}
	return nil, "", false
}

func matchSegments(path string, segs []string) (string, bool) {
	rest := path
	for i, want := range segs {
		seg, after, found := strings.Cut(rest, "/")
		if got, err := url.PathUnescape(seg); err != nil || got != want {
			return "", false
		}
		if !found {
			return "", i == len(segs)-1
		}
		rest = after
	}
	return rest, true
}

// DecodeKey percent-decodes the raw key once and validates it: not empty,
// valid UTF-8, no NUL, no "." or ".." segment (with "/" or "\" as
// separators), at most 1024 bytes.
func DecodeKey(rawKey string) (string, error) {
	key, err := url.PathUnescape(rawKey)
	if err != nil {
		return "", s3err.ErrInvalidArgument.WithMessage("The object key is not a valid percent-encoded path.")
	}
	if err := ValidateKey(key); err != nil {
		return "", err
	}
	return key, nil
}

// ValidateKey checks a decoded object key.
func ValidateKey(key string) error {
	switch {
	case key == "":
		return s3err.ErrInvalidArgument.WithMessage("The object key must not be empty.")
	case len(key) > backend.MaxKeyLength:
		return s3err.ErrKeyTooLong
	case !utf8.ValidString(key):
		return s3err.ErrInvalidArgument.WithMessage("The object key must be valid UTF-8.")
	case strings.IndexByte(key, 0) >= 0:
		return s3err.ErrInvalidArgument.WithMessage("The object key must not contain NUL.")
	}
	for _, seg := range strings.FieldsFunc(key, func(r rune) bool { return r == '/' || r == '\\' }) {
		if seg == ".." || seg == "." {
			return s3err.ErrInvalidArgument.WithMessage("The object key must not contain '.' or '..' segments.")
		}
	}
	return nil
}
