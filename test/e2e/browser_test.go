package e2e

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mizuchi-uploadr/mizuchi/internal/auth/jwt"
)

// browserPage is a web application's page on its own origin; its script
// (set once the upload target is known) uploads with a JWT and writes the
// outcome into the title.
type browserPage struct {
	*httptest.Server
	html atomic.Value // string
}

func newBrowserPage(t *testing.T) *browserPage {
	t.Helper()
	p := &browserPage{}
	p.html.Store("")
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(p.html.Load().(string)))
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *browserPage) uploads(target, token, body string) {
	p.html.Store(fmt.Sprintf(`<!doctype html><html><head><title>pending</title></head><body><script>
(async () => {
  try {
    const r = await fetch(%q, {method: "PUT", body: %q,
      headers: {"Authorization": "Bearer " + %q, "Content-Type": "text/plain"}});
    document.title = "status " + r.status + " etag " + r.headers.get("ETag");
  } catch (e) {
    document.title = "failed " + e.name;
  }
})();
</script></body></html>`, target, body, token))
}

// browserTitle loads url in headless Chromium and returns the page title
// once the page's script has run.
func browserTitle(t *testing.T, url string) string {
	t.Helper()
	bin := cliLook(t, "/usr/bin/chromium")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--virtual-time-budget=15000", "--dump-dom", url)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	m := regexp.MustCompile(`<title>([^<]*)</title>`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no title in the page:\n%s", out)
	}
	return html.UnescapeString(string(m[1]))
}

// TestBrowserUploadsCrossOrigin has a real browser (headless Chromium) run
// a page that uploads to Mizuchi from another origin with a JWT: the CORS
// preflight, the authenticated PUT and the reading of the ETag happen as
// they would for a web application. A page on an origin the bucket does
// not list cannot upload.
func TestBrowserUploadsCrossOrigin(t *testing.T) {
	t.Parallel()
	const secret = "browser-test-secret-0123456789abcdef"
	app, other := newBrowserPage(t), newBrowserPage(t)
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
      jwt: { algorithm: HS256, secret: %q }
    cors:
      allowed_origins: [%q]
`, secret, app.URL))
	token, err := jwt.Mint(jwt.MintOptions{Subject: "alice", Secret: []byte(secret)})
	if err != nil {
		t.Fatal(err)
	}

	app.uploads(m.URL+"/web/alice/from-browser.txt", token, "hello from a browser")
	title := browserTitle(t, app.URL)
	if !strings.HasPrefix(title, "status 200 etag \"") {
		t.Fatalf("the page's upload: %q\n%s", title, m.Proc.Output())
	}
	assertFile(t, filepath.Join(m.Dir, "web/alice/from-browser.txt"), []byte("hello from a browser"))

	other.uploads(m.URL+"/web/alice/from-elsewhere.txt", token, "not allowed")
	if title := browserTitle(t, other.URL); title != "failed TypeError" {
		t.Fatalf("a page on an origin the bucket does not list: %q", title)
	}
	if _, err := os.Stat(filepath.Join(m.Dir, "web/alice/from-elsewhere.txt")); err == nil {
		t.Fatal("the page on another origin uploaded")
	}
}
