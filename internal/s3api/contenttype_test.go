package s3api

import (
	"errors"
	"mime"
	"strings"
	"testing"

	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

var testAllowed = []string{"image/*", "text/plain"}

func TestContentTypeIsOneAllowedMediaType(t *testing.T) {
	tests := []struct {
		name    string
		allowed []string
		values  []string
		want    *s3err.Error // nil: accepted
	}{
		{"no list, anything", nil, []string{"image/x, text/html"}, nil},
		{"no list, none", nil, nil, nil},
		{"exact", testAllowed, []string{"text/plain"}, nil},
		{"wildcard", testAllowed, []string{"image/png"}, nil},
		{"parameters", testAllowed, []string{"text/plain; charset=utf-8"}, nil},
		{"quoted parameter", testAllowed, []string{`text/plain; charset="utf-8"`}, nil},
		{"upper case", testAllowed, []string{"IMAGE/PNG"}, nil},
		{"upper case entry", []string{"Image/*"}, []string{"image/png"}, nil},
		{"spaces around", testAllowed, []string{"  image/png ; q=1  "}, nil},
		{"any type", []string{"*/*"}, []string{"application/octet-stream"}, nil},

		{"list after a wildcard match", testAllowed, []string{"image/x, text/html"}, errInvalidContentType},
		{"empty parameter then a list", testAllowed, []string{"text/plain;,text/html"}, errInvalidContentType},
		{"parameter then a list", testAllowed, []string{"image/png; q=1, text/html"}, errInvalidContentType},
		{"comma in a quoted parameter", testAllowed, []string{`text/plain; x="a,text/html"`}, errInvalidContentType},
		{"two headers", testAllowed, []string{"image/png", "text/html"}, errInvalidContentType},
		{"the same header twice", testAllowed, []string{"image/png", "image/png"}, errInvalidContentType},
		{"no subtype", testAllowed, []string{"image"}, errInvalidContentType},
		{"empty subtype", testAllowed, []string{"image/"}, errInvalidContentType},
		{"empty type", testAllowed, []string{"/png"}, errInvalidContentType},
		{"wildcard sent", testAllowed, []string{"image/*"}, errInvalidContentType},
		{"space instead of a semicolon", testAllowed, []string{"image/png text/html"}, errInvalidContentType},
		{"parameter without value", testAllowed, []string{"image/png; text/html"}, errInvalidContentType},
		{"duplicate parameter", testAllowed, []string{"text/plain; a=1; a=2"}, errInvalidContentType},
		{"non-breaking space after the type", testAllowed, []string{"image/png\u00a0"}, errInvalidContentType},
		{"non-ASCII in a quoted parameter", testAllowed, []string{"text/plain; x=\"é\""}, errInvalidContentType},
		{"empty", testAllowed, []string{""}, errInvalidContentType},
		{"blank", testAllowed, []string{"   "}, errInvalidContentType},

		{"missing", testAllowed, nil, errContentTypeRequired},
		{"not allowed", testAllowed, []string{"text/html"}, errContentTypeNotAllowed},
		{"wildcard is not a string prefix", testAllowed, []string{"imagex/png"}, errContentTypeNotAllowed},
		{"exact is not a prefix", testAllowed, []string{"text/plainx"}, errContentTypeNotAllowed},
		{"subtype of an exact entry", testAllowed, []string{"text/plain+html"}, errContentTypeNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkContentType(tt.allowed, tt.values)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("%q refused: %v", tt.values, err)
				}
				return
			}
			var e *s3err.Error
			if !errors.As(err, &e) || e.Status != 400 || e.Code != "InvalidArgument" || e.Message != tt.want.Message {
				t.Fatalf("%q: error %v, want %v", tt.values, err, tt.want)
			}
		})
	}
}

// essence is a browser's reading of a Content-Type (the WHATWG MIME
// sniffing standard's "parse a MIME type", reduced to the essence):
// written independently of checkContentType, as the oracle of the fuzz
// test. ok is false where a browser would not see a valid MIME type.
func essence(v string) (typ, sub string, ok bool) {
	const httpSpace = " \t\r\n"
	v = strings.Trim(v, httpSpace)
	slash := strings.IndexByte(v, '/')
	if slash < 0 {
		return "", "", false
	}
	typ = v[:slash]
	rest := v[slash+1:]
	if semi := strings.IndexByte(rest, ';'); semi >= 0 {
		rest = rest[:semi]
	}
	sub = strings.TrimRight(rest, httpSpace)
	if !httpToken(typ) || !httpToken(sub) {
		return "", "", false
	}
	return strings.ToLower(typ), strings.ToLower(sub), true
}

func httpToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// FuzzContentTypeAllowList checks the property the allow list promises:
// whatever is accepted is one header holding one valid media type, read
// the same by Go and by a browser, whose type/subtype is on the list.
func FuzzContentTypeAllowList(f *testing.F) {
	for _, s := range []string{
		"image/png", "text/plain", "text/plain; charset=utf-8", "image/x, text/html",
		"text/plain;,text/html", "image/png; q=1, text/html", `text/plain; x="a,b"`,
		"IMAGE/SVG+XML", "image/png\u00a0", "image/png\x85", "image", "image/", "image/*",
		"imagex/png", "text/plainx", "text/html", " image/png ", "image/png;", "image/png; a",
		`image/png; a="\"text/html"`, "image/png\ttext/html", "multipart/mixed; boundary=,",
		"text/plain; charset*=utf-8''%e2%82%ac", "image/png; a*0=x; a*1=y",
	} {
		f.Add(s, "")
	}
	f.Add("image/png", "text/html")
	f.Add("image/png", "image/png")
	f.Fuzz(func(t *testing.T, first, second string) {
		values := []string{first}
		if second != "" {
			values = append(values, second)
		}
		err := checkContentType(testAllowed, values)
		if err != nil {
			var e *s3err.Error
			if !errors.As(err, &e) || e.Status != 400 {
				t.Fatalf("%q: refused with %v, want a 400 S3 error", values, err)
			}
			return
		}
		if len(values) != 1 {
			t.Fatalf("%q: two Content-Type headers accepted", values)
		}
		v := values[0]
		if strings.ContainsRune(v, ',') {
			t.Fatalf("%q: a comma accepted", v)
		}
		mt, _, perr := mime.ParseMediaType(v)
		if perr != nil {
			t.Fatalf("%q accepted, but Go cannot parse it: %v", v, perr)
		}
		typ, sub, ok := essence(v)
		if !ok {
			t.Fatalf("%q accepted, but a browser sees no valid MIME type in it", v)
		}
		if typ+"/"+sub != mt {
			t.Fatalf("%q accepted as %q, but a browser reads %s/%s", v, mt, typ, sub)
		}
		if typ != "image" && mt != "text/plain" {
			t.Fatalf("%q accepted as %q, which the list does not allow", v, mt)
		}
	})
}
