package auth

import (
	"net/http"
	"strings"
)

// RequestPath returns the path of the request-target exactly as the
// client sent it: r.RequestURI up to the query, never decoded, cleaned or
// re-escaped. It is the one spelling of the path that routing, key
// decoding and signature verification all work from, so that they agree
// on its segments: "/" separates segments, "%2F" never does.
//
// r.URL cannot serve for this: r.URL.Path is decoded (an encoded slash
// becomes a separator), and r.URL.EscapedPath() returns the client's
// spelling only when net/url accepts it as canonical; a path that also
// holds a character net/url would escape ("|", `"`, "{", raw UTF-8, …) is
// re-escaped from the decoded path, and its "%2F" then turns into "/".
//
// An absolute-form target ("http://host/path") yields its path; a request
// built in process without RequestURI falls back to r.URL.EscapedPath().
// A target that is neither ("*", authority-form) yields itself, which
// matches no bucket.
func RequestPath(r *http.Request) string {
	u := r.RequestURI
	if u == "" {
		return r.URL.EscapedPath()
	}
	if i := strings.IndexByte(u, '?'); i >= 0 {
		u = u[:i]
	}
	if strings.HasPrefix(u, "/") {
		return u
	}
	if _, rest, ok := strings.Cut(u, "://"); ok {
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			return rest[i:]
		}
		return "/"
	}
	return u
}
