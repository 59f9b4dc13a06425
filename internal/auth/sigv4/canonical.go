package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

const (
	algorithm      = "AWS4-HMAC-SHA256"
	terminator     = "aws4_request"
	amzDateLayout  = "20060102T150405Z"
	scopeDateLen   = 8
	emptySHA256Hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// signingKey derives the SigV4 key for one day, region and service.
func signingKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	return hmacSHA256(k, terminator)
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func stringToSign(amzDate, scope, canonicalRequest string) string {
	return algorithm + "\n" + amzDate + "\n" + scope + "\n" + sha256Hex(canonicalRequest)
}

func signHex(key []byte, sts string) string {
	return hex.EncodeToString(hmacSHA256(key, sts))
}

func isUnreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

const upperHex = "0123456789ABCDEF"

// uriEncode percent-encodes every byte outside S3's unreserved set
// (and outside '/' when keepSlash).
func uriEncode(b *strings.Builder, s string, keepSlash bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isUnreserved(c) || keepSlash && c == '/' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(upperHex[c>>4])
		b.WriteByte(upperHex[c&15])
	}
}

// canonicalURI is the path as S3 canonicalises it: the path decoded and
// encoded exactly once, without any dot-segment or slash normalisation.
// It works segment by segment on the path as sent (auth.RequestPath, the
// spelling the router splits too): an
// encoded slash (%2F) is not a separator, as it is not one when the path
// is matched against bucket prefixes, so it stays encoded. Decoding it
// would let a request signed for /a/b/k be sent as /a/b%2Fk and land in
// bucket /a under key b/k.
func canonicalURI(escapedPath string) string {
	if escapedPath == "" {
		return "/"
	}
	var b strings.Builder
	b.Grow(len(escapedPath) + 16)
	for i, seg := range strings.Split(escapedPath, "/") {
		if i > 0 {
			b.WriteByte('/')
		}
		uriEncode(&b, unescape(seg), false)
	}
	return b.String()
}

type queryPair struct{ key, value string }

// unescape decodes %XX sequences (not '+'), keeping s as is when it is
// not validly encoded.
func unescape(s string) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	u, err := url.PathUnescape(s)
	if err != nil {
		return s
	}
	return u
}

// parseQuery splits a raw query into decoded pairs, in order.
func parseQuery(raw string) []queryPair {
	if raw == "" {
		return nil
	}
	out := make([]queryPair, 0, strings.Count(raw, "&")+1)
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		out = append(out, queryPair{unescape(k), unescape(v)})
	}
	return out
}

// canonicalQuery sorts and re-encodes the query, leaving out skip (the
// presigned X-Amz-Signature).
func canonicalQuery(pairs []queryPair, skip string) string {
	if len(pairs) == 0 {
		return ""
	}
	enc := make([]queryPair, 0, len(pairs))
	var b strings.Builder
	for _, p := range pairs {
		if skip != "" && p.key == skip {
			continue
		}
		b.Reset()
		uriEncode(&b, p.key, false)
		k := b.String()
		b.Reset()
		uriEncode(&b, p.value, false)
		enc = append(enc, queryPair{k, b.String()})
	}
	slices.SortFunc(enc, func(x, y queryPair) int {
		if c := strings.Compare(x.key, y.key); c != 0 {
			return c
		}
		return strings.Compare(x.value, y.value)
	})
	b.Reset()
	for i, p := range enc {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.key)
		b.WriteByte('=')
		b.WriteString(p.value)
	}
	return b.String()
}

// writeHeaderValue trims the value and folds inner whitespace runs into
// one space.
func writeHeaderValue(b *strings.Builder, v string) {
	v = strings.TrimSpace(v)
	space := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			space = true
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteByte(c)
	}
}

// headerValues returns the values of a signed header, including the
// ones net/http moves out of r.Header.
func headerValues(r *http.Request, name string) []string {
	switch name {
	case "host":
		return []string{r.Host}
	case "content-length":
		if vs := r.Header.Values("Content-Length"); len(vs) > 0 {
			return vs
		}
		if r.ContentLength >= 0 && (r.ContentLength > 0 || r.Body != nil && r.Body != http.NoBody) {
			return []string{strconv.FormatInt(r.ContentLength, 10)}
		}
		return nil
	case "transfer-encoding":
		if vs := r.Header.Values("Transfer-Encoding"); len(vs) > 0 {
			return vs
		}
		if len(r.TransferEncoding) > 0 {
			return []string{strings.Join(r.TransferEncoding, ",")}
		}
		return nil
	}
	return r.Header.Values(name)
}

// canonicalRequest builds S3's canonical request. signedHeaders are
// lowercase names in the order of the SignedHeaders list.
func canonicalRequest(r *http.Request, uri, query string, signedHeaders []string, signedHeadersRaw, payloadHash string) string {
	var b strings.Builder
	b.Grow(256 + len(uri) + len(query) + len(signedHeadersRaw))
	b.WriteString(r.Method)
	b.WriteByte('\n')
	b.WriteString(uri)
	b.WriteByte('\n')
	b.WriteString(query)
	b.WriteByte('\n')
	for _, h := range signedHeaders {
		b.WriteString(h)
		b.WriteByte(':')
		for i, v := range headerValues(r, h) {
			if i > 0 {
				b.WriteByte(',')
			}
			writeHeaderValue(&b, v)
		}
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(signedHeadersRaw)
	b.WriteByte('\n')
	b.WriteString(payloadHash)
	return b.String()
}
