package e2e

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mizuchi-uploadr/mizuchi/internal/auth/jwt"
)

const ckSecret = "cookie-origin-secret-0123456789abcdef"

// ckConfig: "web" takes a JWT from the cookie "mz" or a bearer header and
// lists one origin by name; "wild" takes the cookie too and allows any
// origin ("*").
const ckConfig = `
server:
  address: "127.0.0.1:{{S3_PORT}}"
metrics:
  address: "127.0.0.1:{{METRICS_PORT}}"
buckets:
  - name: web
    path_prefix: /web
    filesystem: { root: "{{DIR}}/web" }
    auth:
      enabled: true
      jwt:
        algorithm: HS256
        secret: "` + ckSecret + `"
        token_sources: [{type: cookie, name: mz}, {type: bearer}]
    cors:
      allowed_origins: ["http://app.example"]
      allowed_methods: [PUT, POST]
  - name: wild
    path_prefix: /wild
    filesystem: { root: "{{DIR}}/wild" }
    auth:
      enabled: true
      jwt:
        algorithm: HS256
        secret: "` + ckSecret + `"
        token_sources: [{type: cookie, name: mz}]
    cors:
      allowed_origins: ["*"]
`

// TestCookieTokenNeedsAllowedOrigin: a browser attaches a cookie to any
// request to the proxy's site, whichever page made it, so a request
// authenticated by a cookie is executed only when its Origin is listed by
// name in the bucket's CORS rules for its method. A cross-site form or
// no-cors fetch (a "simple" request, no preflight) from another page is
// refused before anything happens; a bearer token (never sent by the
// browser on its own) needs no Origin.
func TestCookieTokenNeedsAllowedOrigin(t *testing.T) {
	t.Parallel()
	m := startMizuchi(t, ckConfig)
	tok, err := jwt.Mint(jwt.MintOptions{Subject: "alice", Secret: []byte(ckSecret)})
	if err != nil {
		t.Fatal(err)
	}
	cookie := "mz=" + tok
	do := func(method, path string, h http.Header, body string) azResult {
		t.Helper()
		resp, b := rawRequest(t, method, m.URL+path, strings.NewReader(body), h)
		return azParse(resp, b)
	}
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}

	refused := []struct {
		what, method, path string
		h                  http.Header
	}{
		{"cookie, no Origin", "POST", "/web/csrf/a.bin?uploads", hdr("Cookie", cookie)},
		{"cookie, unlisted Origin", "POST", "/web/csrf/b.bin?uploads", hdr("Cookie", cookie, "Origin", "http://evil.example")},
		{"cookie, unlisted Origin, form content type", "POST", "/web/csrf/c.bin?uploads",
			hdr("Cookie", cookie, "Origin", "http://evil.example", "Content-Type", "application/x-www-form-urlencoded", "Sec-Fetch-Site", "cross-site")},
		{"cookie, Origin null (sandboxed page)", "POST", "/web/csrf/d.bin?uploads", hdr("Cookie", cookie, "Origin", "null")},
		{"cookie, listed Origin with another port", "POST", "/web/csrf/e.bin?uploads", hdr("Cookie", cookie, "Origin", "http://app.example:8080")},
		{"cookie, listed Origin, method not allowed", "DELETE", "/web/csrf/f.bin?uploadId=x", hdr("Cookie", cookie, "Origin", "http://app.example")},
		{"cookie, no Origin, Referer of the listed origin", "PUT", "/web/csrf/g.bin", hdr("Cookie", cookie, "Referer", "http://app.example/page")},
		{"cookie, no Origin, Sec-Fetch-Site same-origin", "PUT", "/web/csrf/h.bin", hdr("Cookie", cookie, "Sec-Fetch-Site", "same-origin")},
		{"cookie on a wildcard bucket", "PUT", "/wild/csrf/i.bin", hdr("Cookie", cookie, "Origin", "http://evil.example")},
		{"cookie on a wildcard bucket, no Origin", "PUT", "/wild/csrf/j.bin", hdr("Cookie", cookie)},
	}
	for _, c := range refused {
		do(c.method, c.path, c.h, "payload").want(t, c.what, 403, "AccessDenied")
	}
	for _, b := range []string{"web", "wild"} {
		if files := visibleFiles(t, filepath.Join(m.Dir, b)); len(files) != 0 {
			t.Fatalf("refused cookie requests left %v in bucket %s", files, b)
		}
	}

	// The listed origin uploads with its cookie, by PutObject and by
	// multipart; the answer lets the page read it.
	r := do("PUT", "/web/alice/ok.txt", hdr("Cookie", cookie, "Origin", "http://app.example"), "from the app")
	r.want(t, "cookie, listed Origin", 200, "")
	if got := r.Header.Get("Access-Control-Allow-Origin"); got != "http://app.example" {
		t.Errorf("Access-Control-Allow-Origin %q", got)
	}
	assertFile(t, filepath.Join(m.Dir, "web/alice/ok.txt"), []byte("from the app"))
	do("POST", "/web/alice/mp.bin?uploads", hdr("Cookie", cookie, "Origin", "http://app.example"), "").
		want(t, "cookie, listed Origin, CreateMultipartUpload", 200, "")

	// A bearer token is not sent by a browser on its own: no Origin needed.
	do("PUT", "/web/alice/bearer.txt", hdr("Authorization", "Bearer "+tok), "bearer").want(t, "bearer, no Origin", 200, "")
	// Bearer and an unlisted Origin: CORS decides what the page may read,
	// the request itself carries an explicit credential.
	do("PUT", "/web/alice/bearer2.txt", hdr("Authorization", "Bearer "+tok, "Origin", "http://evil.example"), "bearer").
		want(t, "bearer, unlisted Origin", 200, "")

	if n := azMetric(t, m.MetricsURL, "mizuchi_errors_total", `bucket="web"`, `code="AccessDenied"`); n < 8 {
		t.Errorf("mizuchi_errors_total AccessDenied on web = %v", n)
	}
}
