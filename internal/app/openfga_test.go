package app_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mizuchi-uploadr/mizuchi/internal/app"
	"github.com/mizuchi-uploadr/mizuchi/internal/config"
	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/openfgaserver"
)

const (
	fgaJWTSecret = "0123456789abcdef0123456789abcdef-fga-test"
	fgaKey       = "fga-preshared-key-for-app-tests"
)

// TestOpenFGAProductionConnection builds the app from a configuration
// reaching OpenFGA over TLS with a preshared key, on both transports, and
// uploads through the handler.
func TestOpenFGAProductionConnection(t *testing.T) {
	fga := openfgaserver.StartWith(t, openfgaserver.Options{PresharedKey: fgaKey, TLS: true},
		openfgaserver.Tuple{User: "user:alice", Relation: "writer", Object: "bucket:files"})
	tests := []struct {
		name      string
		transport string
		conn      string // connection keys of the openfga section
		subject   string
		want      int
	}{
		{name: "grpc: writer", transport: "grpc", conn: "tls: true, ca_file: " + fga.CAFile + ", api_token: " + fgaKey, subject: "alice", want: 200},
		{name: "grpc: not a writer", transport: "grpc", conn: "tls: true, ca_file: " + fga.CAFile + ", api_token: " + fgaKey, subject: "carol", want: 403},
		{name: "grpc: wrong token", transport: "grpc", conn: "tls: true, ca_file: " + fga.CAFile + ", api_token: wrong", subject: "alice", want: 503},
		{name: "grpc: no token", transport: "grpc", conn: "tls: true, ca_file: " + fga.CAFile, subject: "alice", want: 503},
		{name: "grpc: untrusted certificate", transport: "grpc", conn: "tls: true, api_token: " + fgaKey, subject: "alice", want: 503},
		{name: "grpc: plaintext to a TLS server", transport: "grpc", conn: "api_token: " + fgaKey, subject: "alice", want: 503},
		{name: "http: writer", transport: "http", conn: "ca_file: " + fga.CAFile + ", api_token: " + fgaKey, subject: "alice", want: 200},
		{name: "http: not a writer", transport: "http", conn: "ca_file: " + fga.CAFile + ", api_token: " + fgaKey, subject: "carol", want: 403},
		{name: "http: wrong token", transport: "http", conn: "ca_file: " + fga.CAFile + ", api_token: wrong", subject: "alice", want: 503},
		{name: "http: no token", transport: "http", conn: "ca_file: " + fga.CAFile, subject: "alice", want: 503},
		{name: "http: untrusted certificate", transport: "http", conn: "api_token: " + fgaKey, subject: "alice", want: 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := fga.GRPCAddr
			if tt.transport == "http" {
				url = fga.HTTPURL
			}
			yml := `server: { address: "127.0.0.1:0" }
metrics: { enabled: false }
buckets:
  - name: files
    path_prefix: /files
    filesystem: { root: "` + t.TempDir() + `" }
    auth:
      enabled: true
      jwt: { algorithm: HS256, secret: "` + fgaJWTSecret + `" }
    authz:
      enabled: true
      openfga: { transport: ` + tt.transport + `, url: "` + url + `", store_id: "` + fga.StoreID + `", cache_ttl_seconds: 0, ` + tt.conn + ` }
`
			cfg, err := config.Parse([]byte(yml), "t.yaml", func(string) (string, bool) { return "", false })
			if err != nil {
				t.Fatal(err)
			}
			a, err := app.New(context.Background(), cfg, app.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
				"sub": tt.subject, "exp": time.Now().Add(time.Hour).Unix(),
			}).SignedString([]byte(fgaJWTSecret))
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest("PUT", "/files/a.txt", strings.NewReader("hello"))
			req.Header.Set("Authorization", "Bearer "+tok)
			rec := httptest.NewRecorder()
			a.Handler().ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.want, rec.Body.String())
			}
			if strings.Contains(rec.Body.String(), fgaKey) {
				t.Fatalf("the answer quotes the preshared key: %s", rec.Body.String())
			}
		})
	}
}
