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

// S3 refuses a request carrying an x-amz-* header that is not signed
// ("There were headers present in the request which were not signed"):
// metadata, tagging, checksums or the decoded length could otherwise be
// added or changed on a captured request and reach the backend.
func TestUnsignedAmzHeadersAreRefused(t *testing.T) {
	cases := []struct {
		name       string
		presign    bool
		signedWith map[string]string // set before signing
		added      map[string]string // set after signing
		want       error
	}{
		{name: "signed metadata", signedWith: map[string]string{"X-Amz-Meta-Owner": "alice", "X-Amz-Tagging": "a=b"}},
		{name: "unsigned metadata", added: map[string]string{"X-Amz-Meta-Owner": "mallory"}, want: s3err.ErrAccessDenied},
		{name: "unsigned tagging", added: map[string]string{"X-Amz-Tagging": "public=yes"}, want: s3err.ErrAccessDenied},
		{name: "unsigned checksum", added: map[string]string{"X-Amz-Checksum-Crc32": "AAAAAA=="}, want: s3err.ErrAccessDenied},
		{name: "unsigned decoded length", added: map[string]string{"X-Amz-Decoded-Content-Length": "0"}, want: s3err.ErrAccessDenied},
		{name: "signed header changed", signedWith: map[string]string{"X-Amz-Meta-Owner": "alice"}, added: map[string]string{"X-Amz-Meta-Owner": "mallory"}, want: s3err.ErrSignatureDoesNotMatch},
		{name: "x-amzn-trace-id is not an x-amz header", added: map[string]string{"X-Amzn-Trace-Id": "Root=1-5759e988-bd862e3fe1be46a994272793"}},
		{name: "other headers may be unsigned", added: map[string]string{"User-Agent": "x", "Expect": "100-continue", "Content-Type": "text/plain"}},
		{name: "presigned plain", presign: true},
		{name: "presigned unsigned storage class", presign: true, added: map[string]string{"X-Amz-Storage-Class": "GLACIER"}, want: s3err.ErrAccessDenied},
		{name: "presigned unsigned metadata", presign: true, added: map[string]string{"X-Amz-Meta-Owner": "mallory"}, want: s3err.ErrAccessDenied},
		{name: "presigned unsigned payload header", presign: true, added: map[string]string{"X-Amz-Content-Sha256": UnsignedPayload}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPut, "http://uploads.example/bucket/key.txt", nil)
			for k, v := range c.signedWith {
				r.Header.Set(k, v)
			}
			creds := aws.Credentials{AccessKeyID: testAK, SecretAccessKey: testSK}
			opt := func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }
			if c.presign {
				r.URL.RawQuery = "X-Amz-Expires=300"
				uri, hdr, err := v4.NewSigner().PresignHTTP(context.Background(), creds, r, UnsignedPayload, "s3", testRegion, fixedNow, opt)
				if err != nil {
					t.Fatal(err)
				}
				r = httptest.NewRequest(http.MethodPut, uri, nil)
				for k, v := range hdr {
					if k != "Host" {
						r.Header[k] = v
					}
				}
			} else {
				r.Header.Set("X-Amz-Content-Sha256", emptySHA256Hex)
				if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, emptySHA256Hex, "s3", testRegion, fixedNow, opt); err != nil {
					t.Fatal(err)
				}
			}
			for k, v := range c.added {
				r.Header.Set(k, v)
			}
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
