package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mizuchi-uploadr/mizuchi/internal/auth/jwt"
)

// cookiePage serves a page that holds the upload cookie (as after a login
// on the site) and runs script against Mizuchi. Cookies ignore ports, so
// a cookie of the page's host 127.0.0.1 goes with requests to Mizuchi on
// 127.0.0.1 too: the same situation as app.example.com and
// uploads.example.com sharing a parent-domain cookie.
func cookiePage(t *testing.T, token, script string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "mz", Value: token, Path: "/"})
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html><head><title>pending</title></head><body><script>
(async () => {
  try { %s } catch (e) { document.title = "failed " + e.name; }
})();
</script></body></html>`, script)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestBrowserCookieUploadOnlyFromListedOrigin: in headless Chromium, a
// page on an origin the bucket does not list fires the classic forgery (a
// no-cors POST ?uploads with the user's cookie, no preflight; a no-cors
// fetch allows no PUT): nothing is
// created. The listed origin's page uploads with the same cookie.
func TestBrowserCookieUploadOnlyFromListedOrigin(t *testing.T) {
	t.Parallel()
	const secret = "browser-cookie-secret-0123456789abcdef"
	token, err := jwt.Mint(jwt.MintOptions{Subject: "alice", Secret: []byte(secret)})
	if err != nil {
		t.Fatal(err)
	}
	// The listed page needs its URL in the config before Mizuchi starts,
	// and Mizuchi's URL in its script: the script comes from a variable.
	var target string
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "mz", Value: token, Path: "/"})
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html><head><title>pending</title></head><body><script>
(async () => {
  try {
    const r = await fetch(%q, {method: "PUT", body: "from the app", credentials: "include"});
    document.title = "status " + r.status;
  } catch (e) { document.title = "failed " + e.name; }
})();
</script></body></html>`, target)
	}))
	t.Cleanup(app.Close)
	m := startMizuchi(t, fmt.Sprintf(`
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
        secret: %q
        token_sources: [{type: cookie, name: mz}]
    cors:
      allowed_origins: [%q]
`, secret, app.URL))
	target = m.URL + "/web/alice/from-app.txt"

	evil := cookiePage(t, token, fmt.Sprintf(`
    await fetch(%q, {method: "POST", mode: "no-cors", credentials: "include"});
    await fetch(%q, {method: "POST", mode: "no-cors", credentials: "include", body: "a=b",
      headers: {"Content-Type": "application/x-www-form-urlencoded"}});
    document.title = "sent";`, m.URL+"/web/alice/forged.bin?uploads", m.URL+"/web/alice/forged2.bin?uploads"))
	if title := browserTitle(t, evil.URL); title != "sent" {
		t.Fatalf("the forging page: %q", title)
	}
	waitFor(t, "both forged requests answered", func() bool {
		return strings.Count(m.Proc.Output(), `"key":"alice/forged`) >= 2
	})
	if files := visibleFiles(t, filepath.Join(m.Dir, "web")); len(files) != 0 {
		t.Fatalf("a page on an unlisted origin created %v with the user's cookie", files)
	}

	if title := browserTitle(t, app.URL); title != "status 200" {
		t.Fatalf("the listed page's upload: %q\n%s", title, m.Proc.Output())
	}
	assertFile(t, filepath.Join(m.Dir, "web/alice/from-app.txt"), []byte("from the app"))
}
