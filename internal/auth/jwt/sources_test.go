package jwt

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/mizuchi-uploadr/mizuchi/internal/auth"
	"github.com/mizuchi-uploadr/mizuchi/internal/config"
)

func TestTokenSourcesInConfiguredOrder(t *testing.T) {
	tokenFor := func(sub string) string {
		c := validClaims()
		c["sub"] = sub
		return sign(t, gojwt.SigningMethodHS256, []byte(testSecret), c, "")
	}
	all := []config.TokenSource{
		{Type: "bearer"},
		{Type: "query", Name: "token"},
		{Type: "header", Name: "x-upload-token"},
		{Type: "cookie", Name: "upload_token"},
	}
	reversed := []config.TokenSource{all[3], all[2], all[1], all[0]}
	type carry struct{ bearer, query, header, cookie string }
	tests := []struct {
		name    string
		sources []config.TokenSource
		carry   carry
		authz   string // raw Authorization header, overrides carry.bearer
		want    string // subject; "" means ErrNoCredentials
	}{
		{name: "default is bearer", carry: carry{bearer: "b"}, want: "b"},
		{name: "default ignores query", carry: carry{query: "q"}},
		{name: "default ignores custom header", carry: carry{header: "h"}},
		{name: "bearer", sources: all, carry: carry{bearer: "b"}, want: "b"},
		{name: "query", sources: all, carry: carry{query: "q"}, want: "q"},
		{name: "header", sources: all, carry: carry{header: "h"}, want: "h"},
		{name: "cookie", sources: all, carry: carry{cookie: "c"}, want: "c"},
		{name: "first source wins", sources: all, carry: carry{bearer: "b", query: "q", header: "h", cookie: "c"}, want: "b"},
		{name: "query before header", sources: all, carry: carry{query: "q", header: "h", cookie: "c"}, want: "q"},
		{name: "reversed order: cookie first", sources: reversed, carry: carry{bearer: "b", query: "q", header: "h", cookie: "c"}, want: "c"},
		{name: "reversed order: header before bearer", sources: reversed, carry: carry{bearer: "b", header: "h"}, want: "h"},
		{name: "bearer scheme is case-insensitive", authz: "bearer " + tokenFor("lower"), want: "lower"},
		{name: "SigV4 header is not a bearer token", authz: "AWS4-HMAC-SHA256 Credential=AKIA/20300102/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=abc"},
		{name: "basic auth is not a bearer token", authz: "Basic YWxpY2U6cHc="},
		{name: "empty bearer", authz: "Bearer "},
		{name: "nothing", sources: all},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newAuth(t, config.JWT{Algorithm: "HS256", Secret: testSecret, TokenSources: tc.sources}, Options{})
			target := "/uploads/a.txt?partNumber=1"
			if tc.carry.query != "" {
				target += "&token=" + tokenFor(tc.carry.query)
			}
			r := httptest.NewRequest(http.MethodPut, target, nil)
			if tc.carry.bearer != "" {
				r.Header.Set("Authorization", "Bearer "+tokenFor(tc.carry.bearer))
			}
			if tc.authz != "" {
				r.Header.Set("Authorization", tc.authz)
			}
			if tc.carry.header != "" {
				r.Header.Set("X-Upload-Token", tokenFor(tc.carry.header))
			}
			if tc.carry.cookie != "" {
				r.AddCookie(&http.Cookie{Name: "upload_token", Value: tokenFor(tc.carry.cookie)})
			}
			p, err := a.Authenticate(context.Background(), r)
			if tc.want == "" {
				if !errors.Is(err, auth.ErrNoCredentials) {
					t.Fatalf("err = %v, want ErrNoCredentials", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if p.Subject != tc.want {
				t.Fatalf("subject = %q, want %q", p.Subject, tc.want)
			}
			// Only a token read from the cookie is ambient (sent by a
			// browser on its own).
			if p.Ambient != (tc.want == "c") {
				t.Fatalf("Ambient = %v for a token from %q", p.Ambient, tc.want)
			}
		})
	}
}

func TestQueryTokenIsStrippedFromTheRequest(t *testing.T) {
	token := sign(t, gojwt.SigningMethodHS256, []byte(testSecret), validClaims(), "")
	tests := []struct {
		name      string
		sources   []config.TokenSource
		query     string
		wantQuery string
		wantErr   error
	}{
		{name: "only param", sources: []config.TokenSource{{Type: "query", Name: "token"}}, query: "token=" + token, wantQuery: ""},
		{name: "keeps other params and their encoding", sources: []config.TokenSource{{Type: "query", Name: "token"}}, query: "partNumber=2&token=" + token + "&uploadId=a%2Fb", wantQuery: "partNumber=2&uploadId=a%2Fb"},
		{name: "every occurrence", sources: []config.TokenSource{{Type: "query", Name: "token"}}, query: "token=" + token + "&uploads&token=" + token, wantQuery: "uploads"},
		{name: "percent-encoded name", sources: []config.TokenSource{{Type: "query", Name: "token"}}, query: "tok%65n=" + token + "&uploads", wantQuery: "uploads"},
		{name: "stripped even when bearer wins", sources: []config.TokenSource{{Type: "bearer"}, {Type: "query", Name: "token"}}, query: "token=" + token, wantQuery: ""},
		{name: "stripped even when the token is bad", sources: []config.TokenSource{{Type: "query", Name: "token"}}, query: "token=bad.bad.bad&uploads", wantQuery: "uploads", wantErr: errAny},
		{name: "other params untouched", sources: []config.TokenSource{{Type: "query", Name: "token"}}, query: "uploads&x=1", wantQuery: "uploads&x=1", wantErr: auth.ErrNoCredentials},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newAuth(t, config.JWT{Algorithm: "HS256", Secret: testSecret, TokenSources: tc.sources}, Options{})
			r := httptest.NewRequest(http.MethodPut, "/uploads/a.txt?"+tc.query, nil)
			if tc.name == "stripped even when bearer wins" {
				r.Header.Set("Authorization", "Bearer "+token)
			}
			_ = r.ParseForm()
			_, err := a.Authenticate(context.Background(), r)
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.wantErr == errAny && err == nil:
				t.Fatal("bad token accepted")
			case tc.wantErr != nil && tc.wantErr != errAny && !errors.Is(err, tc.wantErr):
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if r.URL.RawQuery != tc.wantQuery {
				t.Fatalf("RawQuery = %q, want %q", r.URL.RawQuery, tc.wantQuery)
			}
			wantURI := "/uploads/a.txt"
			if tc.wantQuery != "" {
				wantURI += "?" + tc.wantQuery
			}
			if r.RequestURI != wantURI {
				t.Fatalf("RequestURI = %q, want %q", r.RequestURI, wantURI)
			}
			if r.Form.Has("token") || strings.Contains(r.URL.String(), "token=") {
				t.Fatalf("token still visible: form=%v url=%s", r.Form, r.URL)
			}
		})
	}
}

var errAny = errors.New("any error")

func TestCustomHeaderAcceptsBearerPrefix(t *testing.T) {
	token := sign(t, gojwt.SigningMethodHS256, []byte(testSecret), validClaims(), "")
	a := newAuth(t, config.JWT{Algorithm: "HS256", Secret: testSecret, TokenSources: []config.TokenSource{{Type: "header", Name: "X-Upload-Token"}}}, Options{})
	r := httptest.NewRequest(http.MethodPut, "/uploads/a.txt", nil)
	r.Header.Set("X-Upload-Token", "Bearer "+token)
	if _, err := a.Authenticate(context.Background(), r); err != nil {
		t.Fatalf("refused: %v", err)
	}
}
