package s3api

import (
	"strings"
	"testing"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
)

func corsFixture(t *testing.T, c *config.CORS) *fixture {
	return newFixture(t, config.Upload{}, func(o *Options) { o.Buckets[0].CORS = c })
}

var appCORS = &config.CORS{
	AllowedOrigins: []string{"https://app.example"},
	AllowedMethods: []string{"PUT", "POST"},
	AllowedHeaders: []string{"authorization", "content-type", "x-amz-*"},
	ExposeHeaders:  []string{"ETag", "x-amz-request-id"},
	MaxAgeSeconds:  600,
}

func TestCORSPreflight(t *testing.T) {
	f := corsFixture(t, appCORS)
	tests := []struct {
		name            string
		origin, method  string
		headers         string
		status          int
		allowOrigin     string
		wantCredentials bool
	}{
		{"allowed", "https://app.example", "PUT", "Authorization, Content-Type, X-Amz-Meta-Tag", 200, "https://app.example", true},
		{"no headers asked", "https://app.example", "POST", "", 200, "https://app.example", true},
		{"other origin", "https://evil.example", "PUT", "", 403, "", false},
		{"method not allowed", "https://app.example", "DELETE", "", 403, "", false},
		{"header not allowed", "https://app.example", "PUT", "x-other", 403, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := map[string]string{"Origin": tt.origin, "Access-Control-Request-Method": tt.method}
			if tt.headers != "" {
				hdr["Access-Control-Request-Headers"] = tt.headers
			}
			resp, out := f.do(t, "OPTIONS", "/b/alice/photo.jpg", "", nil, 0, hdr)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d: %s", resp.StatusCode, out)
			}
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != tt.allowOrigin {
				t.Fatalf("Access-Control-Allow-Origin %q, want %q", got, tt.allowOrigin)
			}
			if tt.status != 200 {
				if errorCode(t, out) != "AccessForbidden" {
					t.Fatalf("refusal %s", out)
				}
				return
			}
			if resp.Header.Get("Access-Control-Allow-Methods") != "PUT, POST" || resp.Header.Get("Access-Control-Max-Age") != "600" ||
				(tt.headers != "" && resp.Header.Get("Access-Control-Allow-Headers") != tt.headers) ||
				(resp.Header.Get("Access-Control-Allow-Credentials") == "true") != tt.wantCredentials {
				t.Fatalf("preflight headers %v", resp.Header)
			}
		})
	}
	if f.policy.count() != 0 {
		t.Fatal("a preflight asked the policy engine")
	}
}

func TestCORSHeadersOnAnswers(t *testing.T) {
	f := corsFixture(t, appCORS)
	hdr := map[string]string{"Origin": "https://app.example"}
	resp, _ := f.do(t, "PUT", "/b/alice/a.txt", "alice", strings.NewReader("abc"), 3, hdr)
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		!strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "ETag") {
		t.Fatalf("upload answer %d %v", resp.StatusCode, resp.Header)
	}
	// Errors carry the headers too, so the page can read S3's error.
	resp, out := f.do(t, "PUT", "/b/bob/a.txt", "alice", strings.NewReader("abc"), 3, hdr)
	if resp.StatusCode != 403 || errorCode(t, out) != "AccessDenied" || resp.Header.Get("Access-Control-Allow-Origin") == "" {
		t.Fatalf("refused upload %d %v", resp.StatusCode, resp.Header)
	}
	resp, _ = f.do(t, "PUT", "/b/alice/b.txt", "alice", strings.NewReader("abc"), 3, map[string]string{"Origin": "https://evil.example"})
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("an origin that is not allowed got CORS headers")
	}
}

func TestCORSWildcardAndDisabled(t *testing.T) {
	f := corsFixture(t, &config.CORS{AllowedOrigins: []string{"*"}, AllowedMethods: []string{"PUT"}, AllowedHeaders: []string{"*"}})
	resp, _ := f.do(t, "OPTIONS", "/b/k", "", nil, 0, map[string]string{"Origin": "https://any.example", "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "x-anything"})
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "*" || resp.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Fatalf("wildcard preflight %d %v", resp.StatusCode, resp.Header)
	}
	off := newFixture(t, config.Upload{})
	resp, out := off.do(t, "OPTIONS", "/b/k", "", nil, 0, map[string]string{"Origin": "https://any.example", "Access-Control-Request-Method": "PUT"})
	if resp.StatusCode != 403 || errorCode(t, out) != "AccessForbidden" || !strings.Contains(out, "not enabled") {
		t.Fatalf("preflight without CORS %d %s", resp.StatusCode, out)
	}
}
