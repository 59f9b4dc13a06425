package sigv4

import (
	"strconv"
	"strings"

	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

// Limits on what a client may send, so parsing is cheap and bounded.
const (
	maxAuthorizationLen = 8 << 10
	maxSignedHeaders    = 64
	maxPresignExpires   = 604800 // seven days, S3's limit
)

// sigInput is what a request claims about its signature.
type sigInput struct {
	accessKey     string
	scopeDate     string
	region        string
	service       string
	signedHeaders []string
	signedRaw     string
	signature     string // 64 lowercase hex digits
	presigned     bool
	// presigned only
	amzDate  string
	expires  int64
	token    string
	hasToken bool
	query    []queryPair
}

func (s *sigInput) scope() string {
	return s.scopeDate + "/" + s.region + "/" + s.service + "/" + terminator
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// parseCredential splits "AK/yyyymmdd/region/service/aws4_request". The
// access key is everything before the last four fields.
func parseCredential(in *sigInput, v string) string {
	parts := strings.Split(v, "/")
	if len(parts) < 5 {
		return "the Credential is malformed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\"."
	}
	n := len(parts)
	in.accessKey = strings.Join(parts[:n-4], "/")
	in.scopeDate, in.region, in.service = parts[n-4], parts[n-3], parts[n-2]
	if in.accessKey == "" {
		return "the Credential is missing an access key."
	}
	if len(in.scopeDate) != scopeDateLen || !isDigits(in.scopeDate) {
		return "incorrect date format '" + in.scopeDate + "'. This date in the credential must be in the format \"yyyyMMdd\"."
	}
	if parts[n-1] != terminator {
		return "incorrect terminal '" + parts[n-1] + "'. This endpoint uses 'aws4_request'."
	}
	return ""
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// parseSignedHeaders validates a SignedHeaders list ("a;b;c").
func parseSignedHeaders(in *sigInput, v string) string {
	if v == "" {
		return "SignedHeaders is empty."
	}
	n := strings.Count(v, ";") + 1
	if n > maxSignedHeaders {
		return "too many SignedHeaders."
	}
	in.signedRaw = v
	in.signedHeaders = make([]string, 0, n)
	for h := range strings.SplitSeq(v, ";") {
		if h == "" || h != strings.ToLower(h) || strings.ContainsAny(h, " \t:") {
			return "SignedHeaders contains an invalid header name."
		}
		for _, seen := range in.signedHeaders {
			if seen == h {
				return "SignedHeaders contains a duplicate header."
			}
		}
		in.signedHeaders = append(in.signedHeaders, h)
	}
	return ""
}

func parseSignature(in *sigInput, v string) bool {
	if len(v) != 64 || !isLowerHex(v) {
		return false
	}
	in.signature = v
	return true
}

// parseAuthorization parses an "AWS4-HMAC-SHA256 Credential=…,
// SignedHeaders=…, Signature=…" header. Errors are
// AuthorizationHeaderMalformed.
func parseAuthorization(h string) (*sigInput, *s3err.Error) {
	malformed := func(msg string) *s3err.Error {
		return s3err.ErrAuthorizationHeaderMalformed.WithMessage("The authorization header is malformed; %s", msg)
	}
	if len(h) > maxAuthorizationLen {
		return nil, malformed("the header is too long.")
	}
	rest, ok := strings.CutPrefix(h, algorithm)
	if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '\t') {
		return nil, malformed("the authorization algorithm must be " + algorithm + ".")
	}
	in := &sigInput{}
	var haveCred, haveSH, haveSig bool
	for field := range strings.SplitSeq(rest, ",") {
		field = strings.TrimSpace(field)
		k, v, ok := strings.Cut(field, "=")
		if !ok {
			return nil, malformed("the authorization component '" + truncate(field) + "' is malformed.")
		}
		switch k {
		case "Credential":
			if haveCred {
				return nil, malformed("Credential is repeated.")
			}
			haveCred = true
			if msg := parseCredential(in, v); msg != "" {
				return nil, malformed(msg)
			}
		case "SignedHeaders":
			if haveSH {
				return nil, malformed("SignedHeaders is repeated.")
			}
			haveSH = true
			if msg := parseSignedHeaders(in, v); msg != "" {
				return nil, malformed(msg)
			}
		case "Signature":
			if haveSig {
				return nil, malformed("Signature is repeated.")
			}
			haveSig = true
			if !parseSignature(in, v) {
				return nil, malformed("the Signature must be 64 lowercase hexadecimal characters.")
			}
		default:
			return nil, malformed("the authorization component '" + truncate(k) + "' is not recognised.")
		}
	}
	if !haveCred || !haveSH || !haveSig {
		return nil, malformed("the Credential, SignedHeaders and Signature components are required.")
	}
	return in, nil
}

// truncate keeps client-supplied text in error messages short.
func truncate(s string) string {
	const n = 64
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// Presigned URL query parameters.
const (
	qAlgorithm     = "X-Amz-Algorithm"
	qCredential    = "X-Amz-Credential"
	qDate          = "X-Amz-Date"
	qExpires       = "X-Amz-Expires"
	qSignedHeaders = "X-Amz-SignedHeaders"
	qSignature     = "X-Amz-Signature"
	qSecurityToken = "X-Amz-Security-Token"
)

// parsePresigned parses the X-Amz-* query parameters of a presigned URL.
// Errors are AuthorizationQueryParametersError.
func parsePresigned(pairs []queryPair) (*sigInput, *s3err.Error) {
	bad := func(msg string) *s3err.Error {
		return s3err.ErrAuthorizationQueryParametersError.WithMessage("%s", msg)
	}
	in := &sigInput{presigned: true, query: pairs}
	seen := map[string]string{}
	for _, p := range pairs {
		switch p.key {
		case qAlgorithm, qCredential, qDate, qExpires, qSignedHeaders, qSignature, qSecurityToken:
			if _, dup := seen[p.key]; dup {
				return nil, bad("Query parameter " + p.key + " is repeated.")
			}
			seen[p.key] = p.value
		}
	}
	if seen[qAlgorithm] != algorithm {
		return nil, bad("X-Amz-Algorithm only supports \"" + algorithm + "\".")
	}
	for _, k := range []string{qCredential, qDate, qExpires, qSignedHeaders, qSignature} {
		if _, ok := seen[k]; !ok {
			return nil, bad("Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.")
		}
	}
	if msg := parseCredential(in, seen[qCredential]); msg != "" {
		return nil, bad("Error parsing the X-Amz-Credential parameter; " + msg)
	}
	if msg := parseSignedHeaders(in, seen[qSignedHeaders]); msg != "" {
		return nil, bad("Error parsing the X-Amz-SignedHeaders parameter; " + msg)
	}
	if !parseSignature(in, seen[qSignature]) {
		return nil, bad("X-Amz-Signature must be 64 lowercase hexadecimal characters.")
	}
	exp, err := strconv.ParseInt(seen[qExpires], 10, 64)
	if err != nil || !isDigits(seen[qExpires]) {
		return nil, bad("X-Amz-Expires should be a number.")
	}
	if exp < 1 {
		return nil, bad("X-Amz-Expires must be non-negative.")
	}
	if exp > maxPresignExpires {
		return nil, bad("X-Amz-Expires must be less than a week (in seconds) that is 604800.")
	}
	in.expires = exp
	in.amzDate = seen[qDate]
	in.token, in.hasToken = seen[qSecurityToken]
	return in, nil
}
