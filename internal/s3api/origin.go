package s3api

import (
	"net/http"

	"github.com/mizuchi-uploadr/mizuchi/internal/auth"
	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

var errAmbientOrigin = s3err.ErrAccessDenied.WithMessage("A request authenticated by a cookie must come from an origin the bucket's CORS rules list by name for its method.")

// checkAmbientOrigin refuses cross-site request forgery. A cookie is
// attached by the browser to every request to the proxy's site, whichever
// page made it; a "simple" request (a form POST, a no-cors fetch) needs
// no preflight, so CORS alone would let any page execute it with the
// user's cookie. A request authenticated by a cookie (p.Ambient) is
// therefore executed only when its Origin header names an origin the
// bucket's CORS rules list by name for the request's method.
//
// Origin is the one signal used: browsers send it on every cross-origin
// request and on every non-GET/HEAD request, and a page cannot forge it.
// No Origin (an old browser, a GET from an <img>, a non-browser client
// holding a cookie), "null" (sandboxed pages, opaque redirects) and the
// wildcard "*" (which, per CORS, never admits credentials) are refused.
// Referer is not used: it is stripped by referrer policies and proves
// nothing Origin does not. Sec-Fetch-Site adds nothing either: a listed
// origin on another site is legitimately "cross-site", and its absence
// says nothing about a non-browser client.
func (b *Bucket) checkAmbientOrigin(r *http.Request, p *auth.Principal) error {
	if p == nil || !p.Ambient {
		return nil
	}
	origins := r.Header.Values("Origin")
	if len(origins) != 1 || origins[0] == "" || origins[0] == "null" {
		return errAmbientOrigin
	}
	if allow, ok := b.corsMatch(origins[0], r.Method); !ok || allow == "*" {
		return errAmbientOrigin
	}
	return nil
}
