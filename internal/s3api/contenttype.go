package s3api

import (
	"mime"
	"strings"

	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

// The three refusals of checkContentType, all 400 InvalidArgument as S3
// answers a bad header value.
var (
	errInvalidContentType    = s3err.ErrInvalidArgument.WithMessage("Content-Type must be a single media type (type/subtype, optional parameters, no comma).")
	errContentTypeRequired   = s3err.ErrInvalidArgument.WithMessage("This bucket accepts only some content types: Content-Type is required.")
	errContentTypeNotAllowed = s3err.ErrUnsupportedMediaType
)

// checkContentType enforces upload.allowed_content_types on the
// Content-Type header values of a PutObject or CreateMultipartUpload.
// With an empty list anything (or nothing) is accepted and stored as
// given. Otherwise the request must carry exactly one Content-Type that
// is exactly one media type: printable ASCII, no comma anywhere (so no
// reader can split it into a list, not even at a comma inside a quoted
// parameter), parsed by mime.ParseMediaType into a type and a subtype,
// neither of them empty nor a wildcard. Its type/subtype must equal an
// entry, or its type must equal the type of a "type/*" entry ("*/*"
// matches every type). Parameters are allowed and not checked.
func checkContentType(allowed []string, values []string) error {
	if len(allowed) == 0 {
		return nil
	}
	switch len(values) {
	case 0:
		return errContentTypeRequired
	case 1:
	default:
		return errInvalidContentType
	}
	typ, sub, ok := parseOneMediaType(values[0])
	if !ok {
		return errInvalidContentType
	}
	for _, a := range allowed {
		at, as, _ := strings.Cut(strings.ToLower(strings.TrimSpace(a)), "/")
		if (at == "*" || at == typ) && (as == "*" || as == sub) {
			return nil
		}
	}
	return errContentTypeNotAllowed
}

// parseOneMediaType returns the lower-case type and subtype of v when v
// is a single, valid media type.
func parseOneMediaType(v string) (typ, sub string, ok bool) {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == ',' || (c < ' ' && c != '\t') || c > '~' {
			return "", "", false
		}
	}
	mt, _, err := mime.ParseMediaType(v)
	if err != nil {
		return "", "", false
	}
	typ, sub, found := strings.Cut(mt, "/")
	if !found || typ == "" || sub == "" || strings.Contains(typ+sub, "*") {
		return "", "", false
	}
	return typ, sub, true
}
