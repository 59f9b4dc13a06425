package s3api

import (
	"net/http/httptest"
	"testing"

	"github.com/mizuchi-uploadr/mizuchi/internal/auth"
	"github.com/mizuchi-uploadr/mizuchi/internal/config"
)

func TestCheckAmbientOrigin(t *testing.T) {
	named := &Bucket{CORS: appCORS}
	wild := &Bucket{CORS: &config.CORS{AllowedOrigins: []string{"*"}, AllowedMethods: []string{"PUT", "POST"}}}
	both := &Bucket{CORS: &config.CORS{AllowedOrigins: []string{"*", "https://app.example"}, AllowedMethods: []string{"PUT"}}}
	none := &Bucket{}
	cookie := &auth.Principal{Subject: "alice", Method: auth.MethodJWT, Ambient: true}
	bearer := &auth.Principal{Subject: "alice", Method: auth.MethodJWT}
	tests := []struct {
		name    string
		b       *Bucket
		p       *auth.Principal
		method  string
		origins []string
		ok      bool
	}{
		{"bearer needs no origin", named, bearer, "PUT", nil, true},
		{"bearer from any origin", none, bearer, "POST", []string{"https://evil.example"}, true},
		{"cookie from the listed origin", named, cookie, "PUT", []string{"https://app.example"}, true},
		{"cookie, listed among a wildcard", both, cookie, "PUT", []string{"https://app.example"}, true},
		{"cookie without origin", named, cookie, "PUT", nil, false},
		{"cookie, empty origin", named, cookie, "PUT", []string{""}, false},
		{"cookie, null origin", named, cookie, "PUT", []string{"null"}, false},
		{"cookie, two origins", named, cookie, "PUT", []string{"https://app.example", "https://evil.example"}, false},
		{"cookie, other origin", named, cookie, "POST", []string{"https://evil.example"}, false},
		{"cookie, scheme differs", named, cookie, "PUT", []string{"http://app.example"}, false},
		{"cookie, method not allowed", named, cookie, "DELETE", []string{"https://app.example"}, false},
		{"cookie, wildcard only", wild, cookie, "PUT", []string{"https://evil.example"}, false},
		{"cookie, wildcard and unlisted", both, cookie, "PUT", []string{"https://evil.example"}, false},
		{"cookie, no CORS rules", none, cookie, "PUT", []string{"https://app.example"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "/uploads/k", nil)
			for _, o := range tt.origins {
				r.Header.Add("Origin", o)
			}
			err := tt.b.checkAmbientOrigin(r, tt.p)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && err != errAmbientOrigin {
				t.Fatalf("err = %v", err)
			}
		})
	}
}
