package s3api

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

// corsMatch reports whether a cross-origin request from origin with method
// is allowed on b, and which Access-Control-Allow-Origin to answer ("*"
// when allowed through the wildcard).
func (b *Bucket) corsMatch(origin, method string) (allowOrigin string, ok bool) {
	c := b.CORS
	if c == nil || !slices.Contains(c.AllowedMethods, method) {
		return "", false
	}
	for _, o := range c.AllowedOrigins {
		if o == origin {
			return origin, true
		}
	}
	if slices.Contains(c.AllowedOrigins, "*") {
		return "*", true
	}
	return "", false
}

// corsHeadersAllowed reports whether every header a preflight asks for
// (Access-Control-Request-Headers) may be sent.
func (b *Bucket) corsHeadersAllowed(requested string) bool {
	for _, h := range strings.Split(requested, ",") {
		h = strings.ToLower(strings.TrimSpace(h))
		if h == "" {
			continue
		}
		ok := false
		for _, a := range b.CORS.AllowedHeaders {
			a = strings.ToLower(a)
			if a == "*" || a == h || (strings.HasSuffix(a, "*") && strings.HasPrefix(h, strings.TrimSuffix(a, "*"))) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// setAllowOrigin writes the headers common to preflights and answers.
func setAllowOrigin(h http.Header, allowOrigin string) {
	h.Set("Access-Control-Allow-Origin", allowOrigin)
	if allowOrigin != "*" {
		// An origin listed by name may send cookies (the cookie token
		// source); the answer depends on the Origin header.
		h.Set("Access-Control-Allow-Credentials", "true")
		h.Add("Vary", "Origin")
	}
}

// corsResponse adds the CORS headers to the answer of a cross-origin
// request, errors included (a page must be able to read S3's error).
func (b *Bucket) corsResponse(h http.Header, origin, method string) {
	allowOrigin, ok := b.corsMatch(origin, method)
	if !ok {
		return
	}
	setAllowOrigin(h, allowOrigin)
	if len(b.CORS.ExposeHeaders) > 0 {
		h.Set("Access-Control-Expose-Headers", strings.Join(b.CORS.ExposeHeaders, ", "))
	}
}

var errCORSForbidden = s3err.ErrAccessForbidden.WithMessage("CORSResponse: This CORS request is not allowed. This is usually because the evaluation of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not allowed by the bucket's CORS rules.")

// preflight answers a CORS preflight (OPTIONS with
// Access-Control-Request-Method). Preflights carry no credentials, so they
// are answered before authentication, from the bucket's rules alone.
func (b *Bucket) preflight(w http.ResponseWriter, r *http.Request, origin string) error {
	if b.CORS == nil {
		return s3err.ErrAccessForbidden.WithMessage("CORSResponse: CORS is not enabled for this bucket.")
	}
	method := r.Header.Get("Access-Control-Request-Method")
	allowOrigin, ok := b.corsMatch(origin, method)
	requested := r.Header.Get("Access-Control-Request-Headers")
	if !ok || !b.corsHeadersAllowed(requested) {
		return errCORSForbidden
	}
	h := w.Header()
	setAllowOrigin(h, allowOrigin)
	h.Set("Access-Control-Allow-Methods", strings.Join(b.CORS.AllowedMethods, ", "))
	if requested != "" {
		h.Set("Access-Control-Allow-Headers", requested)
	}
	if b.CORS.MaxAgeSeconds > 0 {
		h.Set("Access-Control-Max-Age", strconv.Itoa(b.CORS.MaxAgeSeconds))
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
