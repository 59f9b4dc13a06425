package sigv4

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

// signedAt returns a header-signed PUT of target (a path as sent, with
// any escapes) signed by aws-sdk-go-v2 the way S3 clients sign: the path
// exactly as sent.
func signedAt(t *testing.T, target string, presign bool) *http.Request {
	t.Helper()
	r := httptest.NewRequest(http.MethodPut, "http://uploads.example"+target, nil)
	creds := aws.Credentials{AccessKeyID: testAK, SecretAccessKey: testSK}
	opt := func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }
	if presign {
		r.URL.RawQuery = "X-Amz-Expires=300"
		uri, _, err := v4.NewSigner().PresignHTTP(context.Background(), creds, r, UnsignedPayload, "s3", testRegion, fixedNow, opt)
		if err != nil {
			t.Fatal(err)
		}
		return httptest.NewRequest(http.MethodPut, uri, nil)
	}
	r.Header.Set("X-Amz-Content-Sha256", emptySHA256Hex)
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, emptySHA256Hex, "s3", testRegion, fixedNow, opt); err != nil {
		t.Fatal(err)
	}
	return r
}

// moved returns r's request line target replaced by target, as an
// attacker replaying r's headers on another path would send it.
func moved(t *testing.T, r *http.Request, target string) *http.Request {
	t.Helper()
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	m := httptest.NewRequest(r.Method, "http://uploads.example"+target, nil)
	m.Header = r.Header.Clone()
	return m
}

func fixedAuth(t *testing.T) *Authenticator {
	t.Helper()
	a, err := New(testConfig(), Options{Now: func() time.Time { return fixedNow }})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// An encoded slash is not a path separator for routing (bucket prefixes
// match whole literal segments), so it must not be one for the signature
// either: otherwise a request signed for bucket /team/private, key k, is
// also valid as /team/private%2Fk, which routes to bucket /team, key
// private/k.
func TestEncodedSlashCannotMoveASignedRequest(t *testing.T) {
	cases := []struct {
		name           string
		signed, sentAs string
		want           error
	}{
		{name: "as signed", signed: "/team/private/k", sentAs: "/team/private/k"},
		{name: "encoded slash signed as sent", signed: "/team/private%2Fk", sentAs: "/team/private%2Fk"},
		{name: "encoded slash signed lowercase", signed: "/team/private%2fk", sentAs: "/team/private%2fk"},
		{name: "slash becomes encoded", signed: "/team/private/k", sentAs: "/team/private%2Fk", want: s3err.ErrSignatureDoesNotMatch},
		{name: "first slash becomes encoded", signed: "/team/private/k", sentAs: "/team%2Fprivate/k", want: s3err.ErrSignatureDoesNotMatch},
		{name: "encoded slash becomes a slash", signed: "/team/private%2Fk", sentAs: "/team/private/k", want: s3err.ErrSignatureDoesNotMatch},
		{name: "other escapes still decode once", signed: "/team/a%20b", sentAs: "/team/a%20b"},
	}
	for _, presign := range []bool{false, true} {
		for _, c := range cases {
			name := c.name
			if presign {
				name = "presigned/" + name
			}
			t.Run(name, func(t *testing.T) {
				r := moved(t, signedAt(t, c.signed, presign), c.sentAs)
				_, err := fixedAuth(t).Authenticate(context.Background(), r)
				if c.want == nil {
					if err != nil {
						t.Fatalf("refused: %v", err)
					}
					return
				}
				if !errors.Is(err, c.want) {
					t.Fatalf("err %v, want %v", err, c.want)
				}
			})
		}
	}
}
