package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// cliSigner signs as S3 clients do: the path escaped once, as sent. A
// fresh signer each time: the SDK caches derived keys by access key and
// day, not by secret, so a shared signer would sign a wrong secret with
// the right key.
func cliSigner() *v4.Signer {
	return v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
}

func cliSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// cliSignedPut builds a header-signed PutObject whose signature covers
// payloadHash, sent with body.
func cliSignedPut(t *testing.T, u string, body []byte, payloadHash, ak, sk string, at time.Time) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Amz-Content-Sha256", payloadHash)
	creds := aws.Credentials{AccessKeyID: ak, SecretAccessKey: sk}
	if err := cliSigner().SignHTTP(context.Background(), creds, req, payloadHash, "s3", "us-east-1", at); err != nil {
		t.Fatal(err)
	}
	return req
}

// cliPresignedPut returns a presigned PUT URL signed at `at`, valid for
// expires.
func cliPresignedPut(t *testing.T, u string, at time.Time, expires time.Duration) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	q := req.URL.Query()
	q.Set("X-Amz-Expires", strconv.Itoa(int(expires/time.Second)))
	req.URL.RawQuery = q.Encode()
	creds := aws.Credentials{AccessKeyID: cliAccessKey, SecretAccessKey: cliSecretKey}
	signed, _, err := cliSigner().PresignHTTP(context.Background(), creds, req, "UNSIGNED-PAYLOAD", "s3", "us-east-1", at)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// cliDo sends req with a plain net/http client (as curl would) and
// returns the status and body.
func cliDo(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// cliRefusals sends requests signed wrongly through the binary: each is
// refused with S3's code and leaves nothing at the backend; a valid
// presigned URL used with a plain HTTP client stores the object.
func cliRefusals(t *testing.T, e *cliEnv) {
	body := []byte("refused bytes must never be stored\n")
	now := time.Now().UTC()
	tests := []struct {
		name   string
		req    func(t *testing.T, u string) *http.Request
		status int
		code   string
	}{
		{
			name: "wrong secret",
			req: func(t *testing.T, u string) *http.Request {
				return cliSignedPut(t, u, body, cliSHA256(body), cliAccessKey, cliSecretKey+"x", now)
			},
			status: 403, code: "SignatureDoesNotMatch",
		},
		{
			name: "unknown access key",
			req: func(t *testing.T, u string) *http.Request {
				return cliSignedPut(t, u, body, cliSHA256(body), "AKIAUNKNOWNKEY000000", cliSecretKey, now)
			},
			status: 403, code: "InvalidAccessKeyId",
		},
		{
			name: "clock 20 minutes behind",
			req: func(t *testing.T, u string) *http.Request {
				return cliSignedPut(t, u, body, cliSHA256(body), cliAccessKey, cliSecretKey, now.Add(-20*time.Minute))
			},
			status: 403, code: "RequestTimeTooSkewed",
		},
		{
			name: "clock 20 minutes ahead",
			req: func(t *testing.T, u string) *http.Request {
				return cliSignedPut(t, u, body, cliSHA256(body), cliAccessKey, cliSecretKey, now.Add(20*time.Minute))
			},
			status: 403, code: "RequestTimeTooSkewed",
		},
		{
			name: "body tampered after signing",
			req: func(t *testing.T, u string) *http.Request {
				tampered := bytes.Clone(body)
				tampered[0] ^= 0x20
				return cliSignedPut(t, u, tampered, cliSHA256(body), cliAccessKey, cliSecretKey, now)
			},
			status: 400, code: "XAmzContentSHA256Mismatch",
		},
		{
			name: "expired presigned URL",
			req: func(t *testing.T, u string) *http.Request {
				req, err := http.NewRequest(http.MethodPut, cliPresignedPut(t, u, now.Add(-2*time.Hour), time.Hour), bytes.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				return req
			},
			status: 403, code: "AccessDenied",
		},
	}
	for _, bucket := range []string{"matrix-fs", "matrix-s3"} {
		for _, tt := range tests {
			t.Run(bucket+"/"+tt.name, func(t *testing.T) {
				key := "refused/" + strings.ReplaceAll(tt.name, " ", "-") + ".txt"
				status, resp := cliDo(t, tt.req(t, e.plain.URL+"/"+bucket+"/"+key))
				if status != tt.status || !strings.Contains(resp, "<Code>"+tt.code+"</Code>") {
					t.Fatalf("got %d %s, want %d %s", status, resp, tt.status, tt.code)
				}
				if strings.Contains(resp, cliSecretKey) {
					t.Fatalf("the error body carries the secret: %s", resp)
				}
				e.assertAbsent(t, e.plain, bucket, key)
			})
		}
		t.Run(bucket+"/valid presigned URL with plain HTTP", func(t *testing.T) {
			key := "presigned/plain-http.txt"
			signed := cliPresignedPut(t, e.plain.URL+"/"+bucket+"/"+key, time.Now().UTC(), 5*time.Minute)
			req, err := http.NewRequest(http.MethodPut, signed, bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			if status, resp := cliDo(t, req); status != 200 {
				t.Fatalf("presigned PUT: %d %s", status, resp)
			}
			e.assertStored(t, "http", bucket, key, body)
		})
	}
}
