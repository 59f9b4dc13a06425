package sigv4

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/mizuchi-uploadr/mizuchi/internal/auth"
	"github.com/mizuchi-uploadr/mizuchi/internal/config"
	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

var fixedNow = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)

type signSpec struct {
	ak, sk, token, region, service string
	at                             time.Time
	payload                        string
	presign                        bool
	expires                        string
}

func defaultSpec() signSpec {
	return signSpec{ak: testAK, sk: testSK, region: testRegion, service: "s3", at: fixedNow, payload: emptySHA256Hex, expires: "300"}
}

// signed builds a PUT signed by aws-sdk-go-v2 according to s, then lets
// mod change it.
func signed(t testing.TB, s signSpec, mod func(*http.Request)) *http.Request {
	t.Helper()
	r := httptest.NewRequest(http.MethodPut, "http://uploads.example/bucket/key.txt", nil)
	creds := aws.Credentials{AccessKeyID: s.ak, SecretAccessKey: s.sk, SessionToken: s.token}
	opt := func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }
	if s.presign {
		q := r.URL.Query()
		q.Set("X-Amz-Expires", s.expires)
		r.URL.RawQuery = q.Encode()
		uri, _, err := v4.NewSigner().PresignHTTP(context.Background(), creds, r, UnsignedPayload, s.service, s.region, s.at, opt)
		if err != nil {
			t.Fatal(err)
		}
		r = httptest.NewRequest(http.MethodPut, uri, nil)
	} else {
		r.Header.Set("X-Amz-Content-Sha256", s.payload)
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, s.payload, s.service, s.region, s.at, opt); err != nil {
			t.Fatal(err)
		}
	}
	if mod != nil {
		mod(r)
	}
	return r
}

func TestAuthenticateErrors(t *testing.T) {
	withSpec := func(f func(*signSpec)) signSpec { s := defaultSpec(); f(&s); return s }
	setAuth := func(v string) func(*http.Request) { return func(r *http.Request) { r.Header.Set("Authorization", v) } }
	editAuth := func(old, new string) func(*http.Request) {
		return func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), old, new, 1))
		}
	}
	editQuery := func(old, new string) func(*http.Request) {
		return func(r *http.Request) { r.URL.RawQuery = strings.Replace(r.URL.RawQuery, old, new, 1) }
	}
	cases := []struct {
		name    string
		spec    signSpec
		mod     func(*http.Request)
		replay  bool
		want    error
		wantMsg string
	}{
		{name: "valid header", spec: defaultSpec()},
		{name: "valid presigned", spec: withSpec(func(s *signSpec) { s.presign = true })},
		{name: "no credentials", spec: defaultSpec(), mod: func(r *http.Request) { r.Header.Del("Authorization") }, want: auth.ErrNoCredentials},
		{name: "other scheme is not ours", spec: defaultSpec(), mod: setAuth("Bearer abc"), want: auth.ErrNoCredentials},
		{name: "header and query both", spec: defaultSpec(), mod: func(r *http.Request) { r.URL.RawQuery = "X-Amz-Algorithm=AWS4-HMAC-SHA256" }, want: s3err.ErrInvalidArgument},
		{name: "unknown access key", spec: withSpec(func(s *signSpec) { s.ak = "AKIAUNKNOWN" }), want: s3err.ErrInvalidAccessKeyID},
		{name: "wrong secret", spec: withSpec(func(s *signSpec) { s.sk = "nope" }), want: s3err.ErrSignatureDoesNotMatch},
		{name: "wrong region", spec: withSpec(func(s *signSpec) { s.region = "us-east-1" }), want: s3err.ErrAuthorizationHeaderMalformed, wantMsg: "the region 'us-east-1' is wrong; expecting 'eu-west-3'"},
		{name: "wrong region presigned", spec: withSpec(func(s *signSpec) { s.region = "us-east-1"; s.presign = true }), want: s3err.ErrAuthorizationQueryParametersError, wantMsg: "the region 'us-east-1' is wrong"},
		{name: "wrong service", spec: withSpec(func(s *signSpec) { s.service = "sqs" }), want: s3err.ErrAuthorizationHeaderMalformed, wantMsg: "incorrect service"},
		{name: "malformed header", spec: defaultSpec(), mod: setAuth("AWS4-HMAC-SHA256 Credential=x"), want: s3err.ErrAuthorizationHeaderMalformed},
		{name: "bad terminator", spec: defaultSpec(), mod: editAuth("aws4_request", "aws5_request"), want: s3err.ErrAuthorizationHeaderMalformed},
		{name: "uppercase signature", spec: defaultSpec(), mod: func(r *http.Request) {
			h := r.Header.Get("Authorization")
			i := strings.Index(h, "Signature=") + len("Signature=")
			r.Header.Set("Authorization", h[:i]+strings.ToUpper(h[i:]))
		}, want: s3err.ErrAuthorizationHeaderMalformed},
		{name: "host not signed", spec: defaultSpec(), mod: editAuth("SignedHeaders=host;", "SignedHeaders="), want: s3err.ErrAccessDenied},
		{name: "content sha not signed", spec: defaultSpec(), mod: editAuth(";x-amz-content-sha256", ""), want: s3err.ErrAccessDenied},
		{name: "missing content sha header", spec: defaultSpec(), mod: func(r *http.Request) { r.Header.Del("X-Amz-Content-Sha256") }, want: s3err.ErrInvalidRequest},
		{name: "invalid content sha", spec: withSpec(func(s *signSpec) { s.payload = "not-a-hash" }), want: s3err.ErrInvalidArgument},
		{name: "skewed past", spec: withSpec(func(s *signSpec) { s.at = fixedNow.Add(-6 * time.Minute) }), want: s3err.ErrRequestTimeTooSkewed},
		{name: "skewed future", spec: withSpec(func(s *signSpec) { s.at = fixedNow.Add(6 * time.Minute) }), want: s3err.ErrRequestTimeTooSkewed},
		{name: "within skew", spec: withSpec(func(s *signSpec) { s.at = fixedNow.Add(-4 * time.Minute) })},
		{name: "date differs from scope", spec: defaultSpec(), mod: editAuth("/20260314/", "/20260313/"), want: s3err.ErrAuthorizationHeaderMalformed},
		{name: "no date", spec: defaultSpec(), mod: func(r *http.Request) { r.Header.Del("X-Amz-Date") }, want: s3err.ErrAccessDenied},
		{name: "changed signed header", spec: defaultSpec(), mod: func(r *http.Request) { r.Host = "other.example" }, want: s3err.ErrSignatureDoesNotMatch},
		{name: "changed path", spec: defaultSpec(), mod: func(r *http.Request) { r.URL.Path = "/bucket/key.txu"; r.RequestURI = "/bucket/key.txu" }, want: s3err.ErrSignatureDoesNotMatch},
		{name: "session token required", spec: withSpec(func(s *signSpec) { s.ak = "AKIATOKEN"; s.sk = "token-secret" }), want: s3err.ErrAccessDenied},
		{name: "session token valid", spec: withSpec(func(s *signSpec) { s.ak = "AKIATOKEN"; s.sk = "token-secret"; s.token = "session-token-1" })},
		{name: "session token wrong", spec: withSpec(func(s *signSpec) { s.ak = "AKIATOKEN"; s.sk = "token-secret"; s.token = "session-token-2" }), want: s3err.ErrInvalidToken},
		{name: "session token not configured", spec: withSpec(func(s *signSpec) { s.token = "session-token-1" }), want: s3err.ErrInvalidToken},
		{name: "session token presigned", spec: withSpec(func(s *signSpec) {
			s.ak = "AKIATOKEN"
			s.sk = "token-secret"
			s.token = "session-token-1"
			s.presign = true
		})},
		{name: "session token unsigned", spec: defaultSpec(), mod: func(r *http.Request) { r.Header.Set("X-Amz-Security-Token", "x") }, want: s3err.ErrInvalidToken},
		{name: "presigned expired", spec: withSpec(func(s *signSpec) { s.presign = true; s.expires = "60"; s.at = fixedNow.Add(-2 * time.Minute) }), want: s3err.ErrAccessDenied, wantMsg: "Request has expired"},
		{name: "presigned long-lived", spec: withSpec(func(s *signSpec) { s.presign = true; s.expires = "604800"; s.at = fixedNow.Add(-6 * 24 * time.Hour) })},
		{name: "presigned in the future", spec: withSpec(func(s *signSpec) { s.presign = true; s.at = fixedNow.Add(time.Hour) }), want: s3err.ErrAccessDenied, wantMsg: "not valid yet"},
		{name: "presigned expires too long", spec: withSpec(func(s *signSpec) { s.presign = true; s.expires = "604801" }), want: s3err.ErrAuthorizationQueryParametersError},
		{name: "presigned expires zero", spec: withSpec(func(s *signSpec) { s.presign = true; s.expires = "0" }), want: s3err.ErrAuthorizationQueryParametersError},
		{name: "presigned expires not a number", spec: withSpec(func(s *signSpec) { s.presign = true; s.expires = "1e3" }), want: s3err.ErrAuthorizationQueryParametersError},
		{name: "presigned other algorithm", spec: withSpec(func(s *signSpec) { s.presign = true }), mod: editQuery("AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256"), want: s3err.ErrAuthorizationQueryParametersError},
		{name: "presigned repeated parameter", spec: withSpec(func(s *signSpec) { s.presign = true }), mod: func(r *http.Request) { r.URL.RawQuery += "&X-Amz-Date=20260314T120000Z" }, want: s3err.ErrAuthorizationQueryParametersError},
		{name: "presigned missing signature", spec: withSpec(func(s *signSpec) { s.presign = true }), mod: editQuery("X-Amz-Signature=", "X-Amz-Signatur="), want: s3err.ErrAuthorizationQueryParametersError},
		{name: "presigned changed query", spec: withSpec(func(s *signSpec) { s.presign = true }), mod: func(r *http.Request) { r.URL.RawQuery += "&uploadId=1" }, want: s3err.ErrSignatureDoesNotMatch},
		{name: "replayed header signature", spec: defaultSpec(), replay: true, want: s3err.ErrAccessDenied, wantMsg: "already been used"},
		{name: "presigned reuse is allowed", spec: withSpec(func(s *signSpec) { s.presign = true }), replay: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.ReplayProtection = c.replay
			a, err := New(cfg, Options{Now: func() time.Time { return fixedNow }})
			if err != nil {
				t.Fatal(err)
			}
			r := signed(t, c.spec, c.mod)
			if c.replay {
				if _, err := authenticateWrite(a, r.Clone(context.Background())); err != nil {
					t.Fatalf("first use refused: %v", err)
				}
			}
			p, err := authenticateWrite(a, r)
			if c.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if p.Method != auth.MethodSigV4 || p.Subject == "" {
					t.Fatalf("principal %+v", p)
				}
				return
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("err %v, want %v", err, c.want)
			}
			if c.wantMsg != "" && !strings.Contains(s3err.As(err).Message, c.wantMsg) {
				t.Fatalf("message %q lacks %q", s3err.As(err).Message, c.wantMsg)
			}
			if strings.Contains(err.Error(), testSK) || strings.Contains(err.Error(), "token-secret") {
				t.Fatal("secret in error")
			}
		})
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	cases := []struct {
		name string
		cfg  config.SigV4
	}{
		{name: "no region", cfg: config.SigV4{Credentials: testConfig().Credentials}},
		{name: "no credentials", cfg: config.SigV4{Region: "r"}},
		{name: "duplicate key", cfg: config.SigV4{Region: "r", Credentials: []config.Credential{
			{AccessKey: "a", SecretKey: "s", Subject: "x"}, {AccessKey: "a", SecretKey: "t", Subject: "y"}}}},
		{name: "no secret", cfg: config.SigV4{Region: "r", Credentials: []config.Credential{{AccessKey: "a", Subject: "x"}}}},
		{name: "no subject", cfg: config.SigV4{Region: "r", Credentials: []config.Credential{{AccessKey: "a", SecretKey: "s"}}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := New(c.cfg, Options{}); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// authenticateWrite authenticates r as the handler does a request that
// writes: Authenticate, then the principal's Claim.
func authenticateWrite(a *Authenticator, r *http.Request) (*auth.Principal, error) {
	p, err := a.Authenticate(context.Background(), r)
	if err == nil && p.Claim != nil {
		err = p.Claim(context.Background())
	}
	return p, err
}
