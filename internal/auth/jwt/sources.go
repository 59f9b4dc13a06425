package jwt

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
)

// Token source types of config.TokenSource.
const (
	sourceBearer = "bearer"
	sourceQuery  = "query"
	sourceHeader = "header"
	sourceCookie = "cookie"
)

type source struct {
	kind string
	name string
}

// parseSources checks the configured token sources; none means bearer.
func parseSources(cfg []config.TokenSource) ([]source, error) {
	if len(cfg) == 0 {
		return []source{{kind: sourceBearer}}, nil
	}
	out := make([]source, 0, len(cfg))
	for i, s := range cfg {
		switch s.Type {
		case sourceBearer:
			out = append(out, source{kind: sourceBearer})
		case sourceQuery, sourceHeader, sourceCookie:
			if s.Name == "" {
				return nil, fmt.Errorf("jwt: token_sources[%d]: type %s needs a name", i, s.Type)
			}
			name := s.Name
			if s.Type == sourceHeader {
				name = http.CanonicalHeaderKey(name)
			}
			out = append(out, source{kind: s.Type, name: name})
		default:
			return nil, fmt.Errorf("jwt: token_sources[%d]: unknown type %q (want bearer, query, header or cookie)", i, s.Type)
		}
	}
	return out, nil
}

// extract returns the token of the first source that has one, and whether
// that source is a cookie. Every configured query parameter is removed
// from the request whether or not its token is the one used, so no token
// travels further than here.
func (a *Authenticator) extract(r *http.Request) (token string, fromCookie bool, ok bool) {
	for _, s := range a.sources {
		var t string
		switch s.kind {
		case sourceBearer:
			t = bearer(r.Header.Get("Authorization"))
		case sourceQuery:
			t = stripQueryParam(r, s.name)
		case sourceHeader:
			t = r.Header.Get(s.name)
			if b := bearer(t); b != "" {
				t = b
			}
			t = strings.TrimSpace(t)
		case sourceCookie:
			if c, err := r.Cookie(s.name); err == nil {
				t = strings.TrimSpace(c.Value)
			}
		}
		if token == "" && t != "" {
			token, fromCookie = t, s.kind == sourceCookie
		}
	}
	return token, fromCookie, token != ""
}

// bearer returns the credentials of an "Authorization: Bearer …" value,
// or "" for any other scheme (such as AWS4-HMAC-SHA256).
func bearer(v string) string {
	scheme, rest, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(rest)
}

// stripQueryParam removes every occurrence of name from the request's
// query (URL.RawQuery, RequestURI and a parsed Form) and returns the first
// non-empty value. The other parameters keep their original encoding and
// order.
func stripQueryParam(r *http.Request, name string) string {
	raw := r.URL.RawQuery
	if raw == "" {
		return ""
	}
	var (
		value string
		found bool
		keep  []string
	)
	for part := range strings.SplitSeq(raw, "&") {
		k, v, _ := strings.Cut(part, "=")
		if uk, err := url.QueryUnescape(k); err == nil && uk == name {
			found = true
			if value == "" {
				if uv, err := url.QueryUnescape(v); err == nil {
					value = uv
				}
			}
			continue
		}
		keep = append(keep, part)
	}
	if !found {
		return ""
	}
	q := strings.Join(keep, "&")
	r.URL.RawQuery = q
	if q == "" {
		r.URL.ForceQuery = false
	}
	if i := strings.IndexByte(r.RequestURI, '?'); i >= 0 {
		r.RequestURI = r.RequestURI[:i]
		if q != "" {
			r.RequestURI += "?" + q
		}
	}
	if r.Form != nil {
		r.Form.Del(name)
	}
	return strings.TrimSpace(value)
}
